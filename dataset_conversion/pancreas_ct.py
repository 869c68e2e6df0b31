"""NIH Pancreas-CT: the TCIA layout (DICOM series + NIfTI labels) and the DTC/BCP h5 layout.

TCIA layout::

    Pancreas-CT/PANCREAS_0001/<study>/<series>/*.dcm
    Pancreas-CT/TCIA_pancreas_labels-02-05-2017/label0001.nii.gz

The TCIA label NIfTIs are not written on the DICOM grid's axis order (their y axis is flipped), so the label is
resampled onto the DICOM image in *physical* space (nearest neighbour); comparing arrays would mirror the pancreas.

h5 layout (DTC/BCP/MagicNet users): ``PancreasNNNN_norm.h5`` with datasets ``image`` (already clipped and
normalised by their preprocessing) and ``label`` (0/1), axes x, y, z, no geometry stored.
Console script: ``nnUNetv2_unisemi_convert_pancreas_ct``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from dataset_conversion.common import (
    ConversionError,
    SourceCase,
    binarize_label,
    check_case_ids_unique,
    copy_geometry,
    read_h5_volume,
    read_image,
)

# A resampled label must keep at least this share of its physical foreground volume; less means the label does not
# (fully) cover the image, i.e. the wrong patient or a broken header.
MIN_KEPT_LABEL_VOLUME = 0.5
# The DTC pancreas h5 files store no spacing; they were resampled to about 1 mm (override with 'spacing').
PANCREAS_H5_DEFAULT_SPACING = (1.0, 1.0, 1.0)


def read_dicom_series(folder: Path) -> sitk.Image:
    """The (single, or largest) DICOM series below `folder`, read with GDCM (handles JPEG 2000 lossless)."""
    series: list[tuple[str, list[str]]] = []
    # Only folders that hold files: GDCM warns on every folder without a series.
    dirs = [
        d
        for d in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]
        if any(f.is_file() for f in d.iterdir())
    ]
    for d in dirs:
        for series_id in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(d)) or ():
            series.append((str(d), list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(d), series_id))))
    if not series:
        raise ConversionError(f"{folder}: missing image (no DICOM series found)")
    # TCIA Pancreas-CT has one CT series per patient; if a folder holds more, the largest is the CT volume.
    directory, files = max(series, key=lambda s: len(s[1]))
    # GDCM silently leaves unreadable (e.g. truncated) files out of a series, which leaves a gap in the volume.
    in_series = {Path(f).name for d, fs in series if d == directory for f in fs}
    unreadable = sorted(p.name for p in Path(directory).glob("*.dcm") if p.name not in in_series)
    if unreadable:
        raise ConversionError(f"{Path(directory) / unreadable[0]}: unreadable DICOM file ({len(unreadable)} in series)")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as e:
        raise ConversionError(f"{directory}: unreadable DICOM series ({str(e).strip().splitlines()[-1]})") from e
    if image.GetDimension() != 3 or min(image.GetSize()) < 2:
        raise ConversionError(f"{directory}: DICOM series is not a 3D volume (size {image.GetSize()})")
    check_uniform_slices(reader, image, directory)
    return image


def check_uniform_slices(reader: sitk.ImageSeriesReader, image: sitk.Image, directory: str) -> None:
    """Missing slices make the volume's z spacing wrong; ITK only warns, so check the slice positions."""
    positions = []
    for k in range(image.GetDepth()):
        if not reader.HasMetaDataKey(k, "0020|0032"):
            return  # no positions to check (not a CT/MR image series)
        positions.append([float(v) for v in reader.GetMetaData(k, "0020|0032").split("\\")])
    steps = np.linalg.norm(np.diff(np.asarray(positions), axis=0), axis=1)
    if steps.size and (steps.max() - steps.min()) > 0.01 * max(steps.min(), 1e-3):
        raise ConversionError(
            f"{directory}: DICOM series has missing or unevenly spaced slices "
            f"(slice gaps {steps.min():.3g} to {steps.max():.3g} mm)"
        )


def resample_label_to_image(label: sitk.Image, image: sitk.Image, label_path: Path | str) -> sitk.Image:
    """Nearest-neighbour resampling of a binary label onto the image grid in physical space, checking overlap."""
    resampled = sitk.Resample(label, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    voxel_volume_label = float(np.prod(label.GetSpacing()))
    voxel_volume_image = float(np.prod(image.GetSpacing()))
    volume_before = float(sitk.GetArrayViewFromImage(label).sum()) * voxel_volume_label
    volume_after = float(sitk.GetArrayViewFromImage(resampled).sum()) * voxel_volume_image
    if volume_before > 0 and volume_after < MIN_KEPT_LABEL_VOLUME * volume_before:
        raise ConversionError(
            f"{label_path}: label does not overlap the image in physical space (only {volume_after:.0f} of "
            f"{volume_before:.0f} mm^3 of foreground land inside it); wrong patient or broken header?"
        )
    return resampled


class PancreasDicomSource:
    """TCIA NIH Pancreas-CT: ``PANCREAS_NNNN`` DICOM folders + ``TCIA_pancreas_labels-*/labelNNNN.nii.gz``."""

    def __init__(self, path: str | Path, labels: Sequence[int] = (1,)):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConversionError(f"{self.path}: missing Pancreas-CT folder")
        self.labels = [int(v) for v in labels]
        self._patients = {p.name: p for p in sorted(self.path.iterdir()) if p.is_dir() and self._number(p.name)}
        check_case_ids_unique(list(self._patients), self.path)

    @staticmethod
    def _number(name: str) -> int | None:
        match = re.fullmatch(r"PANCREAS_(\d+)", name, flags=re.IGNORECASE)
        return int(match.group(1)) if match else None

    def label_file(self, case_id: str) -> Path:
        number = self._number(case_id)
        candidates = sorted(self.path.glob(f"TCIA_pancreas_labels-*/label{number:04d}.nii*"))
        if not candidates:
            raise ConversionError(
                f"{self.path / 'TCIA_pancreas_labels-*' / f'label{number:04d}.nii.gz'}: missing label of {case_id}"
            )
        return candidates[0]

    def case_ids(self) -> list[str]:
        return sorted(self._patients)

    def load(self, case_id: str) -> SourceCase:
        label_path = self.label_file(case_id)  # check the label exists before the (slow) DICOM read
        image = read_dicom_series(self._patients[case_id])
        label = read_image(label_path, "label")
        if label.GetDimension() != 3:
            raise ConversionError(f"{label_path}: label is not 3D (size {label.GetSize()})")
        binary = binarize_label(label, self.labels, self.labels, label_path)
        return SourceCase(case_id, image, resample_label_to_image(binary, image, label_path))


class PancreasH5Source:
    """DTC/BCP h5 layout: ``PancreasNNNN_norm.h5`` files (in `path` or one folder per case below it)."""

    def __init__(self, path: str | Path, spacing: Sequence[float] = PANCREAS_H5_DEFAULT_SPACING):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConversionError(f"{self.path}: missing pancreas h5 folder")
        self.spacing = tuple(float(s) for s in spacing)
        files = sorted(self.path.glob("*.h5")) + sorted(self.path.glob("*/*.h5"))
        self._files = {self._case_id(f): f for f in files}
        if len(self._files) != len(files):
            raise ConversionError(f"{self.path}: duplicate case ids among {len(files)} h5 files")

    @staticmethod
    def _case_id(file: Path) -> str:
        return file.name.removesuffix(".h5").removesuffix("_norm")

    def case_ids(self) -> list[str]:
        return sorted(self._files)

    def load(self, case_id: str) -> SourceCase:
        path = self._files[case_id]
        image, label = read_h5_volume(path, self.spacing)
        return SourceCase(case_id, image, copy_geometry(image, binarize_label(label, [1], [1], path)))


def main(argv: Sequence[str] | None = None) -> int:
    """nnUNetv2_unisemi_convert_pancreas_ct: NIH Pancreas-CT (TCIA DICOM or h5) -> one unified dataset."""
    from dataset_conversion import merge_tasks

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", required=True, help="Pancreas-CT folder (TCIA layout) or h5 folder")
    parser.add_argument("--layout", choices=("dicom", "h5"), default="dicom", help="TCIA DICOM (default) or DTC h5")
    parser.add_argument("--task-name", default="pancreas")
    merge_tasks.add_single_task_arguments(parser)
    args = parser.parse_args(argv)

    def task_from_args() -> dict:
        fmt = "pancreas_ct_dicom" if args.layout == "dicom" else "pancreas_h5"
        return {"name": args.task_name, "format": fmt, "path": str(Path(args.input)), "modality": "CT"}

    return merge_tasks.run_single_task_cli(args, task_from_args)
