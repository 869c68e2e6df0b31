"""Does a trained UniSeMi model use its prompt? The two hippocampus tasks of the benchmark share one image domain
(Task04_Hippocampus, disjoint cases), so only the prompt can tell the model whether to segment the anterior or the
posterior hippocampus. This probe predicts the same cases (labeled training cases and held-out test cases of both
tasks) under both prompts with `nnUNetv2_predict_unisemi` and reports, per prompt, where the predicted voxels lie
according to the original Task04 labels, which mark both structures in every case (1 = anterior, 2 = posterior),
and the Dice between the two prompts' masks (1.0 = the prompt is ignored).

    python benchmarks/prompt_separation_probe.py \
        --results benchmark_runs/Dataset801_UniSeMiBench10/iter1800/seed0/results \
        --trainer nnUNetTrainerUniSeMi_bench1800 --cases 4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_benchmark import REPO, TRAINER_DIR, interpreter_first_path  # noqa: E402

TASKS = ("hippocampus_anterior", "hippocampus_posterior")
STRUCTURES = {"anterior": 1, "posterior": 2}  # Task04_Hippocampus label values


def original_label(data: Path, case: str) -> np.ndarray:
    """The Task04 label of a benchmark case '<task>_hippocampus_NNN' (both structures)."""
    task = next(t for t in TASKS if case.startswith(t + "_"))
    path = data / "Task04_Hippocampus" / "labelsTr" / f"{case[len(task) + 1:]}.nii.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the original label of benchmark case {case} is missing")
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", required=True, help="nnUNet_results folder of one benchmark run")
    p.add_argument("--trainer", required=True)
    p.add_argument("--dataset", default="Dataset801_UniSeMiBench10")
    p.add_argument("--root", default=str(REPO / "benchmark_runs"), help="run_benchmark.py's --root")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--cases", type=int, default=4, help="labeled and test cases per task")
    p.add_argument("--trainer-dir", action="append", default=[],
                   help="another folder with trainer classes (e.g. benchmarks/experiments), searched first")
    args = p.parse_args(argv)
    root, data = Path(args.root), Path(args.data)
    raw = root / "nnUNet_raw" / args.dataset
    info = json.loads((raw / "dataset.json").read_text())["unisemi"]
    first = lambda cases, t: [k for k in cases if k.startswith(t)][:args.cases]  # noqa: E731
    picked = {"labeled (trained on)": [c for t in TASKS for c in first(info["labeled"], t)],
              "held-out test": [c for t in TASKS for c in first(info["test"], t)]}
    env = {**os.environ, "PATH": interpreter_first_path(), "nnUNet_raw": str(root / "nnUNet_raw"),
           "nnUNet_preprocessed": str(root / "nnUNet_preprocessed"),
           "nnUNet_results": str(Path(args.results).resolve()),
           "nnUNet_extTrainer": ":".join([*(str(Path(d).resolve()) for d in args.trainer_dir), str(TRAINER_DIR),
                                          str(REPO / "nnunetv2_unisemi" / "nnunet_ext_trainers")])}
    print(f"{args.trainer} ({args.results})")
    print("| cases | prompt | on anterior | on posterior | Dice to anterior | Dice to posterior |")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, cases in picked.items():
            inputs = Path(tmp) / "in"
            shutil.rmtree(inputs, ignore_errors=True)
            inputs.mkdir()
            for case in cases:
                folder = raw / ("imagesTr" if kind.startswith("labeled") else "imagesTs")
                shutil.copy(folder / f"{case}_0000.nii.gz", inputs)
            masks = {}
            for task in TASKS:
                out = Path(tmp) / f"out_{task}"
                subprocess.run(["nnUNetv2_predict_unisemi", "-i", str(inputs), "-o", str(out), "-d", args.dataset,
                                "-task", task, "-c", "3d_cpu", "-tr", args.trainer, "-f", "0", "-device", "cpu",
                                "--disable_tta", "-npp", "1", "-nps", "1", "--disable_progress_bar"],
                               env=env, check=True, capture_output=True)
                masks[task] = {c: sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"{c}.nii.gz"))) > 0 for c in cases}
                rows = []
                for case in cases:
                    ref, pred = original_label(data, case), masks[task][case]
                    on = [(pred & (ref == v)).sum() / max(pred.sum(), 1) for v in STRUCTURES.values()]
                    dice = [2 * (pred & (ref == v)).sum() / max(pred.sum() + (ref == v).sum(), 1)
                            for v in STRUCTURES.values()]
                    rows.append(on + dice)
                m = np.mean(rows, axis=0)
                print(f"| {kind} | {task} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.2f} |")
            a, b = (masks[t] for t in TASKS)
            agreement = np.mean([2 * (a[c] & b[c]).sum() / max(a[c].sum() + b[c].sum(), 1) for c in cases])
            print(f"| {kind} | Dice between the two prompts' masks | {agreement:.2f} | | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
