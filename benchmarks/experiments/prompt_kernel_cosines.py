"""Cosines between the task prompts' kernel directions of trained models with a context-free one-convolution head
(`_SeparatePrompts`, `_OrthogonalPrompts`, `_OrthogonalPrompts_PerTaskBatch`): are the prompts' kernels apart?

    python benchmarks/experiments/prompt_kernel_cosines.py \\
        benchmark_runs/v5/Dataset801_UniSeMiBench10/iter600/seed*/results/Dataset801_UniSeMiBench10/*PerTaskBatch*
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

TRAINER_DIR = Path(__file__).resolve().parents[1] / "trainers"


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("model_folders", nargs="+", help="trained model folders (with fold_0/checkpoint_final.pth)")
    args = p.parse_args(argv)
    os.environ["nnUNet_extTrainer"] = os.pathsep.join(
        filter(None, [str(TRAINER_DIR), os.environ.get("nnUNet_extTrainer")]))
    from nnunetv2_unisemi.analysis.model_loading import load_trained_model
    from nnunetv2_unisemi.prompt_orthogonality import kernel_alignment

    for folder in args.model_folders:
        model = load_trained_model(folder)
        tasks = model.info.tasks
        with torch.no_grad():
            directions = model.network.head.prompt_kernel_directions([t.id for t in tasks])
            unit = torch.nn.functional.normalize(directions[0], dim=1)  # the full-resolution scale
            cosines = unit @ unit.T
            print(folder)
            print(f"  kernel_alignment (mean cos^2 over task pairs and scales): {kernel_alignment(directions):.4f}")
            for i in range(len(tasks)):
                for j in range(i + 1, len(tasks)):
                    print(f"  cos({tasks[i].name}, {tasks[j].name}) = {cosines[i, j]:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
