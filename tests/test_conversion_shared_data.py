"""Every converter on the real files in ../shared/data (read-only; skipped when absent). Small subsets keep it fast."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import SimpleITK as sitk

from dataset_conversion.merge_tasks import convert_from_config
from dataset_conversion.pancreas_ct import read_dicom_series
from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo

pytestmark = pytest.mark.shared_data

PANCREAS_SERIES = "Pancreas-CT/PANCREAS_0001/11-24-2015-PANCREAS0001-Pancreas-00001/1-00001"


def array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def convert(tasks: list[dict], out: Path, **kwargs) -> tuple[Path, UnifiedDatasetInfo]:
    folder = convert_from_config({"tasks": tasks}, out, write_preprocessed_splits=False, verbose=False, **kwargs)
    return folder, UnifiedDatasetInfo.from_dataset_json(folder)


def test_la_h5_subset_first_mode(shared_data, tmp_path):
    la = shared_data / "LA2018_h5"
    listed = (la / "train.list").read_text(encoding="utf-8").split()
    task = {"name": "left_atrium", "format": "la_h5", "path": str(la), "cases": listed[:4], "labeled_count": 2}
    out, info = convert([task], tmp_path / "la", selection="first")
    assert info.labeled == sorted(f"left_atrium_{c}" for c in listed[:2])
    assert info.unlabeled == sorted(f"left_atrium_{c}" for c in listed[2:4])
    with h5py.File(la / "2018LA_Seg_Training Set" / listed[0] / "mri_norm2.h5") as f:
        image_xyz, label_xyz = f["image"][()], f["label"][()]
    written = sitk.ReadImage(str(out / "imagesTr" / f"left_atrium_{listed[0]}_0000.nii.gz"))
    assert written.GetSize() == image_xyz.shape and written.GetSpacing() == (0.625, 0.625, 0.625)
    assert np.array_equal(sitk.GetArrayFromImage(written), image_xyz.transpose(2, 1, 0))  # MRI: as is
    label = array(out / "labelsTr" / f"left_atrium_{listed[0]}.nii.gz")
    assert np.array_equal(label, label_xyz.transpose(2, 1, 0).astype(np.uint8))  # task 1 -> value 1
    assert set(np.unique(array(out / "labelsTr" / f"left_atrium_{listed[3]}.nii.gz")).tolist()) == {2}  # ignore


def test_hippocampus_as_two_tasks_on_disjoint_halves(shared_data, tmp_path):
    hippo = shared_data / "Task04_Hippocampus"
    tasks = [
        {"name": "anterior", "format": "msd", "path": str(hippo), "labels": [1], "modality": "MRI",
         "case_slice": [0, 4], "labeled_count": 4},
        {"name": "posterior", "format": "msd", "path": str(hippo), "labels": [2], "modality": "MRI",
         "case_slice": [4, 8], "test_count": 1},
    ]  # fmt: skip
    out, info = convert(tasks, tmp_path / "hippo")
    ids = sorted(p.name.removesuffix(".nii.gz") for p in (hippo / "imagesTr").iterdir())[:8]
    assert {c.split("_", 1)[1] for c, t in info.case_to_task.items() if t == 1} == set(ids[:4])
    assert {c.split("_", 1)[1] for c, t in info.case_to_task.items() if t == 2} == set(ids[4:])
    assert len(info.test) == 1 and len(info.labeled_cases_of_task(2)) == 1
    source_label = sitk.ReadImage(str(hippo / "labelsTr" / f"{ids[0]}.nii.gz"))
    written = sitk.ReadImage(str(out / "labelsTr" / f"anterior_{ids[0]}.nii.gz"))
    assert np.array_equal(sitk.GetArrayFromImage(written), (sitk.GetArrayFromImage(source_label) == 1).astype(np.uint8))
    assert written.GetDirection() == source_label.GetDirection() and written.GetOrigin() == source_label.GetOrigin()
    test_case = info.test[0]
    assert set(np.unique(array(out / "labelsTs" / f"{test_case}.nii.gz")).tolist()) == {0, 2}


def test_tcia_pancreas_label_lands_on_soft_tissue(shared_data, tmp_path):
    root = shared_data / "ct_samples" / "Pancreas-CT"
    task = {"name": "pancreas", "format": "pancreas_ct_dicom", "path": str(root), "modality": "CT"}
    out, info = convert([task], tmp_path / "panc")
    assert info.labeled == ["pancreas_PANCREAS_0001"]
    hu_image = read_dicom_series(shared_data / "ct_samples" / PANCREAS_SERIES)
    hu = sitk.GetArrayFromImage(hu_image)
    written = sitk.ReadImage(str(out / "labelsTr" / "pancreas_PANCREAS_0001.nii.gz"))
    label = sitk.GetArrayFromImage(written) == 1
    assert written.GetOrigin() == pytest.approx(hu_image.GetOrigin()) and written.GetSize() == hu_image.GetSize()
    assert written.GetDirection() == pytest.approx(hu_image.GetDirection())
    assert label.sum() > 500
    assert -100 <= hu[label].mean() <= 200  # pancreas is soft tissue
    stored = array(root / "TCIA_pancreas_labels-02-05-2017" / "label0001.nii.gz") == 1
    assert not -100 <= hu[stored].mean() <= 200  # the label's array order alone lands on fat/air
    image = array(out / "imagesTr" / "pancreas_PANCREAS_0001_0000.nii.gz")
    assert image.dtype == np.int16 and image.min() == -125 and image.max() == 275  # abdominal window


def test_spleen_and_lung_samples_windows_and_geometry(shared_data, tmp_path):
    ct = shared_data / "ct_samples"
    before = hashlib.md5((ct / "Task06_Lung/imagesTr/lung_901.nii.gz").read_bytes()).hexdigest()
    tasks = [
        {"name": "spleen", "format": "msd", "path": str(ct / "Task09_Spleen"), "modality": "CT"},
        {"name": "lung_tumour", "format": "msd", "path": str(ct / "Task06_Lung"), "modality": "CT",
         "ct_window": "lung", "labeled_count": 2},
    ]  # fmt: skip
    out, info = convert(tasks, tmp_path / "ct")
    source = sitk.ReadImage(str(ct / "Task09_Spleen/imagesTr/spleen_2.nii.gz"))
    spleen = sitk.ReadImage(str(out / "imagesTr/spleen_spleen_2_0000.nii.gz"))
    assert spleen.GetDirection() == source.GetDirection() == (-1, 0, 0, 0, -1, 0, 0, 0, 1)
    assert spleen.GetSpacing() == pytest.approx(source.GetSpacing()) and spleen.GetOrigin() == source.GetOrigin()
    values = sitk.GetArrayFromImage(spleen)
    assert values.dtype == np.int16 and (values.min(), values.max()) == (-125, 275)
    lung = array(out / "imagesTr/lung_tumour_lung_901_0000.nii.gz")
    assert (lung.min(), lung.max()) == (-1000, 400)
    source_lung_label = array(ct / "Task06_Lung/labelsTr/lung_901.nii.gz")
    assert np.array_equal(array(out / "labelsTr/lung_tumour_lung_901.nii.gz"), source_lung_label * 2)
    assert info.labeled_cases_of_task(2) == ["lung_tumour_lung_901", "lung_tumour_lung_902"]
    assert hashlib.md5((ct / "Task06_Lung/imagesTr/lung_901.nii.gz").read_bytes()).hexdigest() == before


def test_mixed_real_dataset_passes_nnunet_integrity_check(shared_data, tmp_path):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    listed = (shared_data / "LA2018_h5" / "train.list").read_text(encoding="utf-8").split()
    tasks = [
        {"name": "left_atrium", "format": "la_h5", "path": str(shared_data / "LA2018_h5"), "cases": listed[:3]},
        {"name": "hippocampus_anterior", "format": "msd", "path": str(shared_data / "Task04_Hippocampus"),
         "labels": [1], "modality": "MRI", "case_slice": [0, 3], "test_count": 1},
        {"name": "pancreas", "format": "pancreas_ct_dicom", "path": str(shared_data / "ct_samples/Pancreas-CT")},
    ]  # fmt: skip
    out, info = convert(tasks, tmp_path / "Dataset321_Mixed")
    assert [t.modality for t in info.tasks] == ["MRI", "MRI", "CT"]
    assert len(info.labeled) == 3 and len(info.unlabeled) == 3 and len(info.test) == 1
    verify_dataset_integrity(str(out), num_processes=1)  # raises on any inconsistency


def test_shared_data_example_config_plans_all_sources(shared_data):
    from dataset_conversion.merge_tasks import load_config, plan_conversion

    config = load_config(Path(__file__).resolve().parents[1] / "dataset_conversion/configs/shared_data_example.yaml")
    info = plan_conversion(config, shared_data).info
    assert [t.name for t in info.tasks][:3] == ["left_atrium", "hippocampus_anterior", "hippocampus_posterior"]
    assert info.label_budget["training_cases"]["left_atrium"] == 64 and len(info.labeled_cases_of_task(1)) == 6
    assert len(info.case_to_task) == 80 + 208 + 1 + 1 + 2
