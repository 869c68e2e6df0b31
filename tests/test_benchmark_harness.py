"""The real-data benchmark's own pieces (benchmarks/): the binary per-task supervised baseline and its relabelling."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load(relative: str, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, REPO_ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench_trainers():
    return _load("benchmarks/trainers/unisemi_benchmark_trainers.py", "_bench_trainers")


@pytest.fixture(scope="module")
def run_benchmark():
    return _load("benchmarks/run_benchmark.py", "_bench_run")


def _plans_and_dataset(demo):
    pre = next(Path(demo["env"]["nnUNet_preprocessed"]).glob(f"Dataset{demo['dataset_id']}_*"))
    plans = json.loads((pre / "nnUNetPlans.json").read_text())
    plans["continue_training"] = False  # set by nnU-Net's run_training before it builds a trainer (2.8)
    return plans, json.loads((pre / "dataset.json").read_text())


def test_task_binary_trainer_trains_task_k_of_fold_k_as_foreground_vs_rest(demo, bench_trainers, monkeypatch,
                                                                           tmp_path):
    # nnU-Net 2.8 reads its folders from the environment when it uses them
    monkeypatch.setenv("nnUNet_preprocessed", demo["env"]["nnUNet_preprocessed"])
    monkeypatch.setenv("nnUNet_results", str(tmp_path))
    plans, dataset_json = _plans_and_dataset(demo)
    task = demo["info"].tasks[1]
    trainer = bench_trainers.nnUNetTrainer_TaskBinary(plans, demo["config"], task.id, dataset_json,
                                                      torch.device("cpu"))
    assert trainer.label_manager.num_segmentation_heads == 2
    assert trainer.label_manager.ignore_label is None
    assert trainer.dataset_json["labels"] == {"background": 0, task.name: 1}
    assert "labels" in dataset_json and len(dataset_json["labels"]) > 2  # the caller's dict is not modified
    # targets of the unified label map (other tasks' values, the ignore value) become task k vs everything else
    ignore = demo["info"].ignore_label
    target = torch.tensor([0, 1, 2, 3, ignore], dtype=torch.int16).view(1, 1, 5)
    batch = trainer._binary({"target": [target, target[..., :2]]})
    assert batch["target"][0].flatten().tolist() == [0, 0, 1, 0, 0]
    assert batch["target"][1].flatten().tolist() == [0, 0]
    plans, dataset_json = _plans_and_dataset(demo)
    with pytest.raises(ValueError, match="fold"):
        bench_trainers.nnUNetTrainer_TaskBinary(plans, demo["config"], 0, dataset_json, torch.device("cpu"))


def test_binary_predictions_are_written_with_the_task_value(run_benchmark, tmp_path):
    staging, out = tmp_path / "staging", tmp_path / "out"
    staging.mkdir()
    arr = np.zeros((4, 5, 6), np.uint8)
    arr[1:3, 2:4, 3:5] = 1
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((1.0, -2.0, 3.0))
    sitk.WriteImage(img, str(staging / "case_a.nii.gz"))
    run_benchmark.relabel_binary_predictions(staging, out, ["case_a"], ".nii.gz", 3)
    written = sitk.ReadImage(str(out / "case_a.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), arr * 3)
    assert written.GetSpacing() == pytest.approx((0.7, 0.8, 2.5))
    assert written.GetOrigin() == pytest.approx((1.0, -2.0, 3.0))
    arr[0, 0, 0] = 2
    bad = sitk.GetImageFromArray(arr)
    sitk.WriteImage(bad, str(staging / "case_b.nii.gz"))
    with pytest.raises(RuntimeError, match="case_b.nii.gz"):
        run_benchmark.relabel_binary_predictions(staging, out, ["case_b"], ".nii.gz", 3)


def test_incremental_task_study_is_one_command_with_one_dataset_and_table_per_task_set(run_benchmark):
    dataset_config, dataset_ids, parse_args = (run_benchmark.dataset_config, run_benchmark.dataset_ids,
                                               run_benchmark.parse_args)
    task_subsets, task_suffix = run_benchmark.task_subsets, run_benchmark.task_suffix

    args = parse_args(["--incremental", "--tasks", "hippocampus_posterior", "left_atrium", "hippocampus_anterior",
                       "--budgets", "10"])
    subsets = task_subsets(args)
    # the given order decides what is added when; each set is listed in the datasets' own task order
    assert subsets == [["hippocampus_posterior"], ["left_atrium", "hippocampus_posterior"],
                       ["left_atrium", "hippocampus_anterior", "hippocampus_posterior"]]
    names, ids = set(), set()
    for tasks in subsets:
        sub = parse_args(["--tasks", *tasks, "--budgets", "10"])
        (dataset_id,) = dataset_ids(sub).values()
        config = dataset_config(sub, 10, dataset_id)
        assert [t["name"] for t in config["tasks"]] == tasks
        names.add(config["dataset_name"])
        ids.add(dataset_id)
    assert len(names) == len(ids) == 3 and "UniSeMiBench10" in names  # the last prefix is the full benchmark
    # the same task set given in another order is the same dataset (id and name)
    assert task_suffix(["left_atrium", "hippocampus_posterior"]) == task_suffix(["hippocampus_posterior",
                                                                                  "left_atrium"])
    assert task_subsets(parse_args(["--tasks", "left_atrium"])) == [["left_atrium"]]


def test_a_run_of_one_label_budget_keeps_the_other_budgets_rows_in_the_shared_table(run_benchmark, tmp_path):
    args = run_benchmark.parse_args(["--root", str(tmp_path), "--budgets", "20", "--aggregate-only"])
    runner = run_benchmark.Runner(args)
    assert run_benchmark.table_datasets(runner, args) == {}
    for name in ("Dataset801_UniSeMiBench10", "Dataset802_UniSeMiBench20"):
        (tmp_path / name).mkdir()
    assert run_benchmark.table_datasets(runner, args) == {10: "Dataset801_UniSeMiBench10",
                                                           20: "Dataset802_UniSeMiBench20"}
    table = run_benchmark.aggregate(runner, args, run_benchmark.table_datasets(runner, args))
    assert "### 10% labels" in table and "### 20% labels" in table
    # a task subset's table lists only that task set's datasets
    subset = run_benchmark.parse_args(["--root", str(tmp_path), "--budgets", "20", "--tasks", "left_atrium"])
    assert run_benchmark.table_datasets(runner, subset) == {}


def test_compute_curve_counts_k_models_for_per_task_methods_and_skips_subset_tables(tmp_path):
    curve = _load("benchmarks/compute_curve.py", "_bench_curve")
    tasks = ("a", "b", "c")

    def result(dice):
        return {"seeds": ["seed0"], "tasks": {t: {"dice": {"mean": dice, "std": 0.0, "n": 1}} for t in tasks},
                "average": {"average": {"dice": {"mean": dice, "std": 0.0, "n": 1}}}}

    (tmp_path / "results_iter600.json").write_text(json.dumps(
        {"D": {"supervised": result(70.0), "unisemi": result(50.0)}}))
    (tmp_path / "results_iter1800.json").write_text(json.dumps({"D": {"unisemi": result(72.0)}}))
    (tmp_path / "results_iter600Tab.json").write_text(json.dumps({"D": {"unisemi": result(99.0)}}))  # subset study
    rows = curve.curve_rows({"cpu": tmp_path}, "D", batch_size=2)
    by_key = {(r["method"], r["iterations_per_run"]): r for r in rows}
    assert set(by_key) == {("supervised", 600), ("unisemi", 600), ("unisemi", 1800)}
    # three per-task models of 600 = one unified model of 1800: same total iterations and labeled patches per task
    assert by_key[("supervised", 600)]["total_iterations"] == by_key[("unisemi", 1800)]["total_iterations"] == 1800
    assert by_key[("supervised", 600)]["labeled_patches_per_task"] == 1200
    assert by_key[("unisemi", 1800)]["labeled_patches_per_task"] == 1200
    assert by_key[("unisemi", 600)]["labeled_patches_per_task"] == 400
    only = curve.curve_rows({"cpu": tmp_path}, "D", 2, methods=["unisemi"], iterations=[1800])
    assert [(r["method"], r["dice_mean"]) for r in only] == [("unisemi", 72.0)]


def test_false_positive_location_tells_a_thick_mask_from_a_second_structure():
    fpl = _load("benchmarks/false_positive_location.py", "_bench_fpl")
    ref = np.zeros((40, 20, 20), bool)
    ref[20:30, 5:15, 5:15] = True  # 10 slices of a 10 x 10 square, 1 mm voxels
    thick = ref.copy()
    thick[19:31, 4:16, 4:16] = True  # one voxel too thick all round: every false positive within 1.5 mm
    near = fpl.false_positive_location(thick, ref, (1.0, 1.0, 1.0), far_mm=10.0)
    assert near["fp_far_share"] == 0.0
    assert near["volume_ratio"] == pytest.approx(12 * 12 * 12 / 1000)
    assert near["fp_outside_slices_share"] == pytest.approx(2 * 144 / (1728 - 1000))  # slices 19 and 30 only
    second = ref.copy()
    second[8:13, 5:15, 5:15] = True  # another structure below: slices 8-12 lie 12, 11, 10, 9 and 8 mm away
    far = fpl.false_positive_location(second, ref, (1.0, 1.0, 1.0), far_mm=10.0)
    assert far["fp_far_share"] == pytest.approx(0.4)  # slices 8 and 9 only: 10 mm is not farther than 10 mm
    assert far["fp_outside_slices_share"] == 1.0
    assert far["dice_largest_component"] == 1.0 and far["dice"] == pytest.approx(2000 / 2500)
    assert "fp_covered_by_other" not in far
    other = np.zeros_like(ref)
    other[8:10, 5:15, 5:15] = True  # another prompt marks the far slices 8-9 and nothing else
    covered = fpl.false_positive_location(second, ref, (1.0, 1.0, 1.0), 10.0, other)
    assert covered["fp_covered_by_other"] == pytest.approx(0.4) and covered["other_volume_ratio"] == 0.2
    probability = np.where(ref, 0.99, np.where(second, 0.7, 0.0))
    probability[20:22] = 0.9  # two of the ten atrium slices less sure
    sure = fpl.false_positive_location(second, ref, (1.0, 1.0, 1.0), 10.0, probability=probability, confidence=0.95)
    assert sure["tp_confident_share"] == pytest.approx(0.8) and sure["fp_confident_share"] == 0.0


def test_steps_find_the_nnunet_commands_of_the_running_interpreter_without_an_activated_environment(
        run_benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # `.venv/bin/python benchmarks/run_benchmark.py`, venv not activated
    runner = run_benchmark.Runner(run_benchmark.parse_args(["--root", str(tmp_path), "--aggregate-only"]))
    found = shutil.which("nnUNetv2_train", path=runner.env()["PATH"])
    assert found is not None and Path(found).parent == Path(sys.executable).parent


def test_device_run_resumes_on_a_warm_machine_without_training_or_predicting_again(tmp_path):
    device_run = _load("benchmarks/device_run.py", "_bench_device_run")
    dataset = "Dataset801_UniSeMiBench10"
    units = device_run.parse_plan(["1800:supervised,unisemi:0", "1800:unisemi:1"], num_tasks=3)
    supervised, unisemi0, unisemi1 = units
    assert supervised.pending == [1, 2, 3] and unisemi0.pending == [0]

    def model_dir(unit):
        return device_run.model_dir(tmp_path, dataset, unit)

    # per-task model: folds 1 and 3 finished, fold 2 was killed (a checkpoint_latest but no final one)
    for fold, name in ((1, "checkpoint_final.pth"), (2, "checkpoint_latest.pth"), (3, "checkpoint_final.pth")):
        (model_dir(supervised) / f"fold_{fold}").mkdir(parents=True)
        (model_dir(supervised) / f"fold_{fold}" / name).write_bytes(b"")
    # seed 0 of UniSeMi trained, its prediction cut at the deadline (a partial file only); seed 1 fully done
    for unit in (unisemi0, unisemi1):
        (model_dir(unit) / "fold_0").mkdir(parents=True)
        (model_dir(unit) / "fold_0" / "checkpoint_final.pth").write_bytes(b"")
    preds = tmp_path / "preds"
    preds.mkdir()
    done = device_run.prediction_file(tmp_path, 1800, 1, "unisemi")
    done.write_bytes(b"")
    done.with_name(done.name.replace("seed1", "seed0") + ".partial").write_bytes(b"")

    device_run.resume(tmp_path, dataset, units)
    assert (supervised.pending, sorted(supervised.done), supervised.predicted) == ([2], [1, 3], False)
    assert (unisemi0.pending, unisemi0.done, unisemi0.predicted) == ([], [0], False)  # predicted next, not retrained
    assert (unisemi1.pending, unisemi1.done, unisemi1.predicted) == ([], [0], True)
    # the killed fold continues from its latest checkpoint; a fold never started trains from scratch
    killed = device_run.training_command(tmp_path, dataset, supervised, 2, "cuda")
    assert killed[1:] == ["-m", "nnunetv2.run.run_training", "801", "3d_cpu", "2", "-tr", supervised.trainer,
                          "-device", "cuda", "--c"]
    (new_unit,) = device_run.parse_plan(["1800:unisemi:2"], num_tasks=3)
    fresh = device_run.training_command(tmp_path, dataset, new_unit, 0, "cpu")
    assert fresh[1:] == ["-m", "nnunetv2.run.run_training", "801", "3d_cpu", "0", "-tr", new_unit.trainer,
                         "-device", "cpu"]


def _write_eval(folder: Path, dice_by_case: dict[str, tuple[str, float]]) -> None:
    """An evaluation folder as run_benchmark.evaluate writes it: per-case CSV and the per-task summary."""
    folder.mkdir(parents=True)
    rows = ["case,task_id,task,dice,jaccard,asd,hd95,assd,pred_empty,ref_empty,pred_voxels,ref_voxels,spacing"]
    per_task = {}
    for case, (task, dice) in dice_by_case.items():
        rows.append(f"{case},1,{task},{dice},0,0,0,0,False,False,{int(1000 * dice)},1000,1x1x1")
        per_task.setdefault(task, []).append(dice)
    (folder / "metrics_per_case.csv").write_text("\n".join(rows) + "\n")
    tasks = {t: {"dice": {"mean": float(np.mean(v))}} for t, v in per_task.items()}
    average = float(np.mean([t["dice"]["mean"] for t in tasks.values()]))
    (folder / "summary.json").write_text(json.dumps({"tasks": tasks, "average": {"dice": {"mean": average}}}))


def test_compare_methods_separates_a_gain_from_a_batch_shift_and_names_a_missing_run(tmp_path):
    compare_methods = _load("benchmarks/compare_methods.py", "_bench_compare")
    rng = np.random.default_rng(0)
    # B is 0.02 Dice above A on every liver case and equal on the spleen; batch "two" shifts both methods by +0.05
    for batch, seeds, shift in (("one", (0, 1, 2), 0.0), ("two", (3, 4, 5), 0.05)):
        for seed in seeds:
            noise = rng.normal(0, 0.002, 8)
            for method, gain in (("a", 0.0), ("b", 0.02)):
                cases = {f"liver_{i}": ("liver", 0.70 + 0.01 * i + shift + gain + noise[i]) for i in range(4)}
                cases |= {f"spleen_{i}": ("spleen", 0.80 + shift + noise[4 + i]) for i in range(4)}
                _write_eval(tmp_path / batch / "D" / "iter10" / f"seed{seed}" / "eval" / method, cases)
    out = tmp_path / "report.md"
    argv = ["--a", "a", "--b", "b", "--dataset", "D", "--iterations", "10", "-o", str(out),
            "--batch", f"one={tmp_path / 'one'}:0,1,2", "--batch", f"two={tmp_path / 'two'}:3,4,5"]
    assert compare_methods.main(argv) == 0
    report = out.read_text()
    # the average over two tasks gains half the liver's 2 points, in each batch and pooled
    assert "| one | 3 |" in report and "| **pooled** | 6 |" in report
    pooled = next(line for line in report.splitlines() if line.startswith("| **pooled**"))
    assert pooled.split("|")[6].strip() == "+1.00"
    # within a batch B wins all 9 pairs; across batches the shift decides: B of batch two beats A of one, not back
    assert "B above A in 27 of 36 pairs of one run of each (pooled)." in report
    # the batch shift (5 points) inflates the pooled spread, not the batch-centred difference
    assert "Batch-centred (each run minus its batch's mean of A): B - A = +1.00" in report
    liver = next(line for line in report.splitlines() if line.startswith("| liver | 4 |"))
    assert liver.split("|")[3].strip() == "4" and liver.split("|")[4].strip() == "+2.00"
    spleen = next(line for line in report.splitlines() if line.startswith("| spleen | 4 |"))
    assert spleen.split("|")[3].strip() == "0"

    shutil.rmtree(tmp_path / "two" / "D" / "iter10" / "seed4" / "eval" / "b")
    with pytest.raises(FileNotFoundError, match=r"batch two, seed 4, b: no .*seed4/eval/b/summary.json"):
        compare_methods.main(argv)

    # each method its own seeds in a batch (NAME=ROOT:SEEDS_OF_A:SEEDS_OF_B): A of seed 0 against B of seeds 1, 2
    argv = ["--a", "a", "--b", "b", "--dataset", "D", "--iterations", "10", "-o", str(out),
            "--batch", f"one={tmp_path / 'one'}:0:1,2"]
    assert compare_methods.main(argv) == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| one |")).split("|")
    assert [row[2].strip(), row[4].strip()] == ["1", "2"]  # seeds of A, of B
    assert abs(float(row[6]) - 1.0) < 0.3  # B - A: the +1 point of the liver's gain, up to one seed's noise
    assert "B above A in 2 of 2 pairs" in out.read_text()
    with pytest.raises(FileNotFoundError, match=r"batch one, seed 4, b: no "):
        compare_methods.main(argv[:-1] + [f"one={tmp_path / 'one'}:0:4"])
    with pytest.raises(SystemExit):
        compare_methods.main(argv[:-1] + [f"one={tmp_path / 'one'}:0:1:2"])


def _unisemi_block(test, labeled, unlabeled):
    cases = {**{c: 1 for c in test + labeled + unlabeled if c.startswith("liver")},
             **{c: 2 for c in test + labeled + unlabeled if c.startswith("spleen")}}
    return {"unisemi": {"tasks": [{"id": 1, "name": "liver"}, {"id": 2, "name": "spleen"}], "case_to_task": cases,
                        "test": test, "labeled": labeled, "unlabeled": unlabeled}}


def test_training_case_evaluation_checks_the_withheld_labels_and_feeds_compare_methods(run_benchmark, tmp_path):
    training_cases = _load("benchmarks/evaluate_training_cases.py", "_bench_training_cases")
    dataset = _unisemi_block(["liver_9", "spleen_9"], ["liver_0", "spleen_0"], ["spleen_2", "liver_1", "liver_2"])
    assert run_benchmark.cases_by_task(dataset, "unlabeled") == {"liver": ["liver_1", "liver_2"],
                                                                 "spleen": ["spleen_2"]}
    assert run_benchmark.cases_by_task(dataset) == {"liver": ["liver_9"], "spleen": ["spleen_9"]}
    everything = ["liver_0", "liver_1", "liver_2", "spleen_0", "spleen_2"]
    training_cases.check_truth(dataset, _unisemi_block(["spleen_9", "liver_9"], everything, []), tmp_path)
    with pytest.raises(ValueError, match="other test cases"):
        training_cases.check_truth(dataset, _unisemi_block(["liver_1", "spleen_9"], everything, []), tmp_path)
    with pytest.raises(ValueError, match=r"dataset.json: 1 training cases .* not labeled there, e.g. \['liver_2'\]"):
        training_cases.check_truth(dataset, _unisemi_block(["liver_9", "spleen_9"], everything[:2] + everything[3:],
                                                           ["liver_2"]), tmp_path)
    assert training_cases.parse_run("supervised:5") == ("supervised", 5)
    for bad in ("supervised", "nosuchmethod:1", "supervised:x"):
        with pytest.raises(Exception, match="METHOD:SEED"):
            training_cases.parse_run(bad)

    # compare_methods --split unlabeled reads eval_unlabeled/, not the test cases' eval/
    compare_methods = _load("benchmarks/compare_methods.py", "_bench_compare_split")
    for seed in (0, 1):
        for method, gain in (("a", 0.0), ("b", 0.05)):
            for folder, base in (("eval", 0.7), ("eval_unlabeled", 0.6)):
                cases = {f"liver_{i}": ("liver", base + gain + 0.01 * i + 0.001 * seed) for i in range(3)}
                _write_eval(tmp_path / "r" / "D" / "iter10" / f"seed{seed}" / folder / method, cases)
    out = tmp_path / "report.md"
    argv = ["--a", "a", "--b", "b", "--dataset", "D", "--iterations", "10", "-o", str(out), "--split", "unlabeled",
            "--batch", f"r={tmp_path / 'r'}:0,1"]
    assert compare_methods.main(argv) == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| r |")).split("|")
    assert row[3].strip().startswith("61.") and row[6].strip() == "+5.00"  # the unlabeled cases' 0.6 + ..., not 0.7
    shutil.rmtree(tmp_path / "r" / "D" / "iter10" / "seed1" / "eval_unlabeled" / "b")
    with pytest.raises(FileNotFoundError, match=r"seed1/eval_unlabeled/b/summary.json"):
        compare_methods.main(argv)
