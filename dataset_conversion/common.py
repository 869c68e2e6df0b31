"""Shared pieces of the source readers: the error type, the case record, and image/label checks.

Every reader yields :class:`SourceCase` records (source case id, SimpleITK image, binary SimpleITK label or None).
Readers only read: nothing here ever writes next to a source file.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import SimpleITK as sitk

# Geometry tolerances for "the label was written on the image grid": header float noise is fine, a real
# mismatch (another grid, another patient) is not. nnU-Net's own integrity check uses np.allclose on these too.
SPACING_RTOL = 1e-3
ORIGIN_ATOL_MM = 1e-2
DIRECTION_ATOL = 1e-3


class ConversionError(Exception):
    """A source or a config is unusable. The message names the offending file and the problem."""


class SourceCase(NamedTuple):
    source_case_id: str
    image: sitk.Image
    label: sitk.Image | None  # binary uint8 (0/1) on the image grid; None when the source has no label


class CaseSource(Protocol):
    """What merge_tasks needs from a reader: the case ids (cheap) and one case at a time (expensive)."""

    path: Path

    def case_ids(self) -> list[str]: ...

    def load(self, case_id: str) -> SourceCase: ...


def sanitize_case_id(text: str) -> str:
    """nnU-Net case ids become file names; keep them to [A-Za-z0-9_-]."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ConversionError(f"{path}: missing {what}")
    return path


def check_gzip_complete(path: Path, what: str) -> None:
    """ITK reads a truncated .nii.gz without complaint (the missing voxels become zeros): read the stream to its end."""
    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    except (EOFError, OSError, zlib.error) as e:
        raise ConversionError(f"{path}: unreadable {what} (truncated or corrupt gzip stream: {e})") from e


def read_image(path: Path, what: str = "image") -> sitk.Image:
    """Read any SimpleITK-readable file, turning reader failures (truncated, corrupt) into ConversionError."""
    require_file(path, what)
    if path.name.endswith(".gz"):
        check_gzip_complete(path, what)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise ConversionError(f"{path}: unreadable {what} ({str(e).strip().splitlines()[-1]})") from e


def copy_geometry(source: sitk.Image, target: sitk.Image) -> sitk.Image:
    target.SetSpacing(source.GetSpacing())
    target.SetOrigin(source.GetOrigin())
    target.SetDirection(source.GetDirection())
    return target


def check_same_grid(image: sitk.Image, label: sitk.Image, label_path: Path | str) -> None:
    """Raise unless the label lies on the image's voxel grid (within header float noise)."""
    if image.GetSize() != label.GetSize():
        raise ConversionError(f"{label_path}: label shape {label.GetSize()} differs from image shape {image.GetSize()}")
    if not np.allclose(image.GetSpacing(), label.GetSpacing(), rtol=SPACING_RTOL, atol=0):
        raise ConversionError(
            f"{label_path}: label spacing {label.GetSpacing()} differs from image spacing {image.GetSpacing()}"
        )
    if not np.allclose(image.GetOrigin(), label.GetOrigin(), rtol=0, atol=ORIGIN_ATOL_MM):
        raise ConversionError(
            f"{label_path}: label origin {label.GetOrigin()} differs from image origin {image.GetOrigin()}"
        )
    if not np.allclose(image.GetDirection(), label.GetDirection(), rtol=0, atol=DIRECTION_ATOL):
        raise ConversionError(
            f"{label_path}: label direction {label.GetDirection()} differs from image direction {image.GetDirection()}"
        )


def binarize_label(
    label: sitk.Image, target_values: Sequence[int], allowed_values: Iterable[int], label_path: Path | str
) -> sitk.Image:
    """Binary uint8 target (1 where the label has one of `target_values`), after checking every value is expected.

    Unexpected values (not declared by the source) and non-integer values are errors, not silently dropped:
    they usually mean a wrong file or a wrong label selection.
    """
    array = sitk.GetArrayViewFromImage(label)
    if label.GetNumberOfComponentsPerPixel() != 1:
        raise ConversionError(f"{label_path}: label has {label.GetNumberOfComponentsPerPixel()} components, expected 1")
    values = np.unique(array)
    if not np.all(np.equal(np.mod(values, 1), 0)):
        raise ConversionError(f"{label_path}: label is not an integer mask (values {values[:8].tolist()} ...)")
    allowed = {0, *(int(v) for v in allowed_values)}
    unexpected = sorted({int(v) for v in values} - allowed)
    if unexpected:
        raise ConversionError(
            f"{label_path}: unexpected label values {unexpected[:8]} (expected only {sorted(allowed)})"
        )
    binary = sitk.GetImageFromArray(np.isin(array, list(target_values)).astype(np.uint8))
    return copy_geometry(label, binary)


def read_list_file(path: Path) -> list[str]:
    """One case id per line (UA-MT / DTC ``train.list`` style); blank lines ignored, duplicates are an error."""
    require_file(path, "case list file")
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConversionError(f"{path}: duplicate case ids {duplicates[:5]}")
    return ids


def read_h5_volume(
    path: Path, spacing: Sequence[float], image_key: str = "image", label_key: str = "label"
) -> tuple[sitk.Image, sitk.Image]:
    """Image and raw label of a UA-MT/DTC-style h5 file (axes x, y, z; no geometry stored)."""
    import h5py  # local: only the h5 layouts need it

    require_file(path, "h5 file")
    try:
        with h5py.File(path, "r") as f:
            for key in (image_key, label_key):
                if key not in f:
                    raise ConversionError(f"{path}: h5 file has no dataset '{key}' (has {sorted(f.keys())})")
            image_xyz = np.asarray(f[image_key][()])
            label_xyz = np.asarray(f[label_key][()])
    except ConversionError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise ConversionError(f"{path}: unreadable h5 file ({e})") from e
    if image_xyz.ndim != 3:
        raise ConversionError(f"{path}: image has {image_xyz.ndim} dimensions, expected 3 (x, y, z)")
    if image_xyz.shape != label_xyz.shape:
        raise ConversionError(f"{path}: label shape {label_xyz.shape} differs from image shape {image_xyz.shape}")
    # h5 arrays are indexed [x, y, z]; SimpleITK arrays are [z, y, x].
    image = sitk.GetImageFromArray(np.ascontiguousarray(image_xyz.transpose(2, 1, 0)).astype(np.float32))
    label = sitk.GetImageFromArray(np.ascontiguousarray(label_xyz.transpose(2, 1, 0)))
    for im in (image, label):
        im.SetSpacing(tuple(float(s) for s in spacing))
    return image, label


def check_case_ids_unique(case_ids: Sequence[str], where: Path | str) -> None:
    sanitized = [sanitize_case_id(c) for c in case_ids]
    duplicates = sorted({c for c in sanitized if sanitized.count(c) > 1})
    if duplicates:
        raise ConversionError(f"{where}: duplicate case ids {duplicates[:5]}")
