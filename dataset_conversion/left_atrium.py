"""2018 Atrial Segmentation Challenge (left atrium, LGE-MRI): the UA-MT h5 layout and the challenge's raw layout.

UA-MT/DTC/BCP h5 layout::

    LA/2018LA_Seg_Training Set/<ID>/mri_norm2.h5   (datasets image: float32 z-scored, label: uint8 0/1; axes x, y, z)
    LA/train.list, LA/test.list                    (the standard 80/20 split, one <ID> per line)

No spacing is stored in the h5 files; the challenge data are 0.625 mm isotropic, which is used unless overridden.

Challenge raw layout::

    <root>/<ID>/lgemri.nrrd, <root>/<ID>/laendo.nrrd  (label 255 = atrium)

Console script: ``nnUNetv2_unisemi_convert_left_atrium``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from dataset_conversion.common import (
    ConversionError,
    SourceCase,
    binarize_label,
    check_same_grid,
    copy_geometry,
    read_h5_volume,
    read_image,
)

LA_SPACING_MM = (0.625, 0.625, 0.625)
LA_H5_FOLDER = "2018LA_Seg_Training Set"
LA_H5_FILE = "mri_norm2.h5"


class LeftAtriumH5Source:
    """UA-MT h5 layout; `path` is the folder holding ``2018LA_Seg_Training Set`` (and train.list/test.list)."""

    default_train_list = "train.list"
    default_test_list = "test.list"

    def __init__(self, path: str | Path, spacing: Sequence[float] = LA_SPACING_MM):
        self.path = Path(path)
        self.cases_dir = self.path / LA_H5_FOLDER
        if not self.cases_dir.is_dir():
            raise ConversionError(f"{self.cases_dir}: missing left atrium h5 case folder")
        self.spacing = tuple(float(s) for s in spacing)

    def case_ids(self) -> list[str]:
        # A case is a folder; a folder without its h5 file is reported as a missing image when loaded.
        return sorted(p.name for p in self.cases_dir.iterdir() if p.is_dir())

    def load(self, case_id: str) -> SourceCase:
        path = self.cases_dir / case_id / LA_H5_FILE
        image, label = read_h5_volume(path, self.spacing)
        return SourceCase(case_id, image, copy_geometry(image, binarize_label(label, [1], [1], path)))


class LeftAtriumNrrdSource:
    """Challenge raw layout: one folder per case with ``lgemri.nrrd`` and ``laendo.nrrd`` (255 = atrium)."""

    image_file = "lgemri.nrrd"
    label_file = "laendo.nrrd"

    def __init__(self, path: str | Path, labels: Sequence[int] = (255,)):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConversionError(f"{self.path}: missing left atrium nrrd folder")
        self.labels = [int(v) for v in labels]

    def case_ids(self) -> list[str]:
        return sorted(
            p.name
            for p in self.path.iterdir()
            if p.is_dir() and ((p / self.image_file).exists() or (p / self.label_file).exists())
        )

    def load(self, case_id: str) -> SourceCase:
        image = read_image(self.path / case_id / self.image_file, "image")
        label_path = self.path / case_id / self.label_file
        label = read_image(label_path, "label")
        check_same_grid(image, label, label_path)
        return SourceCase(
            case_id, image, copy_geometry(image, binarize_label(label, self.labels, self.labels, label_path))
        )


def main(argv: Sequence[str] | None = None) -> int:
    """nnUNetv2_unisemi_convert_left_atrium: left atrium (UA-MT h5 or challenge nrrd) -> one unified dataset."""
    from dataset_conversion import merge_tasks

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", required=True, help="LA folder (UA-MT h5 layout) or nrrd case folder")
    parser.add_argument("--layout", choices=("h5", "nrrd"), default="h5", help="UA-MT h5 (default) or challenge nrrd")
    parser.add_argument("--task-name", default="left_atrium")
    merge_tasks.add_single_task_arguments(parser)
    args = parser.parse_args(argv)

    def task_from_args() -> dict:
        fmt = "la_h5" if args.layout == "h5" else "la_nrrd"
        return {"name": args.task_name, "format": fmt, "path": str(Path(args.input)), "modality": "MRI"}

    return merge_tasks.run_single_task_cli(args, task_from_args)
