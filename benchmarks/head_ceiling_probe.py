"""Probe of a trained UniSeMi checkpoint (benchmark's Dataset801, `3d_cpu`): the foreground probability under every
prompt on a central 40 x 56 x 40 crop of a few labeled cases. It found the confidence ceiling of docs/BENCHMARKS.md
("What was tried", point 3): under each prompt the same maximum on every image, = sigmoid(final bias).

    python benchmarks/head_ceiling_probe.py <fold folder>/checkpoint_final.pth
"""

from __future__ import annotations

import json
import sys

import blosc2
import numpy as np
import torch
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from plateau_probe import PATCH, PREPROCESSED

from nnunetv2_unisemi.network.unisemi_network import build_unisemi_network


def central_crop(case: str) -> tuple[np.ndarray, np.ndarray]:
    folder = PREPROCESSED / "nnUNetPlans_3d_fullres"
    data, seg = blosc2.open(str(folder / f"{case}.b2nd"))[:], blosc2.open(str(folder / f"{case}_seg.b2nd"))[:]
    x, y = np.zeros((1, *PATCH), np.float32), np.zeros(PATCH, np.int16)
    src, dst = [], []
    for n, p in zip(data.shape[1:], PATCH):
        a = abs(n - p) // 2
        src.append(slice(a, a + p) if n >= p else slice(0, n))
        dst.append(slice(0, p) if n >= p else slice(a, a + n))
    x[(slice(None), *dst)] = data[(slice(None), *src)]
    y[tuple(dst)] = seg[(0, *src)]
    return x, y


def main(checkpoint: str, cases_per_task: int = 2) -> None:
    torch.set_num_threads(1)
    plans = PlansManager(str(PREPROCESSED / "nnUNetPlans.json"))
    info = json.loads((PREPROCESSED / "dataset.json").read_text())["unisemi"]
    num_prompts = len(info["tasks"]) + 1
    weights = torch.load(checkpoint, map_location="cpu", weights_only=False)["network_weights"]
    for hidden_layers in (0, 2):  # the default one-conv head, or the three-layer one of nnUNetTrainerUniSeMi_MLPHead
        net = build_unisemi_network(plans, plans.get_configuration("3d_cpu"), 1, num_prompts, False,
                                    head_hidden_layers=hidden_layers)
        if net.state_dict()["head.controller.weight"].shape == weights["head.controller.weight"].shape:
            break
    net.load_state_dict(weights)
    net.eval()
    prompts = torch.arange(1, num_prompts + 1)[None]
    for task in range(1, num_prompts):
        for case in [c for c in info["labeled"] if info["case_to_task"][c] == task][:cases_per_task]:
            x, y = central_crop(case)
            with torch.no_grad():
                outputs = net(torch.from_numpy(x)[None], prompts)
            cells = []
            for j, out in enumerate(outputs, start=1):
                p = torch.softmax(out, 1)[0, 1].numpy()
                inside = f"{p[y == task].mean():.3f}" if (y == task).any() else "n/a"
                cells.append(f"prompt {j}: max {p.max():.3f} mean {p.mean():.3f} in-label {inside}")
            print(case[:40], " | ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1])
