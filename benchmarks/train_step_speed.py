"""Training-step time and peak memory: nnUNetTrainerUniSeMi vs nnUNetTrainer, same plans, patch and batch size.

Each trainer runs in its own process (clean peak-memory reading). Its real `train_step` is timed on random
batches (data loading excluded: nnU-Net loads in background workers); the UniSeMi step also draws its unlabeled
batch from an in-memory iterator, as the trainer does from its unlabeled loader.

    python benchmarks/train_step_speed.py --patch 48 64 64 --batch 2 --tasks 4 --steps 8 -o docs/speed_train_step.json

Memory: on CUDA torch.cuda.max_memory_allocated; on CPU the growth of the process' peak RSS (ru_maxrss) over the
RSS after building the trainer, i.e. what the steps themselves needed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def current_rss_mb() -> float:
    with open("/proc/self/statm", encoding="utf-8") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(trainer_name: str, patch, batch: int, tasks: int, steps: int, warmup: int, device: str) -> dict:
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    sys.path.insert(0, str(REPO))
    from benchmarks.speed_common import make_dataset_json, make_plans
    from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi

    torch.manual_seed(0)
    cls = {"nnUNetTrainer": nnUNetTrainer, "nnUNetTrainerUniSeMi": nnUNetTrainerUniSeMi}[trainer_name]
    plans = make_plans(patch, batch)
    plans["continue_training"] = False
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["nnUNet_results"] = tmp
        os.environ["nnUNet_preprocessed"] = tmp
        # initialize() infers the dataset class from the preprocessed folder's file endings; no data is read
        data_folder = Path(tmp) / plans["dataset_name"] / "nnUNetPlans_3d_fullres"
        data_folder.mkdir(parents=True)
        (data_folder / "placeholder.b2nd").touch()
        trainer = cls(plans, "3d_fullres", 0, make_dataset_json(tasks), torch.device(device))
        trainer.initialize()
        trainer.network.train()
        trainer.set_deep_supervision_enabled(True)
        cm = trainer.configuration_manager
        scales = trainer._get_deep_supervision_scales()
        shape = list(cm.patch_size)

        def batch_of(n: int, with_tasks: bool) -> dict:
            target = [torch.randint(0, 2, (n, 1, *[max(1, round(s * f)) for s, f in zip(shape, sc)]),
                                    dtype=torch.int16) for sc in scales]
            out = {"data": torch.randn(n, 1, *shape), "target": target, "keys": [f"c{i}" for i in range(n)]}
            if with_tasks:
                task_ids = torch.arange(n) % tasks + 1
                out["target"] = [t * task_ids.view(-1, 1, 1, 1, 1).to(t.dtype) for t in target]
                out["task_ids"] = task_ids
            return out

        unisemi = trainer_name == "nnUNetTrainerUniSeMi"
        if unisemi:
            unlabeled = batch_of(2 * trainer.n_unlabeled_mixes, False)
            trainer.dataloader_unlabeled = iter(lambda: unlabeled, None)
        labeled = batch_of(trainer.batch_size, unisemi)
        for _ in range(warmup):
            trainer.train_step(labeled)
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        rss_before = current_rss_mb()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            trainer.train_step(labeled)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        if device == "cuda":
            peak = torch.cuda.max_memory_allocated() / 2**20
            memory_kind = "torch.cuda.max_memory_allocated (MiB)"
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before
            memory_kind = "peak RSS growth during the steps (MiB)"
        samples = trainer.batch_size
        if unisemi:
            samples += trainer.n_synthetic + trainer.n_unlabeled_mixes
    return {"trainer": trainer_name, "patch": shape, "batch_size": batch, "samples_per_backbone_pass": samples,
            "step_seconds_median": sorted(times)[len(times) // 2], "step_seconds_all": times,
            "peak_memory_mib": peak, "memory_kind": memory_kind}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patch", nargs=3, type=int, default=[48, 64, 64])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--tasks", type=int, default=4, help="number of tasks K (prompts = K + 1)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("-o", default=None, help="write the results as JSON here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        res = measure(args.worker, args.patch, args.batch, args.tasks, args.steps, args.warmup, args.device)
        print("RESULT " + json.dumps(res))
        return
    results = {}
    for name in ("nnUNetTrainer", "nnUNetTrainerUniSeMi"):
        cmd = [sys.executable, __file__, "--worker", name, "--patch", *map(str, args.patch), "--batch",
               str(args.batch), "--tasks", str(args.tasks), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--device", args.device]
        out = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", check=True).stdout
        results[name] = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        r = results[name]
        print(f"{name:<22} {r['step_seconds_median']:.2f} s/step  {r['peak_memory_mib']:.0f} MiB  "
              f"({r['samples_per_backbone_pass']} samples per backbone pass)")
    plain, uni = results["nnUNetTrainer"], results["nnUNetTrainerUniSeMi"]
    summary = {"time_ratio": uni["step_seconds_median"] / plain["step_seconds_median"],
               "memory_ratio": uni["peak_memory_mib"] / plain["peak_memory_mib"],
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "command": "python " + " ".join([Path(__file__).relative_to(REPO).as_posix(), *(argv or sys.argv[1:])]),
               "results": results}
    print(f"UniSeMi / plain: time {summary['time_ratio']:.2f}x, memory {summary['memory_ratio']:.2f}x")
    if args.o:
        Path(args.o).write_text(json.dumps(summary, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
