"""Folder evaluation, its outputs and the CLI on a small synthetic unified dataset; overlays."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from matplotlib.image import imread

from nnunetv2_unisemi.evaluation.evaluate import evaluate_folder, format_summary_table
from nnunetv2_unisemi.evaluation.evaluate_cli import main as cli_main
from nnunetv2_unisemi.evaluation.metrics import compute_binary_metrics
from nnunetv2_unisemi.evaluation.overlays import choose_slices, save_overlay_png, write_case_overlay

SHAPE = (12, 20, 24)  # numpy z, y, x
SPACING_XYZ = (0.7, 0.8, 2.5)  # SimpleITK order; numpy order is (2.5, 0.8, 0.7)
SPACING_ZYX = SPACING_XYZ[::-1]


def write(array: np.ndarray, path: Path, spacing=SPACING_XYZ) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def cube(lo, hi, value=1) -> np.ndarray:
    a = np.zeros(SHAPE, np.uint8)
    a[tuple(slice(l, h) for l, h in zip(lo, hi))] = value
    return a


def make_dataset(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """Tasks 1 'liver' (3 test cases) and 2 'spleen' (1 test case); references hold only their task's value."""
    dataset = root / "Dataset999_Tiny"
    dj = {
        "channel_names": {"0": "image"},
        "labels": {"background": 0, "liver": 1, "spleen": 2, "ignore": 3},
        "file_ending": ".nii.gz",
        "numTraining": 0,
        "unisemi": {
            "tasks": [{"id": 1, "name": "liver", "modality": "CT"}, {"id": 2, "name": "spleen", "modality": "CT"}],
            "case_to_task": {"liv_a": 1, "liv_b": 1, "liv_c": 1, "spl_a": 2},
            "labeled": [],
            "unlabeled": [],
            "test": ["liv_a", "liv_b", "liv_c", "spl_a"],
        },
    }
    dataset.mkdir(parents=True)
    (dataset / "dataset.json").write_text(json.dumps(dj), encoding="utf-8")
    plate_ref, plate_pred = cube((3, 5, 5), (4, 15, 15)), cube((5, 5, 5), (6, 15, 15))
    multi_label = cube((4, 4, 4), (10, 12, 12)) + cube((2, 14, 14), (8, 18, 20), 2)
    cases = {
        # Multi-label prediction: the spleen value (2) next to the liver must not count for a liver case.
        "liv_a": {"ref": cube((2, 4, 4), (8, 12, 12)), "pred": multi_label},
        # One-voxel plates two slices apart along numpy axis 0 (2.5 mm slices): every distance is 5 mm.
        "liv_b": {"ref": plate_ref, "pred": plate_pred},
        # Prediction without any liver voxel (only another task's value): distances undefined.
        "liv_c": {"ref": cube((2, 4, 4), (6, 9, 9)), "pred": cube((2, 4, 4), (6, 9, 9), 2)},
        "spl_a": {"ref": cube((3, 3, 3), (9, 10, 12), 2), "pred": cube((3, 3, 3), (9, 10, 12), 2)},
    }  # fmt: skip
    rng = np.random.default_rng(0)
    for case, arrays in cases.items():
        write(arrays["ref"], dataset / "labelsTs" / f"{case}.nii.gz")
        write(arrays["pred"], root / "pred" / f"{case}.nii.gz")
        write(rng.normal(size=SHAPE).astype(np.float32), dataset / "imagesTs" / f"{case}_0000.nii.gz")
    return cases


@pytest.fixture
def tiny(tmp_path):
    cases = make_dataset(tmp_path)
    return tmp_path, tmp_path / "Dataset999_Tiny" / "labelsTs", tmp_path / "pred", cases


def by_case(summary: dict) -> dict[str, dict]:
    return {r["case"]: r for r in summary["cases"]}


def test_per_case_metrics_use_only_the_case_task_value_and_header_spacing(tiny):
    root, ref_dir, pred_dir, cases = tiny
    summary = evaluate_folder(ref_dir, pred_dir, output_dir=root / "out", verbose=False)
    records = by_case(summary)
    assert set(records) == set(cases)
    for case, arrays in cases.items():
        k = records[case]["task_id"]
        want = compute_binary_metrics(arrays["pred"] == k, arrays["ref"] == k, SPACING_ZYX).as_dict()
        for key, value in want.items():
            assert records[case][key] == pytest.approx(value, nan_ok=True), (case, key)
    # Value 2 in liv_a's prediction is ignored: 4 of the 6 liver slices overlap.
    assert records["liv_a"]["pred_voxels"] == 6 * 8 * 8
    assert records["liv_a"]["dice"] == pytest.approx(4 / 6)
    # Header spacing (x,y,z) = (0.7, 0.8, 2.5) is applied in numpy order: plates 2 slices apart are 5 mm apart.
    assert records["liv_b"]["hd95"] == pytest.approx(5.0) and records["liv_b"]["asd"] == pytest.approx(5.0)
    assert records["liv_b"]["spacing"] == pytest.approx(list(SPACING_ZYX))
    assert records["liv_c"]["pred_empty"] and math.isnan(records["liv_c"]["hd95"])
    assert records["spl_a"]["dice"] == 1.0 and records["spl_a"]["hd95"] == 0.0


def test_voxel_distances_ignore_the_spacing(tiny):
    root, ref_dir, pred_dir, _ = tiny
    summary = evaluate_folder(ref_dir, pred_dir, output_dir=root / "out", voxel_distances=True, verbose=False)
    assert by_case(summary)["liv_b"]["hd95"] == pytest.approx(2.0)  # two slices, whatever their thickness
    assert summary["distance_unit"] == "voxel" and "95HD vox" in format_summary_table(summary)


def test_summary_averages_task_means_and_counts_undefined_distances(tiny):
    root, ref_dir, pred_dir, _ = tiny
    summary = evaluate_folder(ref_dir, pred_dir, output_dir=root / "out", verbose=False)
    liver, spleen = summary["tasks"]["liver"], summary["tasks"]["spleen"]
    assert liver["n_cases"] == 3 and spleen["n_cases"] == 1
    assert liver["dice"]["mean"] == pytest.approx((4 / 6 + 0 + 0) / 3)
    assert liver["dice"]["std"] == pytest.approx(np.std([4 / 6, 0, 0]))
    # liv_c has no distance: the liver distance means are over 2 cases and the exclusion is counted.
    assert liver["hd95"]["n"] == 2 and liver["n_distance_undefined"] == 1 and liver["n_pred_empty"] == 1
    assert liver["asd"]["mean"] == pytest.approx(np.mean([by_case(summary)["liv_a"]["asd"], 5.0]))
    # Average = mean over tasks of the task means (not the mean over the 4 cases).
    assert summary["average"]["dice"]["mean"] == pytest.approx((liver["dice"]["mean"] + 1.0) / 2)
    assert summary["average"]["dice"]["mean"] != pytest.approx(np.mean([4 / 6, 0, 0, 1]))

    table = format_summary_table(summary)
    lines = table.splitlines()
    assert lines[0].startswith("| Task | n | Dice % | Jaccard % | ASD mm | 95HD mm")
    assert lines[-1].startswith(f"| Average | 4 | {100 * summary['average']['dice']['mean']:.2f} |")
    assert f"{100 * liver['dice']['mean']:.2f} ± {100 * liver['dice']['std']:.2f}" in lines[2]
    text = format_summary_table(summary, "text", include_assd=True)
    assert "ASSD mm" in text and "Average" in text.splitlines()[-1]


def test_outputs_are_written_and_readable(tiny):
    root, ref_dir, pred_dir, _ = tiny
    out = root / "out"
    summary = evaluate_folder(ref_dir, pred_dir, output_dir=out, verbose=False)
    rows = list(csv.DictReader(open(out / "metrics_per_case.csv", encoding="utf-8")))
    assert [r["case"] for r in rows] == ["liv_a", "liv_b", "liv_c", "spl_a"]
    assert math.isnan(float(rows[2]["hd95"])) and rows[2]["pred_empty"] == "True"
    assert float(rows[1]["hd95"]) == pytest.approx(5.0)
    per_case = json.load(open(out / "metrics_per_case.json", encoding="utf-8"))  # strict JSON: NaN written as null
    assert per_case[2]["hd95"] is None and per_case[0]["dice"] == pytest.approx(4 / 6)
    saved = json.load(open(out / "summary.json", encoding="utf-8"))
    assert saved["tasks"]["liver"]["dice"]["mean"] == pytest.approx(summary["tasks"]["liver"]["dice"]["mean"])
    assert "one-directional" in saved["definitions"]["asd"]
    assert (out / "summary.md").read_text(encoding="utf-8").strip() == format_summary_table(summary)


def test_output_defaults_to_prediction_folder_and_parallel_matches_serial(tiny):
    _, ref_dir, pred_dir, _ = tiny
    serial = evaluate_folder(ref_dir, pred_dir, verbose=False)
    assert (pred_dir / "summary.json").is_file()
    parallel = evaluate_folder(ref_dir, pred_dir, num_processes=2, verbose=False)
    assert json.dumps(parallel["cases"]) == json.dumps(serial["cases"])


def test_nnunet_summary_in_the_output_folder_is_not_overwritten(tiny):
    _, ref_dir, pred_dir, _ = tiny
    nnunet_summary = '{"foreground_mean": {"Dice": 0.9}, "mean": {}, "metric_per_case": []}'
    (pred_dir / "summary.json").write_text(nnunet_summary, encoding="utf-8")
    with pytest.raises(FileExistsError, match="nnU-Net's own evaluation summary"):
        evaluate_folder(ref_dir, pred_dir, verbose=False)
    assert (pred_dir / "summary.json").read_text(encoding="utf-8") == nnunet_summary


@pytest.mark.parametrize("task", ["spleen", "2", 2, "SPLEEN"])
def test_task_filter(tiny, task):
    root, ref_dir, pred_dir, _ = tiny
    summary = evaluate_folder(ref_dir, pred_dir, output_dir=root / "out", task=task, verbose=False)
    assert [r["case"] for r in summary["cases"]] == ["spl_a"]
    assert list(summary["tasks"]) == ["spleen"]
    with pytest.raises(KeyError, match="unknown task 'kidney'"):
        evaluate_folder(ref_dir, pred_dir, output_dir=root / "out", task="kidney", verbose=False)


def test_missing_prediction_is_an_error_naming_the_file_unless_allowed(tiny):
    root, ref_dir, pred_dir, _ = tiny
    (pred_dir / "liv_b.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match="liv_b.nii.gz"):
        evaluate_folder(ref_dir, pred_dir, output_dir=root / "out", verbose=False)
    summary = evaluate_folder(ref_dir, pred_dir, output_dir=root / "out", allow_missing=True, verbose=False)
    assert summary["n_missing_predictions"] == 1 and "liv_b" not in by_case(summary)


def test_shape_and_spacing_mismatch_are_errors_naming_the_files(tiny):
    root, ref_dir, pred_dir, _ = tiny
    write(np.zeros((12, 20, 25), np.uint8), pred_dir / "liv_a.nii.gz")
    with pytest.raises(ValueError, match=r"shape mismatch: prediction .*liv_a\.nii\.gz"):
        evaluate_folder(ref_dir, pred_dir, output_dir=root / "out", verbose=False)
    write(np.zeros(SHAPE, np.uint8), pred_dir / "liv_a.nii.gz", spacing=(0.7, 0.8, 3.0))
    with pytest.raises(ValueError, match=r"spacing mismatch: prediction .*liv_a\.nii\.gz"):
        evaluate_folder(ref_dir, pred_dir, output_dir=root / "out", verbose=False)


def test_reference_with_ignore_label_or_unknown_case_is_rejected(tiny):
    root, ref_dir, pred_dir, _ = tiny
    write(cube((0, 0, 0), SHAPE, 3), ref_dir / "liv_a.nii.gz")
    with pytest.raises(ValueError, match="ignore label 3"):
        evaluate_folder(ref_dir, pred_dir, output_dir=root / "out", verbose=False)
    write(cube((2, 4, 4), (6, 9, 9)), ref_dir / "stranger.nii.gz")
    with pytest.raises(KeyError, match="stranger"):
        evaluate_folder(ref_dir, pred_dir, output_dir=root / "out", verbose=False)


def test_cli_writes_outputs_prints_table_and_overlays(tiny, capsys):
    root, ref_dir, pred_dir, _ = tiny
    out = root / "cli_out"
    cli_main(["-ref", str(ref_dir), "-pred", str(pred_dir), "-o", str(out), "--overlays"])
    printed = capsys.readouterr().out
    assert "Average" in printed and "Dice %" in printed
    assert json.load(open(out / "summary.json", encoding="utf-8"))["average"]["n_cases"] == 4
    pngs = sorted(p.name for p in (out / "overlays").glob("*.png"))
    assert pngs == ["liv_a.png", "liv_b.png", "liv_c.png", "spl_a.png"]
    assert (out / "overlays" / "liv_a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit, match="unknown task"):
        cli_main(["-ref", str(ref_dir), "-pred", str(pred_dir), "-o", str(out), "-task", "kidney"])


# --- overlays -------------------------------------------------------------------------------------------------------
def colour_centroid_x(png: np.ndarray, colour: str) -> tuple[int, float]:
    r, g, b = png[..., 0], png[..., 1], png[..., 2]
    if colour == "green":
        hit = (g > 0.8) & (r < 0.3) & (b < 0.3)
    else:
        hit = (r > 0.8) & (g < 0.3) & (b < 0.3)
    ys, xs = np.nonzero(hit)
    return len(xs), float(xs.mean()) if len(xs) else math.nan


def test_overlay_png_shows_reference_and_prediction_where_they_are(tmp_path):
    shape = (5, 60, 60)
    ref, pred = np.zeros(shape, bool), np.zeros(shape, bool)
    ref[:, 20:40, 5:25] = True  # left
    pred[:, 20:40, 35:55] = True  # right
    image = np.zeros(shape, np.float32)
    out = tmp_path / "case.png"
    slices = save_overlay_png(image, ref, pred, (1.0, 1.0, 1.0), out, slices=[2])
    assert slices == [2]
    png = imread(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.ndim == 3
    n_green, x_green = colour_centroid_x(png, "green")
    n_red, x_red = colour_centroid_x(png, "red")
    assert n_green > 50 and n_red > 50
    assert x_green < x_red  # the reference contour is drawn left of the prediction, as in the masks

    empty_pred = tmp_path / "empty.png"
    save_overlay_png(image, ref, np.zeros(shape, bool), (1.0, 1.0, 1.0), empty_pred, slices=[2])
    assert colour_centroid_x(imread(empty_pred), "red")[0] < n_red / 10
    assert colour_centroid_x(imread(empty_pred), "green")[1] == pytest.approx(x_green, abs=2)


def test_choose_slices_largest_reference_area_and_prediction_centre():
    ref, pred = np.zeros((10, 8, 8), bool), np.zeros((10, 8, 8), bool)
    ref[2, 1:7, 1:7] = True
    ref[3, 3:5, 3:5] = True
    pred[6:9, 2:4, 2:4] = True
    assert choose_slices(ref, pred) == [2, 7]
    assert choose_slices(ref, ref) == [2]  # centre of mass 2.1 rounds onto the largest slice: drawn once
    assert choose_slices(np.zeros_like(ref), np.zeros_like(pred)) == [5]


def test_case_overlay_is_shown_in_radiological_orientation(tmp_path):
    # Direction diag(-1, -1, 1) (RAS-like, as many NIfTI files): array column 0 is the patient's left, which the
    # LPS-oriented overlay must show on the right of the image.
    shape = (5, 60, 60)
    ref, pred = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    ref[:, 20:40, 5:25] = 1
    pred[:, 20:40, 35:55] = 1
    images = []
    for array in (ref, pred):
        img = sitk.GetImageFromArray(array)
        img.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
        images.append(img)
    write_case_overlay(images[0], images[1], 1, tmp_path / "flipped.png")
    png = imread(tmp_path / "flipped.png")
    assert colour_centroid_x(png, "green")[1] > colour_centroid_x(png, "red")[1]
