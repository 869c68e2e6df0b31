"""Bad input: a clear error naming the file, exit code != 0, no dataset (partial or not) left, sources untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import SimpleITK as sitk

from dataset_conversion import merge_tasks
from dataset_conversion.synthetic import write_la_h5, write_msd_task, write_tcia_pancreas

SMALL = (6, 12, 12)


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every source file: conversion must never modify a source."""
    return {
        str(p.relative_to(root)): (hashlib.md5(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def expect_failure(tmp_path: Path, sources: Path, tasks: list[dict], names: str, capsys, **top) -> str:
    """Run the CLI on a config; assert it fails naming `names`, leaves nothing behind and keeps sources intact."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"dataset_id": 5, "dataset_name": "Bad", "tasks": tasks, **top}), encoding="utf-8")
    before = snapshot(sources)
    out_parent = tmp_path / "out"
    out_parent.mkdir(exist_ok=True)
    rc = merge_tasks.main([str(config), "-o", str(out_parent / "Dataset005_Bad"), "--data-root", str(sources)])
    err = capsys.readouterr().err
    assert rc != 0
    assert "ERROR" in err and names in err, err
    assert list(out_parent.iterdir()) == [], "a (partial) dataset was left behind"
    assert snapshot(sources) == before
    return err


@pytest.fixture
def msd_source(tmp_path) -> Path:
    write_msd_task(tmp_path / "src", "Task09_Spleen", 3, SMALL)
    return tmp_path / "src"


MSD_TASK = {"name": "spleen", "format": "msd", "path": "Task09_Spleen", "modality": "CT"}


def _rewrite_label(path: Path, change) -> None:
    label = sitk.ReadImage(str(path))
    changed = change(label)
    sitk.WriteImage(changed, str(path))


def test_missing_image(tmp_path, msd_source, capsys):
    (msd_source / "Task09_Spleen/imagesTr/spleen_002.nii.gz").unlink()
    expect_failure(tmp_path, msd_source, [MSD_TASK], "imagesTr/spleen_002.nii.gz: missing image", capsys)


def test_missing_label(tmp_path, msd_source, capsys):
    (msd_source / "Task09_Spleen/labelsTr/spleen_003.nii.gz").unlink()
    expect_failure(tmp_path, msd_source, [MSD_TASK], "labelsTr/spleen_003.nii.gz: missing label", capsys)


def test_missing_tcia_label(tmp_path, capsys):
    write_tcia_pancreas(tmp_path / "src", 2, (4, 12, 12))
    (tmp_path / "src/Pancreas-CT/TCIA_pancreas_labels-02-05-2017/label0002.nii.gz").unlink()
    task = {"name": "pancreas", "format": "pancreas_ct_dicom", "path": "Pancreas-CT"}
    expect_failure(tmp_path, tmp_path / "src", [task], "label0002.nii.gz: missing label of PANCREAS_0002", capsys)


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda im: im[:, :, :-1], "label shape"),
        (lambda im: (im.SetSpacing((0.8, 0.8, 3.0)), im)[1], "label spacing"),
        (lambda im: (im.SetOrigin((101.0, 120.0, -45.0)), im)[1], "label origin"),
    ],
)
def test_label_grid_mismatch(tmp_path, msd_source, capsys, change, problem):
    _rewrite_label(msd_source / "Task09_Spleen/labelsTr/spleen_001.nii.gz", change)
    expect_failure(tmp_path, msd_source, [MSD_TASK], f"labelsTr/spleen_001.nii.gz: {problem}", capsys)


def test_origin_within_tolerance_is_accepted(tmp_path, msd_source):
    # header float noise (1e-4 mm) is not a mismatch; the written label then carries the image's exact geometry
    path = msd_source / "Task09_Spleen/labelsTr/spleen_001.nii.gz"
    _rewrite_label(path, lambda im: (im.SetOrigin(tuple(o + 1e-4 for o in im.GetOrigin())), im)[1])
    config = {"tasks": [dict(MSD_TASK, path=str(msd_source / "Task09_Spleen"))]}
    out = merge_tasks.convert_from_config(config, tmp_path / "ok", write_preprocessed_splits=False, verbose=False)
    image = sitk.ReadImage(str(out / "imagesTr/spleen_spleen_001_0000.nii.gz"))
    assert sitk.ReadImage(str(out / "labelsTr/spleen_spleen_001.nii.gz")).GetOrigin() == image.GetOrigin()


def test_unexpected_label_value(tmp_path, msd_source, capsys):
    def add_value_3(im):
        a = sitk.GetArrayFromImage(im)
        a[0, 0, 0] = 3
        out = sitk.GetImageFromArray(a)
        out.CopyInformation(im)
        return out

    _rewrite_label(msd_source / "Task09_Spleen/labelsTr/spleen_002.nii.gz", add_value_3)
    err = expect_failure(tmp_path, msd_source, [MSD_TASK], "spleen_002.nii.gz: unexpected label values [3]", capsys)
    assert "expected only [0, 1]" in err


def test_non_binary_float_label(tmp_path, msd_source, capsys):
    def to_fraction(im):
        out = sitk.GetImageFromArray(sitk.GetArrayFromImage(im).astype(np.float32) * 0.5)
        out.CopyInformation(im)
        return out

    _rewrite_label(msd_source / "Task09_Spleen/labelsTr/spleen_001.nii.gz", to_fraction)
    expect_failure(tmp_path, msd_source, [MSD_TASK], "spleen_001.nii.gz: label is not an integer mask", capsys)


def test_non_binary_h5_label(tmp_path, capsys):
    folder = write_la_h5(tmp_path / "src", 3, 0, SMALL)
    case = (folder / "train.list").read_text(encoding="utf-8").split()[1]
    with h5py.File(folder / "2018LA_Seg_Training Set" / case / "mri_norm2.h5", "r+") as f:
        label = f["label"][()]
        label[0, 0, 0] = 2
        f["label"][...] = label
    task = {"name": "atrium", "format": "la_h5", "path": "LA"}
    expect_failure(tmp_path, tmp_path / "src", [task], f"{case}/mri_norm2.h5: unexpected label values [2]", capsys)


def test_truncated_nifti(tmp_path, msd_source, capsys):
    path = msd_source / "Task09_Spleen/imagesTr/spleen_003.nii.gz"
    path.write_bytes(path.read_bytes()[:200])
    expect_failure(tmp_path, msd_source, [MSD_TASK], "spleen_003.nii.gz: unreadable image", capsys)


def test_truncated_h5(tmp_path, capsys):
    folder = write_la_h5(tmp_path / "src", 3, 0, SMALL)
    case = (folder / "train.list").read_text(encoding="utf-8").split()[0]
    path = folder / "2018LA_Seg_Training Set" / case / "mri_norm2.h5"
    path.write_bytes(path.read_bytes()[:300])
    task = {"name": "atrium", "format": "la_h5", "path": "LA"}
    expect_failure(tmp_path, tmp_path / "src", [task], f"{case}/mri_norm2.h5: unreadable h5 file", capsys)


def test_corrupt_dicom_series(tmp_path, capsys):
    folder, _ = write_tcia_pancreas(tmp_path / "src", 1, (4, 12, 12))
    dcm = sorted(folder.rglob("*.dcm"))[1]
    dcm.write_bytes(dcm.read_bytes()[:400])
    task = {"name": "pancreas", "format": "pancreas_ct_dicom", "path": "Pancreas-CT"}
    expect_failure(tmp_path, tmp_path / "src", [task], str(dcm.parent), capsys)


def test_tcia_label_not_overlapping_image(tmp_path, capsys):
    folder, _ = write_tcia_pancreas(tmp_path / "src", 1, (4, 12, 12))
    path = folder / "TCIA_pancreas_labels-02-05-2017/label0001.nii.gz"
    _rewrite_label(path, lambda im: (im.SetOrigin((500.0, 500.0, 500.0)), im)[1])
    task = {"name": "pancreas", "format": "pancreas_ct_dicom", "path": "Pancreas-CT"}
    expect_failure(tmp_path, tmp_path / "src", [task], "label0001.nii.gz: label does not overlap the image", capsys)


def test_duplicate_case_ids(tmp_path, msd_source, capsys):
    meta_path = msd_source / "Task09_Spleen/dataset.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["training"].append(meta["training"][0])
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    expect_failure(tmp_path, msd_source, [MSD_TASK], "dataset.json: duplicate case id spleen_001", capsys)


def test_duplicate_ids_in_list_file(tmp_path, capsys):
    folder = write_la_h5(tmp_path / "src", 3, 0, SMALL)
    ids = (folder / "train.list").read_text(encoding="utf-8").split()
    (folder / "train.list").write_text("\n".join([*ids, ids[0]]), encoding="utf-8")
    task = {"name": "atrium", "format": "la_h5", "path": "LA"}
    expect_failure(tmp_path, tmp_path / "src", [task], "train.list: duplicate case ids", capsys)


def test_ids_colliding_after_sanitising(tmp_path, msd_source, capsys):
    images = msd_source / "Task09_Spleen/imagesTr"
    labels = msd_source / "Task09_Spleen/labelsTr"
    shutil.copy(images / "spleen_001.nii.gz", images / "spleen 001.nii.gz")
    shutil.copy(labels / "spleen_001.nii.gz", labels / "spleen 001.nii.gz")
    meta_path = msd_source / "Task09_Spleen/dataset.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["training"].append({"image": "./imagesTr/spleen 001.nii.gz", "label": "./labelsTr/spleen 001.nii.gz"})
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    expect_failure(tmp_path, msd_source, [MSD_TASK], "dataset.json: duplicate case ids ['spleen_001']", capsys)


def test_empty_task_no_cases(tmp_path, capsys):
    (tmp_path / "src/LA/2018LA_Seg_Training Set").mkdir(parents=True)
    task = {"name": "atrium", "format": "la_h5", "path": "LA"}
    expect_failure(tmp_path, tmp_path / "src", [task], "LA: task atrium has no training cases (empty task)", capsys)


def test_empty_task_no_labeled_case(tmp_path, msd_source, capsys):
    expect_failure(tmp_path, msd_source, [dict(MSD_TASK, labeled_count=0)], "needs a labeled case", capsys)


def test_output_exists_without_overwrite(tmp_path, msd_source, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"tasks": [MSD_TASK]}), encoding="utf-8")
    out = tmp_path / "Dataset005_Bad"
    (out / "imagesTr").mkdir(parents=True)
    (out / "keep.txt").write_text("user data", encoding="utf-8")
    rc = merge_tasks.main([str(config), "-o", str(out), "--data-root", str(msd_source)])
    assert rc != 0 and f"{out}: output dataset already exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text(encoding="utf-8") == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dataset005_Bad", "config.json", "src"]


def test_failure_during_overwrite_keeps_old_dataset(tmp_path, msd_source, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"tasks": [MSD_TASK]}), encoding="utf-8")
    out = tmp_path / "out" / "Dataset005_Bad"
    argv = [str(config), "-o", str(out), "--data-root", str(msd_source)]
    assert merge_tasks.main(argv) == 0
    before = snapshot(out)
    (msd_source / "Task09_Spleen/labelsTr/spleen_003.nii.gz").write_bytes(b"not a nifti")
    assert merge_tasks.main([*argv, "--overwrite"]) != 0
    assert "spleen_003.nii.gz" in capsys.readouterr().err
    assert snapshot(out) == before and [p.name for p in out.parent.iterdir()] == ["Dataset005_Bad"]


@pytest.mark.parametrize(
    "task, message",
    [
        (dict(MSD_TASK, format="nifti_folder"), "unknown format 'nifti_folder'"),
        (dict(MSD_TASK, lables=[1]), "unknown keys ['lables']"),
        (dict(MSD_TASK, modality="PET"), "modality must be one of"),
        (dict(MSD_TASK, ct_window="brain"), "unknown ct_window preset 'brain'"),
        (dict(MSD_TASK, labels=[2]), "target labels [2] not among declared"),
        (dict(MSD_TASK, name="ignore"), "task name 'ignore'"),
    ],
)
def test_bad_task_config(tmp_path, msd_source, capsys, task, message):
    expect_failure(tmp_path, msd_source, [task], message, capsys)


def test_unknown_top_level_key_and_duplicate_task(tmp_path, msd_source, capsys):
    expect_failure(tmp_path, msd_source, [MSD_TASK], "unknown top-level keys ['labelled_fraction']", capsys,
                   labelled_fraction=0.2)  # fmt: skip
    expect_failure(tmp_path, msd_source, [MSD_TASK, MSD_TASK], "duplicate task names ['spleen']", capsys)


def test_4d_image_needs_a_channel(tmp_path, capsys):
    folder = write_msd_task(tmp_path / "src", "Task05_Prostate", 2, SMALL, modality="MRI", style="mri")
    for i in (1, 2):
        path = folder / f"imagesTr/spleen_{i:03d}.nii.gz"
        im = sitk.ReadImage(str(path))
        four_d = sitk.JoinSeries([im, im])
        sitk.WriteImage(four_d, str(path))
    task = {"name": "prostate", "format": "msd", "path": "Task05_Prostate", "modality": "MRI"}
    expect_failure(tmp_path, tmp_path / "src", [task], "spleen_001.nii.gz: image has 2 channels", capsys)


def test_dicom_series_with_missing_slice(tmp_path, capsys):
    folder, _ = write_tcia_pancreas(tmp_path / "src", 1, (5, 12, 12))
    middle = sorted(folder.rglob("*.dcm"), key=lambda p: int(p.name.split(".")[-2]))[2]
    middle.unlink()
    task = {"name": "pancreas", "format": "pancreas_ct_dicom", "path": "Pancreas-CT"}
    expect_failure(tmp_path, tmp_path / "src", [task], f"{middle.parent}: DICOM series has missing", capsys)


def test_4d_image_with_selected_channel_converts(tmp_path):
    folder = write_msd_task(tmp_path / "src", "Task05_Prostate", 2, SMALL, modality="MRI", style="mri")
    path = folder / "imagesTr/spleen_001.nii.gz"
    im = sitk.ReadImage(str(path))
    sitk.WriteImage(sitk.JoinSeries([im * 0, im]), str(path))
    config = {"tasks": [{"name": "prostate", "format": "msd", "path": str(folder), "modality": "MRI", "channel": 1,
                         "cases": ["spleen_001"]}]}  # fmt: skip
    out = merge_tasks.convert_from_config(config, tmp_path / "out", write_preprocessed_splits=False, verbose=False)
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "imagesTr/prostate_spleen_001_0000.nii.gz")))
    assert np.allclose(written, sitk.GetArrayFromImage(im))  # channel 1, not the all-zero channel 0
