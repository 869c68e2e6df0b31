"""Sliding-window prediction time per case: `-task all` (every task from one backbone pass per window) vs one task.

Uses UniSeMiPredictor's real sliding window (Gaussian weighting, mirroring unless --disable_tta) on a random volume;
the network has the plans' topology and random weights (timing does not depend on the weights). The two modes are
interleaved over --repeats rounds and the medians compared.

    python benchmarks/prompt_inference_speed.py --tasks 4 --shape 96 160 160 --repeats 3 -o docs/speed_prompts.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=4)
    p.add_argument("--patch", nargs=3, type=int, default=[48, 64, 64])
    p.add_argument("--shape", nargs=3, type=int, default=[96, 160, 160], help="case size in voxels")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--disable_tta", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("-o", default=None)
    args = p.parse_args(argv)

    import torch
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    sys.path.insert(0, str(REPO))
    from benchmarks.speed_common import make_dataset_json, make_plans
    from nnunetv2_unisemi.inference.predictor import UniSeMiPredictor
    from nnunetv2_unisemi.network.unisemi_network import build_unisemi_network

    torch.manual_seed(0)
    plans_manager = PlansManager(make_plans(args.patch, 2))
    cm = plans_manager.get_configuration("3d_fullres")
    network = build_unisemi_network(plans_manager, cm, 1, args.tasks + 1, enable_deep_supervision=False)
    predictor = UniSeMiPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=not args.disable_tta,
                                 perform_everything_on_device=args.device == "cuda", device=torch.device(args.device),
                                 allow_tqdm=False)
    predictor.manual_initialization(network, plans_manager, cm, None, make_dataset_json(args.tasks),
                                    "nnUNetTrainerUniSeMi", (0, 1, 2))
    image = torch.randn(1, *args.shape)
    times = {"single": [], "all": []}
    for _ in range(args.repeats):
        for mode, task in (("single", "1"), ("all", "all")):
            predictor.set_task(task)
            t0 = time.perf_counter()
            predictor.predict_sliding_window_return_logits(image)
            if args.device == "cuda":
                torch.cuda.synchronize()
            times[mode].append(time.perf_counter() - t0)
            print(f"{mode:>6}: {times[mode][-1]:.1f} s", flush=True)
    med = {m: sorted(v)[len(v) // 2] for m, v in times.items()}
    summary = {"ratio_all_over_single": med["all"] / med["single"], "median_seconds": med, "all_seconds": times,
               "tasks": args.tasks, "patch": args.patch, "case_shape": args.shape, "tta": not args.disable_tta,
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "command": "python " + " ".join([Path(__file__).relative_to(REPO).as_posix(), *(argv or sys.argv[1:])])}
    print(f"-task all / single task: {summary['ratio_all_over_single']:.3f}x "
          f"({med['all']:.1f} s vs {med['single']:.1f} s per case, K={args.tasks})")
    if args.o:
        Path(args.o).write_text(json.dumps(summary, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
