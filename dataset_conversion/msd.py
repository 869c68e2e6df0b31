"""Medical Segmentation Decathlon folders (``imagesTr``, ``labelsTr``, ``dataset.json``).

Works for every MSD task (Task09_Spleen, Task06_Lung, Task04_Hippocampus, ...). A ``labels`` selection of MSD label
values forms the binary target, e.g. ``[1]`` for hippocampus anterior; tasks with one foreground label need none.
Console script: ``nnUNetv2_unisemi_convert_msd``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import SimpleITK as sitk

from dataset_conversion.common import (
    ConversionError,
    SourceCase,
    binarize_label,
    check_case_ids_unique,
    check_same_grid,
    copy_geometry,
    read_image,
    require_file,
)


class MSDSource:
    """Reader of one MSD task folder; cases are the ``training`` entries of its dataset.json."""

    def __init__(self, path: str | Path, labels: Sequence[int] | None = None, channel: int | None = None):
        self.path = Path(path)
        self.channel = channel
        dataset_json_file = require_file(self.path / "dataset.json", "MSD dataset.json")
        try:
            meta = json.loads(dataset_json_file.read_text(encoding="utf-8"))
            declared = {int(k): v for k, v in meta["labels"].items()}
            training = meta["training"]
        except (json.JSONDecodeError, KeyError, ValueError, TypeError) as e:
            raise ConversionError(f"{dataset_json_file}: not a valid MSD dataset.json ({e!r})") from e
        self.declared_labels = declared
        foreground = sorted(v for v in declared if v != 0)
        if labels is None:
            if len(foreground) != 1:
                raise ConversionError(
                    f"{dataset_json_file}: {len(foreground)} foreground labels {declared}; say which form the target "
                    "with 'labels' (e.g. [1])"
                )
            labels = foreground
        unknown = sorted(set(int(v) for v in labels) - set(foreground))
        if unknown or not labels:
            raise ConversionError(f"{dataset_json_file}: target labels {list(labels)} not among declared {declared}")
        self.labels = [int(v) for v in labels]
        self._files: dict[str, tuple[Path, Path]] = {}
        for entry in training:
            image = self.path / entry["image"]
            case_id = image.name.removesuffix(".nii.gz").removesuffix(".nii")
            if case_id in self._files:
                raise ConversionError(f"{dataset_json_file}: duplicate case id {case_id}")
            self._files[case_id] = (image, self.path / entry["label"])
        check_case_ids_unique(list(self._files), dataset_json_file)

    def case_ids(self) -> list[str]:
        return sorted(self._files)

    def load(self, case_id: str) -> SourceCase:
        image_path, label_path = self._files[case_id]
        image = read_image(image_path, "image")
        if image.GetDimension() == 4 or image.GetNumberOfComponentsPerPixel() > 1:
            image = self._select_channel(image, image_path)
        label = read_image(label_path, "label")
        check_same_grid(image, label, label_path)
        label = copy_geometry(image, binarize_label(label, self.labels, self.declared_labels, label_path))
        return SourceCase(case_id, image, label)

    def _select_channel(self, image: sitk.Image, image_path: Path) -> sitk.Image:
        # Multi-sequence MSD tasks (e.g. BraTS, prostate) are 4D; UniSeMi has one input channel, so one must be chosen.
        n = image.GetSize()[3] if image.GetDimension() == 4 else image.GetNumberOfComponentsPerPixel()
        if self.channel is None:
            raise ConversionError(f"{image_path}: image has {n} channels; choose one with 'channel'")
        if not 0 <= self.channel < n:
            raise ConversionError(f"{image_path}: channel {self.channel} out of range (image has {n})")
        if image.GetDimension() == 4:
            size = list(image.GetSize())
            size[3] = 0  # collapse the 4th axis
            return sitk.Extract(image, size, [0, 0, 0, self.channel])
        return sitk.VectorIndexSelectionCast(image, self.channel)


def main(argv: Sequence[str] | None = None) -> int:
    """nnUNetv2_unisemi_convert_msd: one MSD task -> one unified dataset (a one-task merge config)."""
    from dataset_conversion import merge_tasks

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", required=True, help="MSD task folder (imagesTr, labelsTr, dataset.json)")
    parser.add_argument("--task-name", default=None, help="task name in the unified dataset (default: MSD name)")
    parser.add_argument("--labels", type=int, nargs="+", default=None, help="MSD label values forming the target")
    parser.add_argument("--channel", type=int, default=None, help="channel of 4D images to use")
    parser.add_argument("--modality", choices=("CT", "MRI"), default=None, help="default: from the MSD dataset.json")
    merge_tasks.add_single_task_arguments(parser)
    args = parser.parse_args(argv)

    def task_from_args() -> dict:
        source = MSDSource(args.input, args.labels, args.channel)  # validates early, gives the default name/modality
        meta = json.loads((source.path / "dataset.json").read_text(encoding="utf-8"))
        modality = args.modality or str(meta.get("modality", {}).get("0", "CT")).upper()
        task = {
            "name": args.task_name or str(meta.get("name", source.path.name)).lower(),
            "format": "msd",
            "path": str(source.path),
            "labels": source.labels,
            "modality": "CT" if modality == "CT" else "MRI",
        }
        if args.channel is not None:
            task["channel"] = args.channel
        return task

    return merge_tasks.run_single_task_cli(args, task_from_args)
