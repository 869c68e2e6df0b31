"""PNG overlays for a visual check, as in the paper's Fig. 3-4: image, reference contour, prediction fill + contour.

For a case, image and masks are first reoriented to LPS (identity direction), so that axis 0 is axial and
``imshow`` shows the radiological view (anterior up, patient left on the right) whatever the file's direction.
Slices are taken along axis 0: the slice with the largest reference area and the slice through the prediction's
centre of mass; panel titles give the slice index in that LPS-oriented array. Rendering uses matplotlib's Agg
canvas directly, so importing this module never changes the global matplotlib backend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

REFERENCE_COLOUR = "#00ff00"  # green contour
PREDICTION_COLOUR = "#ff2020"  # red contour and translucent fill


def choose_slices(ref: np.ndarray, pred: np.ndarray, axis: int = 0) -> list[int]:
    """Largest-reference-area slice, then the slice through the prediction's centre of mass (without repeats)."""
    other = tuple(a for a in range(ref.ndim) if a != axis)
    slices = []
    ref_area = ref.sum(axis=other)
    if ref_area.any():
        slices.append(int(np.argmax(ref_area)))
    pred_area = pred.sum(axis=other)
    if pred_area.any():
        centre = int(round(float(np.average(np.arange(pred.shape[axis]), weights=pred_area))))
        if centre not in slices:
            slices.append(centre)
    return slices or [ref.shape[axis] // 2]


def _lps_array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.DICOMOrient(image, "LPS"))


def write_case_overlay(
    ref_img: sitk.Image,
    pred_img: sitk.Image,
    task_id: int,
    output_file: str | os.PathLike,
    image_file: str | os.PathLike | None = None,
    title: str | None = None,
) -> list[int]:
    """Overlay of one case's task ``task_id`` (label value) on its image; black background without a usable image.

    The image (e.g. imagesTs/<case>_0000.nii.gz) is used when it exists and has the label's size.
    """
    ref = _lps_array(ref_img) == task_id
    pred = _lps_array(pred_img) == task_id
    image = None
    if image_file is not None and Path(image_file).is_file():
        img = sitk.ReadImage(str(image_file))
        if img.GetSize() == ref_img.GetSize():
            image = _lps_array(img)
    spacing = sitk.DICOMOrient(ref_img, "LPS").GetSpacing()[::-1]
    return save_overlay_png(image, ref, pred, spacing, output_file, title=title)


def _window(image_slice: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image_slice, (0.5, 99.5)) if image_slice.size else (0.0, 1.0)
    return np.clip((image_slice - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(image_slice, dtype=float)


def save_overlay_png(
    image: np.ndarray | None,
    ref: np.ndarray,
    pred: np.ndarray,
    spacing: Sequence[float],
    output_file: str | os.PathLike,
    slices: Sequence[int] | None = None,
    axis: int = 0,
    title: str | None = None,
) -> list[int]:
    """Write one PNG with a panel per slice; returns the slice indices drawn. ``image`` None means black."""
    ref, pred = np.asarray(ref, bool), np.asarray(pred, bool)
    if image is None:
        image = np.zeros(ref.shape, dtype=np.float32)
    slices = list(slices) if slices is not None else choose_slices(ref, pred, axis)
    in_plane = [s for a, s in enumerate(spacing) if a != axis]
    aspect = in_plane[0] / in_plane[1]  # physical pixel height / width, so anatomy is not squashed

    fig = Figure(figsize=(4 * len(slices), 4.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    fill = ListedColormap([PREDICTION_COLOUR])
    for i, index in enumerate(slices):
        ax = fig.add_subplot(1, len(slices), i + 1)
        img, r, p = (np.take(a, index, axis=axis) for a in (image, ref, pred))
        ax.imshow(_window(img.astype(float)), cmap="gray", aspect=aspect, interpolation="nearest")
        ax.imshow(np.ma.masked_where(~p, p), cmap=fill, alpha=0.35, aspect=aspect, interpolation="nearest")
        # contour() warns on a constant field; draw only what exists.
        if p.any() and not p.all():
            ax.contour(p, levels=[0.5], colors=PREDICTION_COLOUR, linewidths=1.0)
        if r.any() and not r.all():
            ax.contour(r, levels=[0.5], colors=REFERENCE_COLOUR, linewidths=1.2)
        ax.set_title(f"slice {index} along axis {axis}", fontsize=9)
        ax.set_axis_off()
    fig.suptitle((title + "\n" if title else "") + "green: reference, red: prediction", fontsize=9)
    output_file = Path(output_file)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output_file, format="png")
    return slices
