"""How many steps the hippocampus needs to leave the all-background plateau, without nnU-Net's pipeline.

A bare training loop (no augmentation, no deep supervision, nnU-Net's SGD, poly learning rate, Dice + CE) on the
benchmark's preprocessed Dataset801 (run benchmarks/run_benchmark.py first), batch 2, random 40 x 56 x 40 crops of
the labeled cases, the benchmark's CPU network with UniSeMi's dynamic head:

- `dyn_hip`: only hippocampus_anterior cases under prompt 2 (one task, as a per-task model sees it);
- `mixed`: each sample's task drawn from the three tasks (as UniSeMi's task-balanced loader does), own prompt.

Prints the training Dice of the hippocampus_anterior samples every 25 steps. Used in docs/BENCHMARKS.md to tell a
slow start (too few samples of the task) from a task that the multi-task head cannot learn.

    python benchmarks/plateau_probe.py mixed 450 0     # mode, steps, seed
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import blosc2
import numpy as np
import torch
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

sys.path.insert(0, str(Path(__file__).resolve().parent))
from head_gradient_check import backbone  # noqa: E402

from nnunetv2_unisemi.network.unisemi_network import UniSeMiNetwork  # noqa: E402

PATCH = (40, 56, 40)
PREPROCESSED = Path(os.environ.get("UNISEMI_BENCH_ROOT", Path(__file__).resolve().parents[1] / "benchmark_runs")) / \
    "nnUNet_preprocessed" / "Dataset801_UniSeMiBench10"


def random_crop(case: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    folder = PREPROCESSED / "nnUNetPlans_3d_fullres"
    data, seg = blosc2.open(str(folder / f"{case}.b2nd"))[:], blosc2.open(str(folder / f"{case}_seg.b2nd"))[:]
    x, y = np.zeros((1, *PATCH), np.float32), np.zeros(PATCH, np.int16)
    src, dst = [], []
    for n, p in zip(data.shape[1:], PATCH):
        if n >= p:
            a = int(rng.integers(0, n - p + 1))
            src.append(slice(a, a + p))
            dst.append(slice(0, p))
        else:
            a = (p - n) // 2
            src.append(slice(0, n))
            dst.append(slice(a, a + n))
    x[(slice(None), *dst)] = data[(slice(None), *src)]
    y[tuple(dst)] = seg[(0, *src)]
    return x, np.maximum(y, 0)


def main(mode: str, steps: int, seed: int) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    info = json.loads((PREPROCESSED / "dataset.json").read_text())["unisemi"]
    tasks = [2] if mode == "dyn_hip" else [1, 2, 3]
    pool = {t: [c for c in info["labeled"] if info["case_to_task"][c] == t] for t in tasks}
    b = backbone(seed)
    net = UniSeMiNetwork(b.encoder, b.decoder, num_prompts=4)
    loss_fn = DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": False}, {}, 1, 1, None,
                             MemoryEfficientSoftDiceLoss)
    opt = torch.optim.SGD(net.parameters(), 0.01, momentum=0.99, nesterov=True, weight_decay=3e-5)
    start, dice = time.time(), []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = 0.01 * (1 - step / steps) ** 0.9
        task_ids = rng.choice(tasks, 2)
        xs, ys = zip(*[random_crop(str(rng.choice(pool[t])), rng) for t in task_ids])
        prompts = torch.as_tensor(task_ids)
        target = (torch.from_numpy(np.stack(ys))[:, None] == prompts.view(-1, 1, 1, 1, 1)).long()
        out = net(torch.from_numpy(np.stack(xs)), prompts)[0]
        loss = loss_fn(out, target)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
        opt.step()
        with torch.no_grad():
            pred = out.argmax(1)
            for i in np.flatnonzero(task_ids == 2):
                tp = ((pred[i] == 1) & (target[i, 0] == 1)).sum().item()
                dice.append(2 * tp / max((pred[i] == 1).sum().item() + (target[i, 0] == 1).sum().item(), 1))
        if (step + 1) % 25 == 0:
            recent = f"{np.mean(dice[-12:]):.3f}" if dice else "n/a"
            print(f"{mode} seed {seed} step {step + 1}: hippocampus_anterior training Dice (recent samples) {recent}, "
                  f"loss {loss.item():.3f}, {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
