"""Small synthetic source folders in each real layout, for tests and for a demo that needs no download.

Every phantom is a large ellipsoid "organ" in a noisy body, plus a thin tube of the *same* intensity (a vessel), so
a network must use shape and context rather than a threshold. Each layout has its own intensity style: CT in HU,
LGE-MRI-like z-scored values with a bias field, DTC-style normalised [0, 1] CT.

Layouts: MSD (NIfTI), UA-MT left atrium h5, left atrium challenge nrrd, TCIA Pancreas-CT (DICOM series + a label
NIfTI whose y axis is flipped, as real TCIA labels are), DTC pancreas h5. :func:`make_demo_sources` writes a
3-task demo set and returns its merge config.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

Shape = tuple[int, int, int]  # (z, y, x), SimpleITK array order
DEMO_SHAPE: Shape = (32, 48, 48)


def phantom(shape: Shape, rng: np.random.Generator, style: str = "ct") -> tuple[np.ndarray, np.ndarray]:
    """(image float32, organ mask bool), arrays in (z, y, x) order; the organ sits off-centre in y (flip tests)."""
    z, y, x = np.meshgrid(*(np.arange(s, dtype=np.float32) for s in shape), indexing="ij")
    sz, sy, sx = shape
    centre = np.array([sz * 0.5, sy * 0.38, sx * 0.45]) + rng.uniform(-2, 2, 3)
    radii = np.array([sz * 0.22, sy * 0.2, sx * 0.22]) * rng.uniform(0.85, 1.15, 3)
    organ = ((z - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((x - centre[2]) / radii[2]) ** 2
    organ = organ <= 1.0
    body = ((y - sy / 2) / (sy * 0.47)) ** 2 + ((x - sx / 2) / (sx * 0.47)) ** 2 <= 1.0
    tube_y, tube_x = sy * 0.72 + rng.uniform(-2, 2), sx * 0.62 + rng.uniform(-2, 2)
    tube = ((y - tube_y) ** 2 + (x - tube_x) ** 2 <= rng.uniform(1.5, 2.5) ** 2) & ~organ
    noise = rng.normal(0, 1, shape).astype(np.float32)
    if style == "ct":  # HU
        image = np.where(body, 40.0, -1000.0) + np.where(organ | tube, 90.0, 0.0) + 20.0 * noise
    elif style == "mri":  # LGE-like: bright blood pool, smooth bias field, then z-scored like UA-MT's h5 files
        bias = 1.0 + 0.3 * np.sin(x / sx * np.pi) * np.cos(z / sz * np.pi)
        image = (np.where(body, 1.0, 0.1) + np.where(organ | tube, 1.5, 0.0)) * bias + 0.35 * noise
        image = (image - image.mean()) / image.std()
    elif style == "normalised":  # DTC pancreas h5: CT already windowed and scaled to [0, 1]
        image = np.clip(np.where(body, 0.42, 0.0) + np.where(organ | tube, 0.22, 0.0) + 0.05 * noise, 0, 1)
    else:
        raise ValueError(f"unknown phantom style '{style}'")
    return image.astype(np.float32), organ


def _image(array: np.ndarray, spacing: Sequence[float], origin=(0.0, 0.0, 0.0), direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin(tuple(float(o) for o in origin))
    if direction is not None:
        image.SetDirection(tuple(float(d) for d in direction))
    return image


def write_msd_task(
    root: str | Path,
    task_folder: str = "Task09_Spleen",
    num_cases: int = 4,
    shape: Shape = DEMO_SHAPE,
    spacing: Sequence[float] = (0.8, 0.8, 2.5),
    seed: int = 0,
    style: str = "ct",
    two_labels: bool = False,
    modality: str = "CT",
    case_prefix: str = "spleen",
) -> Path:
    """MSD layout; CT images are int16 HU with MSD Spleen's flipped x/y direction. `two_labels`: the organ's
    front half is label 1 and its back half label 2 (hippocampus-like anterior/posterior)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / task_folder
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    training = []
    for i in range(num_cases):
        image, organ = phantom(shape, rng, style)
        label = organ.astype(np.uint8)
        if two_labels:
            zc = int(np.round(np.nonzero(organ)[0].mean()))
            label[zc:] *= 2
        array = np.rint(image).astype(np.int16) if modality == "CT" else image
        origin = (100.0 + i, 120.0, -50.0)
        direction = (-1, 0, 0, 0, -1, 0, 0, 0, 1)
        name = f"{case_prefix}_{i + 1:03d}.nii.gz"
        sitk.WriteImage(_image(array, spacing, origin, direction), str(folder / "imagesTr" / name))
        sitk.WriteImage(_image(label, spacing, origin, direction), str(folder / "labelsTr" / name))
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    labels = {"0": "background", "1": "anterior", "2": "posterior"} if two_labels else {"0": "background", "1": "organ"}
    meta = {"name": task_folder.split("_", 1)[-1], "modality": {"0": modality}, "labels": labels,
            "numTraining": num_cases, "numTest": 0, "training": training, "test": []}  # fmt: skip
    (folder / "dataset.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return folder


def _write_h5(path: Path, image_zyx: np.ndarray, label_zyx: np.ndarray) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:  # UA-MT / DTC store arrays as (x, y, z)
        f.create_dataset("image", data=image_zyx.transpose(2, 1, 0).astype(np.float32), compression="gzip")
        f.create_dataset("label", data=label_zyx.transpose(2, 1, 0).astype(np.uint8), compression="gzip")


def write_la_h5(
    root: str | Path, num_train: int = 4, num_test: int = 2, shape: Shape = DEMO_SHAPE, seed: int = 0
) -> Path:
    """UA-MT layout: ``<root>/LA/2018LA_Seg_Training Set/<ID>/mri_norm2.h5`` + train.list / test.list."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "LA"
    ids = [f"LA{i:03d}{chr(65 + i % 26)}X" for i in range(num_train + num_test)]
    for case_id in ids:
        image, organ = phantom(shape, rng, "mri")
        _write_h5(folder / "2018LA_Seg_Training Set" / case_id / "mri_norm2.h5", image, organ)
    # UA-MT lists are not sorted: keep a non-sorted order so that 'first' mode is observable.
    train, test = ids[:num_train][::-1], ids[num_train:]
    (folder / "train.list").write_text("\n".join(train) + "\n", encoding="utf-8")
    if test:
        (folder / "test.list").write_text("\n".join(test) + "\n", encoding="utf-8")
    return folder


def write_la_nrrd(root: str | Path, num_cases: int = 3, shape: Shape = DEMO_SHAPE, seed: int = 0) -> Path:
    """Challenge raw layout: ``<root>/LA_nrrd/<ID>/lgemri.nrrd`` (uint8) + ``laendo.nrrd`` (0/255)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "LA_nrrd"
    for i in range(num_cases):
        image, organ = phantom(shape, rng, "mri")
        image = np.clip((image - image.min()) / (image.max() - image.min()) * 255, 0, 255).astype(np.uint8)
        (folder / f"CASE{i:02d}").mkdir(parents=True, exist_ok=True)
        spacing = (0.625, 0.625, 0.625)
        sitk.WriteImage(_image(image, spacing, (10.0, 20.0, 30.0)), str(folder / f"CASE{i:02d}" / "lgemri.nrrd"))
        label = organ.astype(np.uint8) * 255
        sitk.WriteImage(_image(label, spacing, (10.0, 20.0, 30.0)), str(folder / f"CASE{i:02d}" / "laendo.nrrd"))
    return folder


def write_pancreas_h5(root: str | Path, num_cases: int = 4, shape: Shape = DEMO_SHAPE, seed: int = 0) -> Path:
    """DTC/BCP layout: ``<root>/Pancreas_h5/PancreasNNNN_norm.h5`` (normalised image, 0/1 label)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "Pancreas_h5"
    for i in range(num_cases):
        image, organ = phantom(shape, rng, "normalised")
        _write_h5(folder / f"Pancreas{i + 1:04d}_norm.h5", image, organ)
    return folder


def write_dicom_series(image: sitk.Image, folder: Path, series_uid: str) -> None:
    """One CT slice per file, with the position/orientation tags GDCM needs to rebuild the volume."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    direction = image.GetDirection()
    orientation = "\\".join(f"{v:g}" for v in (*direction[0:7:3], *direction[1:8:3]))
    for k in range(image.GetDepth()):
        slice_k = image[:, :, k]
        tags = {
            "0008|0060": "CT", "0008|0008": "ORIGINAL\\PRIMARY\\AXIAL", "0020|000e": series_uid,
            "0020|000d": series_uid.rsplit(".", 1)[0], "0010|0020": folder.parts[-3] if len(folder.parts) > 2 else "X",
            "0020|0037": orientation, "0020|0013": str(k + 1), "0018|0050": f"{image.GetSpacing()[2]:g}",
            "0020|0032": "\\".join(f"{v:g}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
            "0028|1052": "0", "0028|1053": "1",
        }  # fmt: skip
        for tag, value in tags.items():
            slice_k.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"CT.{series_uid}.{k + 1}.dcm"))
        writer.Execute(slice_k)


def write_tcia_pancreas(
    root: str | Path, num_cases: int = 2, shape: Shape = (12, 40, 40), seed: int = 0
) -> tuple[Path, dict[str, np.ndarray]]:
    """TCIA NIH Pancreas-CT layout with flipped-y label NIfTIs; returns (folder, true masks on the DICOM grid)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "Pancreas-CT"
    truth = {}
    spacing = (0.9, 0.9, 2.0)
    for i in range(1, num_cases + 1):
        image_array, organ = phantom(shape, rng, "ct")
        origin = (-250.0, -440.0 + i, -800.0)
        image = _image(np.rint(image_array).astype(np.int16), spacing, origin)
        patient = f"PANCREAS_{i:04d}"
        series = folder / patient / f"11-24-2015-PANCREAS{i:04d}-Pancreas-{i:05d}" / f"1-{i:05d}"
        write_dicom_series(image, series, f"1.2.826.0.1.3680043.8.498.{seed}.{i}")
        # The label's rows are stored bottom-up: flipped array, direction y = -1, origin at the last row.
        flipped_origin = (origin[0], origin[1] + (shape[1] - 1) * spacing[1], origin[2])
        label = _image(organ[:, ::-1, :].astype(np.uint8).copy(), spacing, flipped_origin, (1, 0, 0, 0, -1, 0, 0, 0, 1))
        (folder / "TCIA_pancreas_labels-02-05-2017").mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(label, str(folder / "TCIA_pancreas_labels-02-05-2017" / f"label{i:04d}.nii.gz"))
        truth[patient] = organ
    return folder, truth


def make_demo_sources(root: str | Path, seed: int = 0, num_cases: int = 12, shape: Shape = DEMO_SHAPE) -> dict:
    """Write a 3-task demo (CT spleen-like MSD, LGE-MRI-like LA h5, normalised-CT pancreas h5) under `root` and
    return its merge config (absolute paths; pass it to ``convert_from_config``).

    Per task: `num_cases` cases, 2 of them test cases, 4 labeled, the rest unlabeled. Takes about a second.
    """
    root = Path(root)
    n_test = 2
    write_msd_task(root, "Task09_Spleen", num_cases, shape, (1.0, 1.0, 1.0), seed, "ct", case_prefix="spleen")
    write_la_h5(root, num_cases - n_test, n_test, shape, seed + 1)
    write_pancreas_h5(root, num_cases, shape, seed + 2)
    labeled = min(4, num_cases - n_test)
    return {
        "dataset_id": 990,
        "dataset_name": "UniSeMiDemo",
        "description": "synthetic UniSeMi demo (dataset_conversion.synthetic.make_demo_sources)",
        "seed": seed,
        "selection": "seeded",
        "tasks": [
            {"name": "spleen", "format": "msd", "path": str(root / "Task09_Spleen"), "modality": "CT",
             "ct_window": "abdomen", "test_count": n_test, "labeled_count": labeled},
            # Same 1 mm spacing for every demo task, so nnU-Net does not resample the small images.
            {"name": "left_atrium", "format": "la_h5", "path": str(root / "LA"), "modality": "MRI",
             "spacing": 1.0, "labeled_count": labeled},
            {"name": "pancreas", "format": "pancreas_h5", "path": str(root / "Pancreas_h5"), "modality": "CT",
             "spacing": 1.0, "test_count": n_test, "labeled_count": labeled},
        ],
    }  # fmt: skip
