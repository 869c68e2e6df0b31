"""Real-data CPU benchmark of UniSeMi against per-task supervised nnU-Net (issue 5; results in docs/BENCHMARKS.md).

From the development data in ../shared/data it builds one unified dataset per label budget:

- left_atrium           LA2018_h5 (UA-MT h5, 80 cases): 20 held-out test cases, 60 training cases
- hippocampus_anterior  Task04_Hippocampus label 1, sorted cases 0..103: 20 test, 84 training
- hippocampus_posterior Task04_Hippocampus label 2, sorted cases 104..207: 20 test, 84 training

(test cases: a seeded choice, the same for every budget, never trained on; labeled cases: a seeded round(fraction x
training cases) per task, the rest of the training cases unlabeled), plans and preprocesses it with nnU-Net
(3d_fullres) plus the project's `3d_cpu` configuration, then for every seed and method trains with one iteration
budget, predicts the test cases and evaluates them (Dice, Jaccard, ASD, 95HD):

- supervised   plain nnU-Net per task on that task's labeled cases only, as a binary model (the paper's "VNet"
               rows; nnUNetTrainer_TaskBinary): fold k (k = task id) appended to splits_final.json =
               {train: task k's labeled cases, val: the same}; its label-1 predictions are mapped to k
- supervised_multiclass  the same folds with plain nnUNetTrainer (K + 1 outputs; the first benchmark's baseline)
- nounlabeled  nnUNetTrainerUniSeMi_NoUnlabeled (one multi-task network, labeled cases only)
- unisemi      nnUNetTrainerUniSeMi (fold 0: labeled + unlabeled cases)
- taskinfo     nnUNetTrainerUniSeMi_TaskInfo

A "seed" is a repeated run with its own nnUNet_results root (nnU-Net training is not seeded). Every method gets the
same number of training iterations (`--iterations`; trainer classes `<base>_bench<N>` in benchmarks/trainers/,
20 epochs of N/20 iterations, batch 2, no final validation). UniSeMi predicts each test case with its own task's
prompt. Mirroring test-time augmentation is off for every method unless `--tta` is given.

Layout (everything under --root, default benchmark_runs/ in the repository, git-ignored):

    nnUNet_raw/, nnUNet_preprocessed/            shared by all seeds
    Dataset<id>_<name>/test_inputs/<task>/        symlinks to that task's test images
    Dataset<id>_<name>/iter<N>/seed<s>/results/        nnUNet_results of that seed and iteration budget
    Dataset<id>_<name>/iter<N>/seed<s>/pred/<method>/  test predictions (all tasks in one folder)
    Dataset<id>_<name>/iter<N>/seed<s>/eval/<method>/  summary.json, metrics_per_case.csv, summary.md
    logs/                                         one log file per step
    ledger.json                                   wall time of every step that ran
    results_iter<N>.md, results_iter<N>.json      the aggregated tables (mean +- std over seeds)

The script resumes: a training with checkpoint_final.pth, a prediction folder holding every expected file and an
evaluation with summary.json are skipped; a training with only checkpoint_latest.pth continues (`--c`).

Examples:

    python benchmarks/run_benchmark.py --budgets 10 --seeds 0 1 2 --methods supervised unisemi --iterations 240
    python benchmarks/run_benchmark.py --budgets 10 --seeds 0 --methods nounlabeled taskinfo --iterations 240
    python benchmarks/run_benchmark.py --budgets 20 --seeds 0 --iterations 240
    python benchmarks/run_benchmark.py --aggregate-only --iterations 240
    python benchmarks/run_benchmark.py --tasks left_atrium hippocampus_anterior ...   # a task subset (own dataset id)
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAINER_DIR = Path(__file__).resolve().parent / "trainers"

ALL_TASKS = {
    "left_atrium": {"name": "left_atrium", "format": "la_h5", "path": "LA2018_h5", "modality": "MRI"},
    "hippocampus_anterior": {"name": "hippocampus_anterior", "format": "msd", "path": "Task04_Hippocampus",
                             "labels": [1], "modality": "MRI", "case_slice": [0, 104]},
    "hippocampus_posterior": {"name": "hippocampus_posterior", "format": "msd", "path": "Task04_Hippocampus",
                              "labels": [2], "modality": "MRI", "case_slice": [104, None]},
}
METHODS = {  # method -> trainer base class
    "supervised": "nnUNetTrainer_TaskBinary",
    "supervised_multiclass": "nnUNetTrainer",
    "nounlabeled": "nnUNetTrainerUniSeMi_NoUnlabeled",
    "unisemi": "nnUNetTrainerUniSeMi",
    "taskinfo": "nnUNetTrainerUniSeMi_TaskInfo",
    "unisemi_constant_lambda": "nnUNetTrainerUniSeMi_ConstantLambda",
    "unisemi_leaky_head": "nnUNetTrainerUniSeMi_LeakyHead",
    "unisemi_mlp_head": "nnUNetTrainerUniSeMi_MLPHead",
    "unisemi_separate_prompts": "nnUNetTrainerUniSeMi_SeparatePrompts",
    "unisemi_orthogonal_prompts": "nnUNetTrainerUniSeMi_OrthogonalPrompts",
    "unisemi_orthogonal_prompts_task_sum": "nnUNetTrainerUniSeMi_OrthogonalPrompts_TaskSum",
    "unisemi_per_task_batch": "nnUNetTrainerUniSeMi_PerTaskBatch",
    "unisemi_orthogonal_prompts_per_task_batch": "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch",
    "unisemi_orthogonal_prompts_per_task_batch_task_sum": "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum",
    "unisemi_exclusive_orthogonal_prompts_per_task_batch_task_sum":
        "nnUNetTrainerUniSeMi_ExclusiveOrthogonalPrompts_PerTaskBatch_TaskSum",
    "nounlabeled_orthogonal_prompts_per_task_batch_task_sum":
        "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled",
    "nounlabeled_nosynthetic_orthogonal_prompts_per_task_batch_task_sum":
        "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled_NoSynthetic",
    "unisemi_orthogonal_prompts_per_task_batch_task_sum_scaled_lambda":
        "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_ScaledLambda",
    "unisemi_orthogonal_prompts_per_task_batch_task_sum_two_way":
        "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TwoWay",
    "unisemi_orthogonal_prompts_per_task_batch_task_sum_confident_unlabeled":
        "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_ConfidentUnlabeled",
    "unisemi_orthogonal_prompts_per_task_batch_task_sum_task_oversampling":
        "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TaskOversampling",
    "unisemi_orthogonal_prompts_per_task_batch_task_sum_teacher_unlabeled":
        "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled",
    "unisemi_orthogonal_prompts_per_task_batch_task_sum_teacher_unlabeled_light_synthetic":
        "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic",
    "unisemi_orthogonal_prompts_per_task_batch_task_sum_teacher_unlabeled_light_synthetic_wide":
        "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic_Wide",
    # the comparison methods of issue 6 (K + 1 output channels; nnUNetv2_predict writes label k)
    "meanteacher": "nnUNetTrainerMeanTeacher",
    "bcp": "nnUNetTrainerBCP",
    "unimeanteacher": "nnUNetTrainerUniMeanTeacher",
    "unibcp": "nnUNetTrainerUniBCP",
}
PER_TASK_METHODS = ("supervised", "supervised_multiclass", "meanteacher", "bcp")  # one model per task: fold k = task k
METHOD_LABELS = {"supervised": "Supervised nnU-Net per task, binary (VNet rows)",
                 "supervised_multiclass": "Supervised nnU-Net per task, K+1 outputs",
                 "nounlabeled": "UniSeMi_NoUnlabeled",
                 "unisemi": "UniSeMi", "taskinfo": "UniSeMi_TaskInfo",
                 "unisemi_constant_lambda": "UniSeMi, lambda = 1 from the start",
                 "unisemi_leaky_head": "UniSeMi, DoDNet's 3-layer head with LeakyReLU",
                 "unisemi_mlp_head": "UniSeMi, DoDNet's 3-layer ReLU head (the default before 2026-11-28)",
                 "unisemi_separate_prompts": "UniSeMi, cross-task exclusion + no path shared by the prompts",
                 "unisemi_orthogonal_prompts": "UniSeMi, per-prompt kernels kept orthogonal",
                 "unisemi_orthogonal_prompts_task_sum":
                     "UniSeMi, per-prompt kernels kept orthogonal, task losses summed (default batch)",
                 "unisemi_per_task_batch": "UniSeMi, labeled batch of 2 patches per task",
                 "unisemi_orthogonal_prompts_per_task_batch":
                     "UniSeMi, per-prompt kernels kept orthogonal, labeled batch of 2 patches per task",
                 "unisemi_orthogonal_prompts_per_task_batch_task_sum":
                     "UniSeMi, orthogonal kernels, 2 patches per task, task losses summed",
                 "unisemi_exclusive_orthogonal_prompts_per_task_batch_task_sum":
                     "UniSeMi, cross-task exclusion, orthogonal kernels, 2 patches per task, task losses summed",
                 "nounlabeled_orthogonal_prompts_per_task_batch_task_sum":
                     "UniSeMi_NoUnlabeled, orthogonal kernels, 2 patches per task, task losses summed",
                 "nounlabeled_nosynthetic_orthogonal_prompts_per_task_batch_task_sum":
                     "Task prompts only (no synthetic task, no unlabeled data), orthogonal kernels, 2 patches per "
                     "task, task losses summed",
                 "unisemi_orthogonal_prompts_per_task_batch_task_sum_scaled_lambda":
                     "UniSeMi, orthogonal kernels, 2 patches per task, task losses summed, lambda = K + 1",
                 "unisemi_orthogonal_prompts_per_task_batch_task_sum_two_way":
                     "UniSeMi, orthogonal kernels, 2 patches per task, task losses summed, gradient through P_agg",
                 "unisemi_orthogonal_prompts_per_task_batch_task_sum_confident_unlabeled":
                     "UniSeMi, orthogonal kernels, 2 patches per task, task losses summed, confident P_agg voxels only",
                 "unisemi_orthogonal_prompts_per_task_batch_task_sum_task_oversampling":
                     "UniSeMi, orthogonal kernels, 2 patches per task, task losses summed, foreground 1 of 2 per task",
                 "unisemi_orthogonal_prompts_per_task_batch_task_sum_teacher_unlabeled":
                     "UniSeMi, orthogonal kernels, 2 patches per task, task losses summed, P_agg from an EMA teacher",
                 "unisemi_orthogonal_prompts_per_task_batch_task_sum_teacher_unlabeled_light_synthetic":
                     "UniSeMi, orthogonal kernels, 2 patches per task, task losses summed, P_agg from an EMA teacher, "
                     "synthetic task weighted per sample",
                 "unisemi_orthogonal_prompts_per_task_batch_task_sum_teacher_unlabeled_light_synthetic_wide":
                     "UniSeMi, as the row above with a sqrt(K) times wider backbone (K per-task models' parameters)",
                 "meanteacher": "Mean teacher (UA-MT style) per task", "bcp": "BCP per task",
                 "unimeanteacher": "Uni-MT (all tasks, K+1 outputs)", "unibcp": "Uni-BCP (all tasks, K+1 outputs)"}
PLAIN_PREDICTOR_METHODS = ("supervised_multiclass", "meanteacher", "bcp", "unimeanteacher", "unibcp")
CONFIGURATION = "3d_cpu"
METRICS = (("dice", "Dice %", 100.0), ("jaccard", "Jaccard %", 100.0), ("asd", "ASD mm", 1.0),
           ("hd95", "95HD mm", 1.0))


def code_state() -> dict:
    """Which package code a step ran with (others may edit the working tree while a long benchmark runs)."""
    import hashlib  # noqa: PLC0415

    def git(*a):
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout

    diff = git("diff", "HEAD", "--", "nnunetv2_unisemi", "benchmarks/trainers")
    return {"git_head": git("rev-parse", "--short", "HEAD").strip(),
            "package_diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:12] if diff else None}


def log(msg: str) -> None:
    print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", flush=True)


def interpreter_first_path() -> str:
    """PATH with this interpreter's bin folder first: the nnUNetv2_* commands of its environment, also when that
    environment is not activated (`.venv/bin/python benchmarks/run_benchmark.py`)."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


# ------------------------------------------------------------------------------------------------------ ledger
class Ledger:
    """Wall time of every step that ran (json, rewritten atomically after each step)."""

    def __init__(self, path: Path):
        self.path = path
        self.entries = json.loads(path.read_text()) if path.is_file() else {}

    def record(self, key: str, wall_s: float, command: str, status: str, **extra) -> None:
        self.entries = json.loads(self.path.read_text()) if self.path.is_file() else {}
        now = datetime.datetime.now().isoformat(timespec="seconds")
        self.entries[key] = {"wall_s": round(wall_s, 1), "finished": now, "status": status, "command": command,
                             "host_cpus": os.cpu_count(), **extra}
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.entries, indent=2))
        os.replace(tmp, self.path)


class Runner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.root = Path(args.root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        self.ledger = Ledger(self.root / "ledger.json")
        self.raw = self.root / "nnUNet_raw"
        self.preprocessed = self.root / "nnUNet_preprocessed"

    def env(self, results: Path | None = None) -> dict:
        env = dict(os.environ)
        env["nnUNet_raw"] = str(self.raw)
        env["nnUNet_preprocessed"] = str(self.preprocessed)
        env["nnUNet_results"] = str(results or self.root / "results_unused")
        env["nnUNet_extTrainer"] = str(TRAINER_DIR)
        env["nnUNet_n_proc_DA"] = str(self.args.da_processes)
        env["nnUNet_compile"] = "f"
        env["PATH"] = interpreter_first_path()
        return env

    def run(self, key: str, cmd: list[str], results: Path | None = None, **extra) -> None:
        """Run one step as a subprocess, log to logs/<key>.log, record its wall time; raise on failure."""
        log_file = self.root / "logs" / (key.replace("/", "__") + ".log")
        command = " ".join(shlex.quote(c) for c in cmd)
        log(f"START {key}: {command}")
        code = code_state()  # at start: the subprocess imports the package now
        t0 = time.perf_counter()
        with open(log_file, "a") as fh:
            fh.write(f"\n===== {datetime.datetime.now().isoformat()} {command}\n")
            fh.flush()
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=self.env(results), cwd=REPO)
        wall = time.perf_counter() - t0
        status = "ok" if proc.returncode == 0 else f"failed rc={proc.returncode}"
        self.ledger.record(key, wall, command, status, log=str(log_file), code=code, **extra)
        log(f"{'DONE' if proc.returncode == 0 else 'FAILED'} {key} in {wall:.0f} s (log {log_file})")
        if proc.returncode != 0:
            raise RuntimeError(f"step {key} failed (rc {proc.returncode}), see {log_file}")

    def timed(self, key: str, fn, description: str, **extra):
        log(f"START {key}: {description}")
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        self.ledger.record(key, wall, description, "ok", **extra)
        log(f"DONE {key} in {wall:.0f} s")
        return out


# ----------------------------------------------------------------------------------------------------- dataset
def dataset_ids(args) -> dict[int, int]:
    if args.dataset_ids:
        if len(args.dataset_ids) != len(args.budgets):
            raise SystemExit("--dataset-ids needs one id per --budgets entry")
        return dict(zip(args.budgets, args.dataset_ids))
    missing = sum(1 << i for i, t in enumerate(ALL_TASKS) if t not in args.tasks)
    return {b: 800 + 10 * missing + b // 10 for b in args.budgets}


def task_suffix(tasks: list[str]) -> str:
    """'' for all tasks, else e.g. 'Tlahahp' (first letters of each task's first and last word)."""
    canonical = [t for t in ALL_TASKS if t in tasks]  # a task set is one dataset, whatever order it was given in
    return "" if canonical == list(ALL_TASKS) else "T" + "".join(t[0] + t.split("_")[-1][0] for t in canonical)


def task_subsets(args) -> list[list[str]]:
    """The task sets to run: --tasks itself, or with --incremental its prefixes (A; A+B; A+B+C), the paper's
    Table 5 study as one command."""
    prefixes = [args.tasks[:i] for i in range(1, len(args.tasks) + 1)] if args.incremental else [args.tasks]
    return [[t for t in ALL_TASKS if t in prefix] for prefix in prefixes]  # a dataset holds its tasks in this order


def dataset_config(args, budget: int, dataset_id: int) -> dict:
    tasks = []
    for name in (t for t in ALL_TASKS if t in args.tasks):
        entry = dict(ALL_TASKS[name])
        entry["test_count"] = args.test_count
        tasks.append(entry)
    return {"dataset_id": dataset_id, "dataset_name": f"UniSeMiBench{budget}{task_suffix(args.tasks)}",
            "seed": args.data_seed,
            "labeled_fraction": budget / 100.0, "selection": "seeded", "tasks": tasks}


def table_datasets(runner: Runner, args) -> dict[int, str]:
    """The datasets in results_iter<N>: every label budget's dataset of this task set that exists under the root,
    so a run of one budget rewrites the shared table without dropping the other budget's rows."""
    every = args if args.dataset_ids else argparse.Namespace(**{**vars(args),
                                                               "budgets": sorted(set(args.budgets) | {10, 20})})
    ids = dataset_ids(every)
    names = {b: f"Dataset{ids[b]:03d}_{dataset_config(every, b, ids[b])['dataset_name']}" for b in every.budgets}
    return {b: name for b, name in names.items() if (runner.root / name).is_dir()}


def ensure_dataset(runner: Runner, args, budget: int, dataset_id: int) -> tuple[str, dict]:
    """Convert, plan + preprocess, add the 3d_cpu configuration, append the per-task supervised folds."""
    from dataset_conversion.merge_tasks import convert_from_config  # noqa: PLC0415

    config = dataset_config(args, budget, dataset_id)
    name = f"Dataset{dataset_id:03d}_{config['dataset_name']}"
    raw_dir = runner.raw / name
    os.environ["nnUNet_raw"] = str(runner.raw)
    os.environ["nnUNet_preprocessed"] = str(runner.preprocessed)
    if not (raw_dir / "dataset.json").is_file():
        runner.timed(f"{name}/convert", lambda: convert_from_config(
            config, data_root=args.data, num_processes=args.processes, verbose=False),
            f"convert_from_config({json.dumps(config)}, data_root={args.data})")
    dataset_json = json.loads((raw_dir / "dataset.json").read_text())
    tasks = [t["name"] for t in dataset_json["unisemi"]["tasks"]]
    if tasks != list(args.tasks):
        raise SystemExit(f"{raw_dir} holds tasks {tasks}, not {args.tasks}: choose other --dataset-ids")
    pre_dir = runner.preprocessed / name
    plans_file = pre_dir / "nnUNetPlans.json"
    n_training = len(dataset_json["unisemi"]["labeled"]) + len(dataset_json["unisemi"]["unlabeled"])
    data_dir = pre_dir / "nnUNetPlans_3d_fullres"
    n_pre = len(list(data_dir.glob("*.pkl"))) if data_dir.is_dir() else 0
    if not plans_file.is_file() or n_pre < n_training:
        runner.run(f"{name}/plan_and_preprocess",
                   ["nnUNetv2_plan_and_preprocess", "-d", str(dataset_id), "-c", "3d_fullres", "-np",
                    str(args.processes)])
    plans = json.loads(plans_file.read_text())
    if CONFIGURATION not in plans["configurations"]:
        cmd = ["nnUNetv2_unisemi_add_plans", "-d", str(dataset_id), "-c", CONFIGURATION]
        if args.patch_size:
            cmd += ["--patch_size", *map(str, args.patch_size)]
        runner.run(f"{name}/add_plans", cmd)
    append_supervised_folds(pre_dir / "splits_final.json", dataset_json)
    return name, dataset_json


def append_supervised_folds(splits_file: Path, dataset_json: dict) -> None:
    """Fold k (k = task id, 1-based) = task k's labeled cases for training and (training-fit) validation."""
    from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo  # noqa: PLC0415

    info = UnifiedDatasetInfo.from_dataset_json(dataset_json)
    splits = json.loads(splits_file.read_text())
    wanted = [sorted(c for c in info.labeled if info.case_to_task[c] == task.id) for task in info.tasks]
    if len(splits) == 1 + len(wanted) and all(sorted(splits[i + 1]["train"]) == w for i, w in enumerate(wanted)):
        return
    if len(splits) != 1:
        raise SystemExit(f"{splits_file} has {len(splits)} folds, expected 1 (semi-supervised fold 0)")
    splits += [{"train": w, "val": w} for w in wanted]
    splits_file.write_text(json.dumps(splits, indent=4))


def cases_by_task(dataset_json: dict, split: str = "test") -> dict[str, list[str]]:
    """The cases of one split (test, unlabeled or labeled), per task name, in the dataset's task order."""
    u = dataset_json["unisemi"]
    names = {t["id"]: t["name"] for t in u["tasks"]}
    out: dict[str, list[str]] = {t["name"]: [] for t in u["tasks"]}
    for case in u[split]:
        out[names[u["case_to_task"][case]]].append(case)
    return {k: sorted(v) for k, v in out.items()}


def make_inputs(runner: Runner, name: str, dataset_json: dict, split: str = "test") -> dict[str, Path]:
    """Per task, a folder of links to the split's images (imagesTs for the test cases, imagesTr otherwise)."""
    folders = {}
    ending = dataset_json["file_ending"]
    images = "imagesTs" if split == "test" else "imagesTr"
    for task, cases in cases_by_task(dataset_json, split).items():
        folder = runner.root / name / f"{split}_inputs" / task
        folder.mkdir(parents=True, exist_ok=True)
        for case in cases:
            src = runner.raw / name / images / f"{case}_0000{ending}"
            dst = folder / src.name
            if not dst.exists():
                dst.symlink_to(src)
        folders[task] = folder
    return folders


# ------------------------------------------------------------------------------------------ train/predict/eval
class RunLock:
    """One (dataset, seed, method) unit at a time: several benchmark processes (e.g. `--seeds 0 1 2` and
    `--seeds 2 1 0`) can share the work; a unit held by a live process is skipped, a stale lock is taken over."""

    def __init__(self, root: Path, key: str):
        self.path = root / "locks" / (key.replace("/", "__") + ".lock")
        self.path.parent.mkdir(exist_ok=True)

    def acquire(self) -> bool:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or 0)
                    os.kill(pid, 0)
                    return False  # held by a live process
                except (ValueError, ProcessLookupError, FileNotFoundError):
                    self.path.unlink(missing_ok=True)  # stale
                    continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            return True
        return False

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


def trainer_name(method: str, iterations: int) -> str:
    return f"{METHODS[method]}_bench{iterations}"


def run_key(args, name: str, seed: int) -> str:
    """One seed of one iteration budget: results, predictions and evaluations live under root/<run_key>."""
    return f"{name}/iter{args.iterations}/seed{seed}"


def seed_dir(runner: Runner, args, name: str, seed: int) -> Path:
    return runner.root / run_key(args, name, seed)


def train(runner: Runner, args, name: str, dataset_id: int, seed: int, method: str, fold: int) -> None:
    results = seed_dir(runner, args, name, seed) / "results"
    tr = trainer_name(method, args.iterations)
    fold_dir = results / name / f"{tr}__nnUNetPlans__{CONFIGURATION}" / f"fold_{fold}"
    if (fold_dir / "checkpoint_final.pth").is_file():
        return
    cmd = ["nnUNetv2_train", str(dataset_id), CONFIGURATION, str(fold), "-tr", tr, "-device", "cpu"]
    if (fold_dir / "checkpoint_latest.pth").is_file():
        cmd.append("--c")
    runner.run(f"{run_key(args, name, seed)}/{method}/train_fold{fold}", cmd, results=results,
               iterations=args.iterations)


def predict(runner: Runner, args, name: str, dataset_id: int, seed: int, method: str,
            inputs: dict[str, Path], dataset_json: dict, split: str = "test") -> Path:
    """Predict the split's cases of every task with the task's prompt (or per-task model) into pred/<method>
    (test) or pred_<split>/<method>."""
    results = seed_dir(runner, args, name, seed) / "results"
    out = seed_dir(runner, args, name, seed) / ("pred" if split == "test" else f"pred_{split}") / method
    step = "predict" if split == "test" else f"predict_{split}"
    tr = trainer_name(method, args.iterations)
    ending = dataset_json["file_ending"]
    tasks = [t["name"] for t in dataset_json["unisemi"]["tasks"]]
    for k, (task, cases) in enumerate(cases_by_task(dataset_json, split).items(), start=1):
        assert tasks[k - 1] == task
        if not cases or all((out / f"{c}{ending}").is_file() for c in cases):
            continue
        if method == "supervised":  # binary model: predict into a staging folder, then write label k
            staging = out.parent / f"{method}_binary" / task
            cmd = ["nnUNetv2_predict", *_predict_args(args, inputs[task], staging, dataset_id, tr), "-f", str(k)]
            runner.run(f"{run_key(args, name, seed)}/{method}/{step}_{task}", cmd, results=results, n_cases=len(cases))
            relabel_binary_predictions(staging, out, cases, ending, k)
            continue
        common = _predict_args(args, inputs[task], out, dataset_id, tr)
        fold, prompted = prediction_route(method, k)
        if prompted:
            cmd = ["nnUNetv2_predict_unisemi", *common, "-f", str(fold), "-task", task]
        else:
            cmd = ["nnUNetv2_predict", *common, "-f", str(fold)]
        runner.run(f"{run_key(args, name, seed)}/{method}/{step}_{task}", cmd, results=results, n_cases=len(cases))
    return out


def prediction_route(method: str, task: int) -> tuple[int, bool]:
    """Which model predicts task `task`'s test cases, and how: (fold, prompted). Per-task methods use fold k = task k;
    the one-model methods fold 0. UniSeMi-type models are prompted with the task; the others (nnUNetv2_predict)
    write their own labels, except the binary supervised model, whose label 1 is mapped back to k."""
    fold = task if method in PER_TASK_METHODS else 0
    return fold, method not in PLAIN_PREDICTOR_METHODS and method != "supervised"


def _predict_args(args, inputs: Path, out: Path, dataset_id: int, trainer: str) -> list[str]:
    common = ["-i", str(inputs), "-o", str(out), "-d", str(dataset_id), "-c", CONFIGURATION, "-tr", trainer,
              "-device", "cpu", "-npp", "1", "-nps", "1", "--disable_progress_bar", "--continue_prediction"]
    return common if args.tta else [*common, "--disable_tta"]


def relabel_binary_predictions(staging: Path, out: Path, cases: list[str], ending: str, label: int) -> None:
    """Write a binary model's predictions (0/1) of task `label`'s cases into `out` with the task's label value."""
    import SimpleITK as sitk  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    for case in cases:
        img = sitk.ReadImage(str(staging / f"{case}{ending}"))
        arr = sitk.GetArrayViewFromImage(img)
        if arr.max() > 1:
            raise RuntimeError(f"{staging / (case + ending)}: a binary model's prediction has label {arr.max()}")
        relabeled = sitk.GetImageFromArray((arr * label).astype(arr.dtype))
        relabeled.CopyInformation(img)
        sitk.WriteImage(relabeled, str(out / f"{case}{ending}"), True)


def evaluate(runner: Runner, args, name: str, seed: int, method: str, pred: Path) -> None:
    from nnunetv2_unisemi.evaluation.evaluate import evaluate_folder  # noqa: PLC0415

    out = seed_dir(runner, args, name, seed) / "eval" / method
    if (out / "summary.json").is_file():
        return
    raw = runner.raw / name
    runner.timed(f"{run_key(args, name, seed)}/{method}/evaluate",
                 lambda: evaluate_folder(raw / "labelsTs", pred, dataset_json=raw / "dataset.json", output_dir=out,
                                         num_processes=1, verbose=False),
                 f"evaluate_folder({raw / 'labelsTs'}, {pred}, output_dir={out})")


# --------------------------------------------------------------------------------------------------- aggregate
def _mean_std(values: list[float]) -> tuple[float, float, int]:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    n = len(values)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std, n


def aggregate(runner: Runner, args, names: dict[int, str]) -> str:
    """Per budget, method and task: mean +- sample std over seeds of the per-seed test-set means."""
    lines, data = [], {}
    ledger = json.loads((runner.root / "ledger.json").read_text()) if (runner.root / "ledger.json").is_file() else {}
    for budget, name in names.items():
        lines += [f"### {budget}% labels ({name}, {args.iterations} iterations per run)", ""]
        lines += ["| Method | Task | seeds | " + " | ".join(m[1] for m in METRICS) + " |",
                  "|---|---|---:|" + "---:|" * len(METRICS)]
        data[name] = {}
        for method in METHODS:
            summaries = {}
            for run in sorted((runner.root / name / f"iter{args.iterations}").glob("seed*")):
                f = run / "eval" / method / "summary.json"
                if f.is_file() and (run / "results" / name /
                                    f"{trainer_name(method, args.iterations)}__nnUNetPlans__{CONFIGURATION}").is_dir():
                    summaries[run.name] = json.loads(f.read_text())
            if not summaries:
                continue
            task_names = list(next(iter(summaries.values()))["tasks"])
            data[name][method] = {"seeds": sorted(summaries), "tasks": {}, "average": {}}
            for task in [*task_names, "average"]:
                cells, stats = [], {}
                for key, _, scale in METRICS:
                    if task == "average":
                        vals = [s["average"][key]["mean"] for s in summaries.values()]
                    else:
                        vals = [s["tasks"][task][key]["mean"] for s in summaries.values()]
                    vals = [None if v is None else v * scale for v in vals]
                    mean, std, n = _mean_std(vals)
                    stats[key] = {"mean": mean, "std": std, "n": n, "per_seed": vals}
                    if n == 0:
                        cells.append("n/a")
                    else:  # a seed whose distances are all undefined (every prediction empty) is left out
                        cells.append(f"{mean:.2f} ± {std:.2f}" + (f" (n={n})" if n < len(summaries) else ""))
                label = f"**{task}**" if task == "average" else task
                lines.append(f"| {METHOD_LABELS[method]} | {label} | {len(summaries)} | " + " | ".join(cells) + " |")
                data[name][method]["tasks" if task != "average" else "average"][task] = stats
        lines.append("")
        # wall times of this dataset's steps
        rows = {}
        for key, e in ledger.items():
            if not key.startswith(f"{name}/iter{args.iterations}/seed") or e.get("status") != "ok":
                continue
            _, _, seed, method, step = key.split("/")
            kind = "train" if step.startswith("train") else "predict" if step.startswith("predict") else "evaluate"
            rows.setdefault((method, seed), {}).setdefault(kind, 0.0)
            rows[(method, seed)][kind] += e["wall_s"]
        if rows:
            lines += ["| Method | seed | train s | predict s | evaluate s |", "|---|---|---:|---:|---:|"]
            for (method, seed), t in sorted(rows.items()):
                lines.append(f"| {method} | {seed} | {t.get('train', 0):.0f} | {t.get('predict', 0):.0f} | "
                             f"{t.get('evaluate', 0):.0f} |")
            lines.append("")
    steps = [e for key, e in ledger.items() if f"/iter{args.iterations}/" in key]  # this budget's runs
    total = sum(e["wall_s"] for e in steps)
    if steps:
        ends = [datetime.datetime.fromisoformat(e["finished"]) for e in steps]
        starts = [end - datetime.timedelta(seconds=e["wall_s"]) for end, e in zip(ends, steps)]
        span = (max(ends) - min(starts)).total_seconds()
        lines.append(f"Sum of the wall times of the recorded training, prediction and evaluation steps at "
                     f"{args.iterations} iterations (ledger.json): {total / 3600:.2f} h; first start to "
                     f"last end: {span / 3600:.2f} h ({os.cpu_count()} CPU cores; steps of two chains may overlap; "
                     f"runs killed and resumed count only their resumed part).")
    text = "\n".join(lines) + "\n"
    stem = f"results_iter{args.iterations}{task_suffix(args.tasks)}"  # a task subset gets its own table
    (runner.root / f"{stem}.md").write_text(text)
    (runner.root / f"{stem}.json").write_text(json.dumps(data, indent=2))
    return text


# -------------------------------------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="folder with LA2018_h5 and "
                   "Task04_Hippocampus. Default: ../shared/data relative to the repository")
    p.add_argument("--root", default=str(REPO / "benchmark_runs"), help="working folder (git-ignored default)")
    p.add_argument("--budgets", type=int, nargs="+", default=[10, 20], help="label budgets in %% (default 10 20)")
    p.add_argument("--dataset-ids", type=int, nargs="+", default=None,
                   help="dataset id per budget. Default: 800 + budget/10 (801, 802) for all tasks, "
                        "800 + 10 x (bitmask of left-out tasks) + budget/10 for a --tasks subset")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="repeated runs (default 0 1 2)")
    p.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    p.add_argument("--tasks", nargs="+", choices=list(ALL_TASKS), default=list(ALL_TASKS))
    p.add_argument("--incremental", action="store_true", help="run the prefixes of --tasks in turn (A; A+B; "
                   "A+B+C), each as its own dataset and table (the paper's Table 5 study)")
    p.add_argument("--iterations", type=int, default=240,
                   help="training iterations per run, a multiple of 20 (20 epochs); default 240")
    p.add_argument("--test-count", type=int, default=20, help="held-out test cases per task (default 20)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the test / labeled case choice")
    p.add_argument("--patch-size", type=int, nargs=3, default=None,
                   help="3d_cpu patch (default: the plans tool's min(48x64x64, 3d_fullres patch))")
    p.add_argument("--tta", action="store_true", help="mirroring test-time augmentation (default off)")
    p.add_argument("--processes", type=int, default=2, help="processes for conversion / preprocessing")
    p.add_argument("--da-processes", type=int, default=2, help="nnUNet_n_proc_DA for training")
    p.add_argument("--aggregate-only", action="store_true", help="only write results.md from what exists")
    p.add_argument("--keep-going", action="store_true", help="continue with the next run after a failed step")
    args = p.parse_args(argv)
    if args.iterations % 20 or not 20 <= args.iterations <= 6000:
        p.error("--iterations must be a multiple of 20 between 20 and 6000")
    if not args.incremental:  # keep the given order for --incremental: it decides which task comes first
        args.tasks = [t for t in ALL_TASKS if t in args.tasks]
    elif len(set(args.tasks)) != len(args.tasks):
        p.error("--tasks lists a task twice")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    codes = [run(argparse.Namespace(**{**vars(args), "tasks": tasks})) for tasks in task_subsets(args)]
    return max(codes)


def run(args: argparse.Namespace) -> int:
    runner = Runner(args)
    ids = dataset_ids(args)
    failures = []
    for budget in [] if args.aggregate_only else args.budgets:  # tables only: never convert or preprocess
        name, dataset_json = ensure_dataset(runner, args, budget, ids[budget])
        inputs = make_inputs(runner, name, dataset_json)
        for seed in args.seeds:
            for method in args.methods:
                lock = RunLock(runner.root, f"{run_key(args, name, seed)}/{method}")
                if not lock.acquire():
                    log(f"SKIP {name}/seed{seed}/{method}: another benchmark process is running it")
                    continue
                try:
                    folds = range(1, len(args.tasks) + 1) if method in PER_TASK_METHODS else [0]
                    for fold in folds:
                        train(runner, args, name, ids[budget], seed, method, fold)
                    pred = predict(runner, args, name, ids[budget], seed, method, inputs, dataset_json)
                    evaluate(runner, args, name, seed, method, pred)
                except RuntimeError as e:
                    failures.append(str(e))
                    log(f"ERROR {e}")
                    if not args.keep_going:
                        raise
                finally:
                    lock.release()
                aggregate(runner, args, table_datasets(runner, args))
    print(aggregate(runner, args, table_datasets(runner, args)))
    for f in failures:
        log(f"FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
