"""Kernel density of predicted foreground probabilities on labeled vs unlabeled training cases, per task (Fig. 5).

For each case, the model's probability of the case's own task on its central patch: the task prompt's foreground
probability for UniSeMi networks, the task's softmax channel for nnU-Net-style networks with K + 1 outputs (Uni-
baselines, single-task comparison models). Voxels the model is sure are background (p <= `min_probability`, by
default 0.01) are left out: they are most of every patch and would hide the shape of the distribution in a peak
at 0. A labeled/unlabeled mismatch shows as different densities for the two groups (the paper's argument).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from nnunetv2_unisemi.analysis.model_loading import center_patch
from nnunetv2_unisemi.network.unisemi_network import UniSeMiNetwork


@torch.no_grad()
def own_task_probability(network: torch.nn.Module, x: torch.Tensor, task: int) -> torch.Tensor:
    """(B, *spatial) probability of `task` for a batch x (B, C, *spatial)."""
    if isinstance(network, UniSeMiNetwork):
        logits = network(x, torch.full((x.shape[0],), task, dtype=torch.long, device=x.device))
        logits = logits[0] if isinstance(logits, (list, tuple)) else logits
        return torch.softmax(logits.float(), 1)[:, 1]
    logits = network(x)
    logits = logits[0] if isinstance(logits, (list, tuple)) else logits
    return torch.softmax(logits.float(), 1)[:, task]


def collect_probabilities(network: torch.nn.Module, cases: Iterable[tuple[str, np.ndarray]],
                          case_to_task: dict[str, int], patch_size: Sequence[int], min_probability: float = 0.01,
                          max_voxels_per_case: int = 20000, seed: int = 0,
                          device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """Case id -> probabilities of its own task (voxels above min_probability, at most max_voxels_per_case)."""
    rng = np.random.default_rng(seed)
    network.eval()
    out = {}
    for case, image in cases:
        x = torch.from_numpy(center_patch(image, patch_size))[None].to(device)
        p = own_task_probability(network, x, case_to_task[case]).cpu().numpy().ravel()
        p = p[p > min_probability]
        if p.size > max_voxels_per_case:
            p = rng.choice(p, max_voxels_per_case, replace=False)
        out[case] = p
    return out


def density_curves(values: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """Gaussian KDE of `values` on `grid` (None when too few distinct values to estimate one)."""
    from scipy.stats import gaussian_kde

    if values.size < 2 or np.ptp(values) < 1e-6:
        return None
    return gaussian_kde(values)(grid)


def plot_labeled_unlabeled_density(probabilities: dict[str, np.ndarray], case_to_task: dict[str, int],
                                   labeled: Sequence[str], task_names: dict[int, str],
                                   output_png: str | os.PathLike, title: str = "") -> dict[int, dict[str, int]]:
    """One panel per task with the labeled and the unlabeled density. Returns voxel counts per task and group."""
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    labeled = set(labeled)
    tasks = sorted(task_names)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    grid = np.linspace(0, 1, 201)
    counts = {}
    for ax, task in zip(axes[0], tasks):
        counts[task] = {}
        for group, colour in (("labeled", "tab:blue"), ("unlabeled", "tab:orange")):
            chosen = [p for c, p in probabilities.items()
                      if case_to_task[c] == task and ((c in labeled) == (group == "labeled"))]
            values = np.concatenate(chosen) if chosen else np.zeros(0)
            counts[task][group] = int(values.size)
            curve = density_curves(values, grid)
            if curve is not None:
                ax.plot(grid, curve, color=colour, label=f"{group} ({len(chosen)} cases)")
                ax.fill_between(grid, curve, color=colour, alpha=0.2)
        ax.set_title(task_names[task])
        ax.set_xlabel("predicted foreground probability")
        ax.set_xlim(0, 1)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("density")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(output_png, dpi=120)
    plt.close(fig)
    return counts
