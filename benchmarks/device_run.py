"""The real-data benchmark's trainings and test predictions on a lent GPU machine, many runs side by side.

Runs on the device machine (see `benchmarks/device_run.sh`), over the pack that `benchmarks/device_pack.py` made
here: the same trainer classes (`<base>_bench<N>`, benchmarks/trainers), the same nnU-Net training entry point and
the same predictors as `run_benchmark.py`, on CUDA instead of the CPU. Each planned (iterations, method, seed) run
trains its fold(s), then predicts its held-out test cases under the same rules as run_benchmark.predict (a task's
cases with that task's prompt or per-task model, no test-time mirroring) and exports them to the original geometry
with nnU-Net's own function. The segmentations come back as arrays; `benchmarks/device_collect.py` writes them as
images next to the labels here and evaluates them with the project's evaluation, like every CPU run.

A deadline stops new work so that what finished is packed and returned inside the device call's time limit. Leave
about 70 s of prediction after the slowest training; if a deadline cut predictions anyway, run the same command again
on the still-warm machine (within its 30 s idle window): folds with a final checkpoint and runs with a prediction are
skipped, so it only predicts what is missing, and a training stopped at the deadline continues from its latest
checkpoint (saved every epoch), so a schedule longer than one call (3600 iterations) takes two calls, not a restart.
A checkpoint cut while it was being written fails that fold's continuation (its log in logs/ says so); delete that
fold's folder on the machine and run again.

    python benchmarks/device_run.py run --pack .devpack --work /tmp/work --out $OUT --deadline-s 470 \
        --plan 600:supervised:0,1,2 600:unisemi:0,1,2 1800:unisemi:0,1,2
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import pickle
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from device_pack import dequantize  # noqa: E402
from run_benchmark import (  # noqa: E402
    CONFIGURATION,
    METHODS,
    PER_TASK_METHODS,
    TRAINER_DIR,
    prediction_route,
    trainer_name,
)

T0 = time.time()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.0f} s] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------------- unpack
def unpack(pack_dir: Path, work: Path) -> tuple[str, Path]:
    """Write the packed cases as an nnU-Net numpy dataset (npz + npy + pkl); returns (dataset name, test pickle)."""
    (blob,) = pack_dir.glob("Dataset*.pkl.xz")
    name = blob.name[: -len(".pkl.xz")]
    packed = pickle.loads(lzma.decompress(blob.read_bytes()))
    target = work / "preprocessed" / name
    folder = target / packed["data_identifier"]
    folder.mkdir(parents=True, exist_ok=True)
    for f in (pack_dir / "preprocessed" / name).iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    for key, case in packed["train"].items():
        data, seg = dequantize(case["data"]), case["seg"]
        np.savez(folder / f"{key}.npz", data=data, seg=seg)  # nnUNetDatasetNumpy: identifiers from *.npz
        np.save(folder / f"{key}.npy", data)  # read with mmap, as nnU-Net's unpacked datasets are
        np.save(folder / f"{key}_seg.npy", seg)
        with open(folder / f"{key}.pkl", "wb") as fh:
            pickle.dump(case["properties"], fh)
    test_file = work / "test_cases.pkl"
    test_file.write_bytes(pickle.dumps(packed["test"], protocol=4))
    (work / "raw").mkdir(exist_ok=True)
    log(f"unpacked {len(packed['train'])} training and {len(packed['test'])} test cases of {name}")
    return name, test_file


# -------------------------------------------------------------------------------------------------------- units
@dataclass
class Unit:
    iterations: int
    method: str
    seed: int
    folds: list[int]
    pending: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    predicted: bool = False
    failed: str = ""
    wall: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"iter{self.iterations}/seed{self.seed}/{self.method}"

    @property
    def trainer(self) -> str:
        return trainer_name(self.method, self.iterations)


def parse_plan(specs: list[str], num_tasks: int) -> list[Unit]:
    units = []
    for spec in specs:
        iterations, methods, seeds = spec.split(":")
        for seed in (int(s) for s in seeds.split(",")):
            for method in methods.split(","):
                if method not in METHODS:
                    raise SystemExit(f"--plan {spec}: unknown method {method} (known: {', '.join(METHODS)})")
                folds = list(range(1, num_tasks + 1)) if method in PER_TASK_METHODS else [0]
                units.append(Unit(int(iterations), method, seed, folds, pending=list(folds)))
    return units


def run_dir(work: Path, unit: Unit) -> Path:
    return work / "runs" / f"iter{unit.iterations}" / f"seed{unit.seed}"


def prediction_file(work: Path, iterations: int, seed: int, method: str) -> Path:
    return work / "preds" / f"iter{iterations}__seed{seed}__{method}.npz"


def model_dir(work: Path, dataset: str, unit: Unit) -> Path:
    return run_dir(work, unit) / "results" / dataset / f"{unit.trainer}__nnUNetPlans__{CONFIGURATION}"


def resume(work: Path, dataset: str, units: list[Unit]) -> None:
    """Skip what an earlier call on the same (still warm) machine finished: folds with nnU-Net's final checkpoint
    are done, units with a prediction file are predicted. Rerunning a call's command then predicts the runs whose
    training ended too close to that call's deadline, instead of training them again; a fold stopped at the deadline
    continues from its latest checkpoint (`training_command`)."""
    for unit in units:
        model = model_dir(work, dataset, unit)
        for fold in list(unit.pending):
            if (model / f"fold_{fold}" / "checkpoint_final.pth").is_file():
                unit.pending.remove(fold)
                unit.done.append(fold)
        unit.predicted = prediction_file(work, unit.iterations, unit.seed, unit.method).is_file()
        if unit.done or unit.predicted:
            log(f"resume {unit.key}: folds {sorted(unit.done)} trained" + (", predicted" if unit.predicted else ""))


def environment(work: Path, results: Path, da_processes: int = 2) -> dict:
    env = dict(os.environ)
    env.update({"nnUNet_raw": str(work / "raw"), "nnUNet_preprocessed": str(work / "preprocessed"),
                "nnUNet_results": str(results), "nnUNet_compile": "f",
                "nnUNet_extTrainer": f"{TRAINER_DIR}{os.pathsep}{REPO / 'nnunetv2_unisemi' / 'nnunet_ext_trainers'}",
                "nnUNet_n_proc_DA": str(da_processes), "UNISEMI_BENCH_THREADS": "1", "OMP_NUM_THREADS": "1"})
    return env


# ------------------------------------------------------------------------------------------------------ predict
def predict(work: Path, dataset: str, iterations: int, seed: int, method: str, test_file: Path,
            device: str = "cuda", test_limit: int = 0) -> None:
    """Test-set segmentations of one trained run, in the original image geometry, into preds/<key>.npz."""
    import torch  # noqa: PLC0415
    from nnunetv2.inference.export_prediction import (  # noqa: PLC0415
        convert_predicted_logits_to_segmentation_with_correct_shape,
    )
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor  # noqa: PLC0415

    from nnunetv2_unisemi.inference.predictor import UniSeMiPredictor  # noqa: PLC0415

    results = work / "runs" / f"iter{iterations}" / f"seed{seed}" / "results"
    os.environ.update(environment(work, results))
    model = results / dataset / f"{trainer_name(method, iterations)}__nnUNetPlans__{CONFIGURATION}"
    tests = pickle.loads(test_file.read_bytes())
    if test_limit:  # dry runs: the first cases of each task only
        kept = {t: sorted(c for c, v in tests.items() if v["task"] == t)[:test_limit] for t in
                {v["task"] for v in tests.values()}}
        tests = {c: v for c, v in tests.items() if c in kept[v["task"]]}
    task_ids = sorted({case["task"] for case in tests.values()})
    segs, predictors = {}, {}
    for task in task_ids:
        fold, prompted = prediction_route(method, task)  # the same routing as run_benchmark.predict
        if fold not in predictors:  # one-model methods load their model once for all tasks
            cls = UniSeMiPredictor if prompted else nnUNetPredictor
            predictors[fold] = cls(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                   perform_everything_on_device=True, device=torch.device(device), verbose=False,
                                   allow_tqdm=False)
            predictors[fold].initialize_from_trained_model_folder(str(model), use_folds=(fold,))
        predictor = predictors[fold]
        if prompted:
            predictor.set_task(task)
        for case, packed in tests.items():
            if packed["task"] != task:
                continue
            data = torch.from_numpy(dequantize(packed["data"]))
            logits = predictor.predict_logits_from_preprocessed_data(data).cpu()
            seg = convert_predicted_logits_to_segmentation_with_correct_shape(
                logits, predictor.plans_manager, predictor.configuration_manager, predictor.label_manager,
                packed["properties"])
            if method == "supervised":  # binary model: label 1 is task k (run_benchmark.relabel_binary_predictions)
                seg = (seg == 1) * task
            segs[case] = np.asarray(seg).astype(np.uint8)
    out = prediction_file(work, iterations, seed, method)
    out.parent.mkdir(exist_ok=True)
    partial = out.with_name(out.name + ".partial")  # a prediction killed at the deadline is not taken as done
    with open(partial, "wb") as fh:
        np.savez_compressed(fh, **segs)
    partial.replace(out)


# ------------------------------------------------------------------------------------------------ orchestration
def training_command(work: Path, dataset: str, unit: Unit, fold: int, device: str) -> list[str]:
    """nnU-Net's training of one fold; with `--c` where a training stopped at an earlier call's deadline left its
    latest checkpoint (the benchmark trainers save one every epoch), so a schedule longer than one device call
    (e.g. a 3600-iteration batch) finishes over two calls on the warm machine instead of starting again."""
    dataset_id = dataset[len("Dataset"):len("Dataset") + 3]
    cmd = [sys.executable, "-m", "nnunetv2.run.run_training", dataset_id, CONFIGURATION, str(fold), "-tr", unit.trainer,
           "-device", device]
    if (model_dir(work, dataset, unit) / f"fold_{fold}" / "checkpoint_latest.pth").is_file():
        cmd.append("--c")
    return cmd


def launch(cmd: list[str], env: dict, log_file: Path) -> subprocess.Popen:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log_file, "a")
    return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)


def orchestrate(args, dataset: str, test_file: Path, units: list[Unit]) -> None:
    work = Path(args.work)
    running: dict[subprocess.Popen, tuple[Unit, str, float]] = {}
    deadline = T0 + args.deadline_s
    while True:
        for proc, (unit, step, start) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[proc]
            unit.wall[step] = round(time.time() - start, 1)
            if proc.returncode != 0:
                unit.failed = f"{step} rc={proc.returncode}"
                log(f"FAILED {unit.key} {step} ({unit.wall[step]} s), see logs/{unit.key.replace('/', '__')}.log")
            elif step == "predict":
                unit.predicted = True
                log(f"done {unit.key} predict ({unit.wall[step]} s)")
            else:
                unit.done.append(int(step[len("train_fold"):]))
                log(f"done {unit.key} {step} ({unit.wall[step]} s)")
        now = time.time()
        if now > deadline:
            for proc, (unit, step, _) in running.items():
                os.killpg(proc.pid, 9)
                unit.failed = unit.failed or f"{step} stopped at the deadline"
            log(f"deadline: stopped {len(running)} running step(s)")
            break
        for unit in units:
            if len(running) >= args.parallel or unit.failed or unit.predicted:
                continue
            env = environment(work, run_dir(work, unit) / "results", args.da_processes)
            log_file = work / "logs" / (unit.key.replace("/", "__") + ".log")
            if sorted(unit.done) == unit.folds and not any(u is unit for u, _, _ in running.values()):
                cmd = [sys.executable, str(Path(__file__)), "predict", "--work", str(work), "--dataset", dataset,
                       "--iterations", str(unit.iterations), "--seed", str(unit.seed), "--method", unit.method,
                       "--test-file", str(test_file), "--device", args.device,
                       "--test-limit", str(args.test_limit)]
                running[launch(cmd, env, log_file)] = (unit, "predict", time.time())
                log(f"start {unit.key} predict")
            elif unit.pending and now < deadline - args.no_new_training_s:
                fold = unit.pending.pop(0)
                cmd = training_command(work, dataset, unit, fold, args.device)
                running[launch(cmd, env, log_file)] = (unit, f"train_fold{fold}", time.time())
                log(f"start {unit.key} train_fold{fold}")
        if not running and all(u.predicted or u.failed or (u.pending and time.time() > deadline -
                                                           args.no_new_training_s) for u in units):
            break
        time.sleep(2)
    for unit in units:  # trainings never started, for lack of time or slots
        if not (unit.predicted or unit.failed):
            unit.failed = "not finished by the deadline"


def pack_outputs(args, units: list[Unit], info: dict) -> None:
    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out / "preds.tar", "w") as tar:
        for f in sorted((work / "preds").glob("*.npz")):
            tar.add(f, arcname=f.name)
    with tarfile.open(out / "logs.tar.xz", "w:xz") as tar:
        for f in sorted((work / "runs").rglob("training_log_*.txt")):
            tar.add(f, arcname=str(f.relative_to(work / "runs")))
        for f in sorted((work / "logs").glob("*.log")):
            tar.add(f, arcname=f"device_logs/{f.name}")
    summary = {**info, "wall_s": round(time.time() - T0, 1),
               "units": [{"key": u.key, "iterations": u.iterations, "method": u.method, "seed": u.seed,
                          "folds_done": sorted(u.done), "predicted": u.predicted, "failed": u.failed,
                          "wall_s": u.wall} for u in units]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    log(f"packed {sum(u.predicted for u in units)} predicted runs into {out}")


def gpu_info() -> dict:
    import torch  # noqa: PLC0415

    info = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(), "cpus": os.cpu_count()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--pack", default=str(REPO / ".devpack"))
    r.add_argument("--work", default="/tmp/unisemi_device")
    r.add_argument("--out", required=True)
    r.add_argument("--plan", nargs="+", required=True, help="ITERATIONS:METHOD[,METHOD...]:SEED[,SEED...], in order")
    r.add_argument("--parallel", type=int, default=8, help="trainings / predictions running at once")
    r.add_argument("--deadline-s", type=float, default=470)
    r.add_argument("--da-processes", type=int, default=2, help="nnUNet_n_proc_DA of each training")
    r.add_argument("--device", default="cuda", help="cuda on the GPU machine; cpu for a local dry run")
    r.add_argument("--test-limit", type=int, default=0, help="predict only this many test cases per task (dry runs)")
    r.add_argument("--no-new-training-s", type=float, default=60, help="start no training this close to the deadline")
    q = sub.add_parser("predict")
    q.add_argument("--work", required=True)
    q.add_argument("--dataset", required=True)
    q.add_argument("--iterations", type=int, required=True)
    q.add_argument("--seed", type=int, required=True)
    q.add_argument("--method", required=True)
    q.add_argument("--test-file", required=True)
    q.add_argument("--device", default="cuda")
    q.add_argument("--test-limit", type=int, default=0)
    args = p.parse_args(argv)
    if args.cmd == "predict":
        predict(Path(args.work), args.dataset, args.iterations, args.seed, args.method, Path(args.test_file),
                args.device, args.test_limit)
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    info = {**gpu_info(), "started": time.strftime("%Y%m%dT%H%M%S"), "plan": args.plan}
    log(f"device: {info}")
    dataset, test_file = unpack(Path(args.pack), work)
    dataset_json = json.loads((work / "preprocessed" / dataset / "dataset.json").read_text())
    units = parse_plan(args.plan, len(dataset_json["unisemi"]["tasks"]))
    resume(work, dataset, units)
    try:
        orchestrate(args, dataset, test_file, units)
    finally:
        pack_outputs(args, units, info)
    return 0 if all(u.predicted for u in units) else 1


if __name__ == "__main__":
    sys.exit(main())
