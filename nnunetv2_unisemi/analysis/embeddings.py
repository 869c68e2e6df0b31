"""t-SNE of per-case bottleneck embeddings coloured by task (paper Fig. 7).

A case's embedding is the global average pool of the encoder's deepest feature map (the bottleneck, the input of
UniSeMi's dynamic-head controller) on the case's central patch (`mode="center"`), or the mean of that vector over
non-overlapping tiles covering the whole case (`mode="tiles"`). Works for every encoder-decoder network of
dynamic_network_architectures (nnU-Net's planned networks, the Uni- baselines) and for UniSeMiNetwork, whose
encoder is the planned one.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from nnunetv2_unisemi.analysis.model_loading import center_patch


@torch.no_grad()
def bottleneck_embedding(network: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, C_bottleneck): global average pool of the encoder's last skip."""
    skips = network.encoder(x)
    deepest = skips[-1] if isinstance(skips, (list, tuple)) else skips
    return deepest.float().mean(dim=tuple(range(2, deepest.ndim)))


def tile_starts(length: int, size: int) -> list[int]:
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, size))
    return starts if starts[-1] == length - size else [*starts, length - size]


@torch.no_grad()
def case_embedding(network: torch.nn.Module, image: np.ndarray, patch_size: Sequence[int], mode: str = "center",
                   device: str | torch.device = "cpu") -> np.ndarray:
    if mode == "center":
        patches = [center_patch(image, patch_size)]
    elif mode == "tiles":
        padded = center_patch(image, [max(s, p) for s, p in zip(image.shape[1:], patch_size)])
        grids = [tile_starts(length, size) for length, size in zip(padded.shape[1:], patch_size)]
        patches = [padded[(slice(None), *(slice(s, s + p) for s, p in zip(starts, patch_size)))]
                   for starts in itertools.product(*grids)]
    else:
        raise ValueError(f"unknown embedding mode '{mode}' (center, tiles)")
    vectors = [bottleneck_embedding(network, torch.from_numpy(p)[None].to(device)) for p in patches]
    return torch.cat(vectors).mean(0).cpu().numpy()


def case_embeddings(network: torch.nn.Module, cases: Iterable[tuple[str, np.ndarray]], case_to_task: dict[str, int],
                    patch_size: Sequence[int], mode: str = "center",
                    device: str | torch.device = "cpu") -> tuple[np.ndarray, list[str], np.ndarray]:
    """(N, C) embeddings, the case ids and their task ids, one row per case."""
    network.eval()
    rows, ids = [], []
    for case, image in cases:
        rows.append(case_embedding(network, image, patch_size, mode, device))
        ids.append(case)
    return np.stack(rows), ids, np.asarray([case_to_task[c] for c in ids])


def tsne_2d(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of standardised features; perplexity capped below the number of cases as t-SNE requires."""
    from sklearn.manifold import TSNE

    n = features.shape[0]
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 cases, got {n}")
    standardised = (features - features.mean(0)) / (features.std(0) + 1e-8)
    perplexity = float(min(perplexity, max(1.0, (n - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(standardised)


def plot_tsne(panels: Sequence[tuple[str, np.ndarray, np.ndarray]], task_names: dict[int, str],
              output_png: str | os.PathLike) -> None:
    """One scatter panel per model: (title, (N, 2) coordinates, (N,) task ids)."""
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.6), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (title, coords, tasks) in zip(axes[0], panels):
        for i, (task, name) in enumerate(sorted(task_names.items())):
            sel = tasks == task
            if sel.any():
                ax.scatter(coords[sel, 0], coords[sel, 1], s=22, color=colours(i % 10), label=name)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(output_png, dpi=120)
    plt.close(fig)
