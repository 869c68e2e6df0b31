"""Converters and the merge on generated sources in every layout (no ../shared needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from dataset_conversion import left_atrium, merge_tasks, msd, pancreas_ct
from dataset_conversion.left_atrium import LeftAtriumH5Source, LeftAtriumNrrdSource
from dataset_conversion.merge_tasks import convert_from_config, default_labeled_count, plan_conversion
from dataset_conversion.msd import MSDSource
from dataset_conversion.pancreas_ct import PancreasDicomSource, PancreasH5Source
from dataset_conversion.synthetic import (
    make_demo_sources,
    write_la_h5,
    write_la_nrrd,
    write_msd_task,
    write_pancreas_h5,
    write_tcia_pancreas,
)
from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo

SMALL = (8, 20, 20)


def read(path: Path) -> tuple[sitk.Image, np.ndarray]:
    image = sitk.ReadImage(str(path))
    return image, sitk.GetArrayFromImage(image)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("demo")
    config = make_demo_sources(root / "sources", seed=0)
    out = convert_from_config(config, root / "Dataset990_UniSeMiDemo", write_preprocessed_splits=False)
    return config, out


# --- readers ---
def test_msd_reader_selects_label_values_and_keeps_geometry(tmp_path):
    folder = write_msd_task(tmp_path, "Task04_Hippocampus", 2, SMALL, (1.0, 1.0, 1.0), style="mri", two_labels=True,
                            modality="MRI", case_prefix="hippocampus")  # fmt: skip
    src_label = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / "hippocampus_001.nii.gz")))
    assert set(np.unique(src_label)) == {0, 1, 2}
    anterior = MSDSource(folder, [1]).load("hippocampus_001")
    both = MSDSource(folder, [1, 2]).load("hippocampus_001")
    assert np.array_equal(sitk.GetArrayFromImage(anterior.label), (src_label == 1).astype(np.uint8))
    assert np.array_equal(sitk.GetArrayFromImage(both.label), (src_label > 0).astype(np.uint8))
    assert anterior.image.GetDirection() == (-1, 0, 0, 0, -1, 0, 0, 0, 1)
    assert anterior.label.GetOrigin() == anterior.image.GetOrigin()


def test_la_h5_reader_transposes_xyz_and_sets_challenge_spacing(tmp_path):
    import h5py

    folder = write_la_h5(tmp_path, 2, 1, (10, 16, 24))
    source = LeftAtriumH5Source(folder)
    case = source.load(source.case_ids()[0])
    with h5py.File(folder / "2018LA_Seg_Training Set" / source.case_ids()[0] / "mri_norm2.h5") as f:
        image_xyz, label_xyz = f["image"][()], f["label"][()]
    assert image_xyz.shape == (24, 16, 10)
    assert case.image.GetSize() == (24, 16, 10)  # SimpleITK size is (x, y, z), like the h5 axes
    assert case.image.GetSpacing() == (0.625, 0.625, 0.625)
    assert np.array_equal(sitk.GetArrayFromImage(case.image), image_xyz.transpose(2, 1, 0))
    assert np.array_equal(sitk.GetArrayFromImage(case.label), label_xyz.transpose(2, 1, 0))


def test_la_nrrd_reader_maps_255_to_foreground(tmp_path):
    folder = write_la_nrrd(tmp_path, 1, SMALL)
    raw = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "CASE00" / "laendo.nrrd")))
    case = LeftAtriumNrrdSource(folder).load("CASE00")
    assert set(np.unique(raw)) == {0, 255}
    assert np.array_equal(sitk.GetArrayFromImage(case.label), (raw == 255).astype(np.uint8))
    assert case.image.GetSpacing() == (0.625, 0.625, 0.625) and case.image.GetOrigin() == (10.0, 20.0, 30.0)


def test_tcia_flipped_label_is_aligned_in_physical_space(tmp_path):
    folder, truth = write_tcia_pancreas(tmp_path, 1, (6, 24, 20))
    stored = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "TCIA_pancreas_labels-02-05-2017/label0001.nii.gz")))
    case = PancreasDicomSource(folder).load("PANCREAS_0001")
    label = sitk.GetArrayFromImage(case.label)
    assert case.image.GetSize() == (20, 24, 6) and case.image.GetSpacing() == pytest.approx((0.9, 0.9, 2.0))
    assert np.array_equal(label, truth["PANCREAS_0001"])
    assert not np.array_equal(stored, truth["PANCREAS_0001"])  # array order alone would mirror the organ


def test_pancreas_h5_reader(tmp_path):
    folder = write_pancreas_h5(tmp_path, 2, SMALL)
    source = PancreasH5Source(folder, spacing=(0.8, 0.8, 1.5))
    assert source.case_ids() == ["Pancreas0001", "Pancreas0002"]
    case = source.load("Pancreas0002")
    assert case.image.GetSpacing() == (0.8, 0.8, 1.5)
    image = sitk.GetArrayFromImage(case.image)
    assert image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
    assert sitk.GetArrayFromImage(case.label).sum() > 0


# --- merged dataset ---
def test_demo_dataset_layout_labels_and_contract(demo):
    config, out = demo
    dataset_json = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    info = UnifiedDatasetInfo.from_dataset_json(out)
    assert [t.name for t in info.tasks] == ["spleen", "left_atrium", "pancreas"]
    assert [t.modality for t in info.tasks] == ["CT", "MRI", "CT"]
    assert dataset_json["channel_names"] == {"0": "image"}
    assert dataset_json["labels"] == {"background": 0, "spleen": 1, "left_atrium": 2, "pancreas": 3, "ignore": 4}
    assert dataset_json["numTraining"] == 30 == len(list((out / "imagesTr").iterdir()))
    assert len(info.test) == 6 == len(list((out / "imagesTs").iterdir())) == len(list((out / "labelsTs").iterdir()))
    assert all(len(info.labeled_cases_of_task(t.id)) == 4 for t in info.tasks)
    for case in info.labeled + info.test:
        folder = "labelsTs" if case in info.test else "labelsTr"
        values = set(np.unique(read(out / folder / f"{case}.nii.gz")[1]).tolist())
        assert values == {0, info.case_to_task[case]}, case
    for case in info.unlabeled:
        assert set(np.unique(read(out / "labelsTr" / f"{case}.nii.gz")[1]).tolist()) == {4}
    for case in info.case_to_task:
        folder = "imagesTs" if case in info.test else "imagesTr"
        assert (out / folder / f"{case}_0000.nii.gz").is_file()
        assert case.startswith(info.tasks[info.case_to_task[case] - 1].name + "_")
    splits = json.loads((out / "splits_final.json").read_text(encoding="utf-8"))
    assert splits == info.semi_supervised_splits() and not set(splits[0]["train"]) & set(info.test)
    # LA h5 test cases come from the layout's own test.list
    la_test = (Path(config["tasks"][1]["path"]) / "test.list").read_text(encoding="utf-8").split()
    assert sorted(f"left_atrium_{c}" for c in la_test) == [c for c in info.test if c.startswith("left_atrium")]


def test_intensity_policy_per_modality(demo):
    _, out = demo
    info = UnifiedDatasetInfo.from_dataset_json(out)
    ct_image, ct = read(out / "imagesTr" / f"{info.unlabeled[0]}_0000.nii.gz")
    spleen_case = next(c for c in info.case_to_task if info.case_to_task[c] == 1 and c not in info.test)
    _, spleen = read(out / "imagesTr" / f"{spleen_case}_0000.nii.gz")
    assert spleen.dtype == np.int16 and spleen.min() == -125 and spleen.max() <= 275  # air clipped to the window
    la_case = next(c for c in info.case_to_task if info.case_to_task[c] == 2 and c not in info.test)
    _, la = read(out / "imagesTr" / f"{la_case}_0000.nii.gz")
    assert la.dtype == np.float32 and abs(la.mean()) < 0.05  # z-scored h5 written as is
    assert ct_image.GetSpacing() == (1.0, 1.0, 1.0)


def test_geometry_preserved_in_output(tmp_path):
    write_msd_task(tmp_path / "src", "Task09_Spleen", 3, SMALL, (0.8, 0.7, 2.5))
    config = {"tasks": [{"name": "spleen", "format": "msd", "path": str(tmp_path / "src/Task09_Spleen"),
                         "modality": "CT"}]}  # fmt: skip
    out = convert_from_config(config, tmp_path / "Dataset001_X", write_preprocessed_splits=False, verbose=False)
    source = sitk.ReadImage(str(tmp_path / "src/Task09_Spleen/imagesTr/spleen_002.nii.gz"))
    for name in ("imagesTr/spleen_spleen_002_0000.nii.gz", "labelsTr/spleen_spleen_002.nii.gz"):
        written = sitk.ReadImage(str(out / name))
        assert written.GetSpacing() == pytest.approx(source.GetSpacing())
        assert written.GetOrigin() == pytest.approx(source.GetOrigin())
        assert written.GetDirection() == pytest.approx(source.GetDirection())
        assert written.GetSize() == source.GetSize()


# --- label budget ---
@pytest.mark.parametrize(
    "n_train, fraction, expected",
    [(62, 0.1, 6), (62, 0.2, 12), (80, 0.1, 8), (80, 0.2, 16), (30, 0.1, 3), (30, 0.2, 6), (50, 0.1, 5), (50, 0.2, 10),
     (4, 0.1, 1)],
)  # fmt: skip
def test_paper_label_budget_counts(n_train, fraction, expected):
    assert default_labeled_count(n_train, fraction) == expected


@pytest.fixture(scope="module")
def budget_sources(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("budget")
    write_msd_task(root, "Task09_Spleen", 30, (4, 8, 8))
    write_la_h5(root, 20, 0, (4, 8, 8))
    return root


def _budget_config(root: Path, **top) -> dict:
    return {
        "tasks": [
            {"name": "spleen", "format": "msd", "path": str(root / "Task09_Spleen"), "modality": "CT"},
            {"name": "atrium", "format": "la_h5", "path": str(root / "LA")},
        ],
        **top,
    }


def _labeled(plan, task_id: int) -> list[str]:
    return plan.info.labeled_cases_of_task(task_id)


def test_budget_fraction_counts_and_seeded_reproducibility(budget_sources):
    p10 = plan_conversion(_budget_config(budget_sources), Path("."))
    p20 = plan_conversion(_budget_config(budget_sources), Path("."), labeled_fraction=0.2)
    again = plan_conversion(_budget_config(budget_sources), Path("."))
    other_seed = plan_conversion(_budget_config(budget_sources), Path("."), seed=1)
    assert (len(_labeled(p10, 1)), len(_labeled(p10, 2))) == (3, 2)
    assert (len(_labeled(p20, 1)), len(_labeled(p20, 2))) == (6, 4)
    assert _labeled(p10, 1) == _labeled(again, 1) and _labeled(p10, 2) == _labeled(again, 2)
    assert _labeled(p10, 1) != _labeled(other_seed, 1)
    assert p10.info.label_budget["labeled_counts"] == {"spleen": 3, "atrium": 2}
    assert len(p10.info.unlabeled) == 27 + 18


def test_budget_per_task_counts_and_first_mode(budget_sources):
    config = _budget_config(budget_sources, selection="first")
    config["tasks"][0]["labeled_count"] = 5
    plan = plan_conversion(config, Path("."), labeled_counts={"atrium": 3})
    train_list = (budget_sources / "LA" / "train.list").read_text(encoding="utf-8").split()
    assert _labeled(plan, 2) == sorted(f"atrium_{c}" for c in train_list[:3])  # first N in *list* order
    assert train_list[:3] != sorted(train_list)[:3]
    assert _labeled(plan, 1) == [f"spleen_spleen_{i:03d}" for i in range(1, 6)]
    assert plan.info.label_budget["selection"] == "first"


def test_test_split_seeded_and_disjoint(budget_sources):
    config = _budget_config(budget_sources)
    config["tasks"][0]["test_count"] = 5
    config["tasks"][1]["test_fraction"] = 0.25
    plan = plan_conversion(config, Path("."))
    again = plan_conversion(config, Path("."))
    assert len([c for c in plan.info.test if c.startswith("spleen")]) == 5
    assert len([c for c in plan.info.test if c.startswith("atrium")]) == 5
    assert plan.info.test == again.info.test
    assert not set(plan.info.test) & set(plan.info.labeled + plan.info.unlabeled)
    assert len(_labeled(plan, 1)) == 3  # 10% of the 25 remaining training cases: 2.5 rounds half up


def test_case_subsets_make_disjoint_tasks(tmp_path):
    folder = write_msd_task(tmp_path, "Task04_Hippocampus", 6, (4, 8, 8), style="mri", two_labels=True,
                            modality="MRI", case_prefix="hippocampus")  # fmt: skip
    config = {"tasks": [
        {"name": "anterior", "format": "msd", "path": str(folder), "labels": [1], "case_slice": [0, 3]},
        {"name": "posterior", "format": "msd", "path": str(folder), "labels": [2], "case_slice": [3, None]},
        {"name": "picked", "format": "msd", "path": str(folder), "labels": [1, 2], "cases": ["hippocampus_002"]},
    ]}  # fmt: skip
    for t in config["tasks"]:
        t["modality"] = "MRI"
    info = plan_conversion(config, Path(".")).info
    anterior = {c.split("_", 1)[1] for c, t in info.case_to_task.items() if t == 1}
    posterior = {c.split("_", 1)[1] for c, t in info.case_to_task.items() if t == 2}
    assert anterior == {"hippocampus_001", "hippocampus_002", "hippocampus_003"}
    assert posterior == {"hippocampus_004", "hippocampus_005", "hippocampus_006"}
    assert [c for c, t in info.case_to_task.items() if t == 3] == ["picked_hippocampus_002"]


# --- single-source command lines and preprocessed splits ---
def test_single_source_clis(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    msd_folder = write_msd_task(tmp_path / "src", "Task09_Spleen", 3, SMALL)
    la_folder = write_la_nrrd(tmp_path / "src", 2, SMALL)
    tcia_folder, _ = write_tcia_pancreas(tmp_path / "src", 2, (4, 16, 16))
    assert msd.main(["-i", str(msd_folder), "-d", "11", "--labeled-count", "2"]) == 0
    assert left_atrium.main(["-i", str(la_folder), "--layout", "nrrd", "-d", "12", "--test-count", "1"]) == 0
    assert pancreas_ct.main(["-i", str(tcia_folder), "-d", "13", "-n", "Panc", "--ct-window", "-100", "200"]) == 0
    spleen = UnifiedDatasetInfo.from_dataset_json(tmp_path / "raw" / "Dataset011_spleen")
    assert len(spleen.labeled) == 2 and len(spleen.unlabeled) == 1
    la = UnifiedDatasetInfo.from_dataset_json(tmp_path / "raw" / "Dataset012_leftatrium")
    assert la.tasks[0].modality == "MRI" and len(la.test) == 1
    panc = tmp_path / "raw" / "Dataset013_Panc"
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(next((panc / "imagesTr").iterdir()))))
    assert image.min() == -100 and image.max() <= 200
    splits = json.loads((tmp_path / "pre" / "Dataset013_Panc" / "splits_final.json").read_text(encoding="utf-8"))
    assert splits == json.loads((panc / "splits_final.json").read_text(encoding="utf-8"))


def test_merge_cli_from_yaml_with_data_root_and_overwrite(tmp_path, monkeypatch):
    monkeypatch.delenv("nnUNet_preprocessed", raising=False)
    write_msd_task(tmp_path / "data", "Task09_Spleen", 4, SMALL)
    write_pancreas_h5(tmp_path / "data", 3, SMALL)
    config = tmp_path / "config.yaml"
    config.write_text(
        "dataset_id: 7\ndataset_name: Two\ntasks:\n"
        "  - {name: spleen, format: msd, path: Task09_Spleen, modality: CT}\n"
        "  - {name: pancreas, format: pancreas_h5, path: Pancreas_h5}\n"
    , encoding="utf-8")
    out = tmp_path / "out" / "Dataset007_Two"
    argv = [str(config), "--shared", str(tmp_path / "data"), "-o", str(out), "--labeled-count", "pancreas=2"]
    assert merge_tasks.main(argv) == 0
    info = UnifiedDatasetInfo.from_dataset_json(out)
    assert len(info.labeled_cases_of_task(2)) == 2 and len(info.labeled_cases_of_task(1)) == 1
    assert merge_tasks.main(argv) != 0  # exists
    assert merge_tasks.main([*argv, "--overwrite", "--labeled-fraction", "0.5"]) == 0
    info = UnifiedDatasetInfo.from_dataset_json(out)
    assert len(info.labeled_cases_of_task(1)) == 2
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["Dataset007_Two"]  # no temporary folders left


def test_demo_dataset_passes_nnunet_integrity_check(demo):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    verify_dataset_integrity(str(demo[1]), num_processes=1)  # raises on any inconsistency


def test_paper_config_is_valid():
    from dataset_conversion.merge_tasks import load_config, parse_task_config

    path = Path(__file__).resolve().parents[1] / "dataset_conversion/configs/paper_four_tasks.yaml"
    config = load_config(path)
    tasks = [parse_task_config(t, Path("/data"), i) for i, t in enumerate(config["tasks"])]
    assert [(t.name, t.format, t.modality) for t in tasks] == [
        ("pancreas", "pancreas_ct_dicom", "CT"), ("left_atrium", "la_h5", "MRI"), ("spleen", "msd", "CT"),
        ("lung_tumour", "msd", "CT"),
    ]  # fmt: skip
    assert tasks[0].ct_window == (-125, 275) and tasks[3].ct_window == (-1000, 400)
    # 62 / 30 / 50 training cases after the held-out test cases -> the paper's 6 / 3 / 5 labeled cases
    assert [default_labeled_count(n, 0.1) for n in (82 - 20, 41 - 11, 63 - 13)] == [6, 3, 5]
