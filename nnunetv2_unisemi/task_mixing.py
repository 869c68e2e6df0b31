"""CutMix masks and the synthetic task (paper Eq. 3-4 and 6, Table 7).

A mask M is 1 where the mixed sample takes the first image and 0 where it takes the second. Every strategy draws
the masked fraction uniformly in [min_fraction, max_fraction] (30-70 % by default, as in the paper).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

MASK_STRATEGIES = ("zero_centered", "random_cubes", "slices")


def cuboid_mask(shape: Sequence[int], fraction: float, rng: np.random.Generator) -> np.ndarray:
    """One cuboid covering `fraction` of the patch ('zero-centered' in the paper: one large coherent region).

    Side ratios are drawn around fraction**(1/ndim) so that the cuboid is not always a cube; the last side is
    solved for the requested volume, then the box is placed at a random position inside the patch.
    """
    ndim = len(shape)
    ratios = []
    remaining = fraction
    for _ in range(ndim - 1):
        # r >= remaining keeps the last side's ratio (remaining / r) <= 1
        r = rng.uniform(max(remaining, 0.75 * fraction ** (1 / ndim)), 1.0)
        ratios.append(r)
        remaining /= r
    ratios = list(rng.permutation([*ratios, remaining]))
    sides = [max(1, int(round(s * r))) for s, r in zip(shape, ratios)]
    mask = np.zeros(shape, dtype=bool)
    starts = [rng.integers(0, s - side + 1) for s, side in zip(shape, sides)]
    mask[tuple(slice(st, st + side) for st, side in zip(starts, sides))] = True
    return mask


def random_cubes_mask(shape: Sequence[int], fraction: float, rng: np.random.Generator, cube: int = 6) -> np.ndarray:
    """Many small cubes (6x6x6 in the paper): each cell of a cube grid is taken with probability `fraction`."""
    grid = [int(np.ceil(s / cube)) for s in shape]
    cells = rng.random(grid) < fraction
    mask = cells
    for axis in range(len(shape)):
        mask = np.repeat(mask, cube, axis=axis)
    return mask[tuple(slice(0, s) for s in shape)]


def slice_mask(shape: Sequence[int], fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Whole slices along the first (through-plane) axis: slice exchange between the two samples."""
    n = shape[0]
    k = int(np.clip(round(fraction * n), 1, n - 1)) if n > 1 else 1
    chosen = rng.choice(n, size=k, replace=False)
    mask = np.zeros(shape, dtype=bool)
    mask[chosen] = True
    return mask


def sample_cutmix_masks(
    n: int,
    shape: Sequence[int],
    strategy: str = "zero_centered",
    rng: np.random.Generator | None = None,
    min_fraction: float = 0.3,
    max_fraction: float = 0.7,
) -> torch.Tensor:
    """n masks of spatial `shape` as a bool tensor (n, *shape)."""
    if strategy not in MASK_STRATEGIES:
        raise ValueError(f"unknown CutMix mask strategy '{strategy}', choose one of {MASK_STRATEGIES}")
    rng = rng if rng is not None else np.random.default_rng()
    make = {"zero_centered": cuboid_mask, "random_cubes": random_cubes_mask, "slices": slice_mask}[strategy]
    masks = []
    for _ in range(n):
        mask = make(shape, rng.uniform(min_fraction, max_fraction), rng)
        # the discrete geometry can miss the range by a voxel row; redraw rather than silently leave it
        for _retry in range(20):
            if min_fraction <= mask.mean() <= max_fraction:
                break
            mask = make(shape, rng.uniform(min_fraction, max_fraction), rng)
        masks.append(mask)
    return torch.from_numpy(np.stack(masks))


def cutmix(first: torch.Tensor, second: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Eq. 3/6: X = X_i * M + X_j * (1 - M). first/second (n, C, *spatial), masks (n, *spatial) bool."""
    m = masks[:, None].to(first.dtype)
    return first * m + second * (1 - m)


def resize_masks(masks: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour resize of bool masks to a deep-supervision scale (as nnU-Net downsamples targets)."""
    if tuple(masks.shape[1:]) == tuple(spatial):
        return masks
    return F.interpolate(masks[:, None].float(), size=tuple(spatial), mode="nearest-exact")[:, 0] > 0.5


def pair_different_tasks(task_ids: Sequence[int], n_pairs: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Pick up to n_pairs (i, j) index pairs of a batch whose samples belong to different tasks."""
    task_ids = list(task_ids)
    candidates = [(i, j) for i in range(len(task_ids)) for j in range(len(task_ids)) if task_ids[i] != task_ids[j]]
    if not candidates:
        return []
    order = rng.permutation(len(candidates))[:n_pairs]
    return [candidates[k] for k in order]


def synthesize_task_batch(
    images: torch.Tensor,
    targets: list[torch.Tensor],
    pairs: Sequence[tuple[int, int]],
    masks: torch.Tensor,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The synthetic task's samples (Eq. 3-4) from labeled samples of different tasks.

    images (B, C, *spatial); targets: binary foreground of each sample under its own task, one (B, 1, *spatial_s)
    tensor per deep-supervision scale. Returns the mixed images (n, C, ...) and their targets per scale: the union
    of both samples' targets under the mask, i.e. Y_i * M + Y_j * (1 - M).
    """
    first = torch.as_tensor([i for i, _ in pairs], device=images.device, dtype=torch.long)
    second = torch.as_tensor([j for _, j in pairs], device=images.device, dtype=torch.long)
    masks = masks.to(images.device)
    mixed_images = cutmix(images[first], images[second], masks)
    mixed_targets = [
        cutmix(t[first], t[second], resize_masks(masks, t.shape[2:]).to(t.device)) for t in targets
    ]
    return mixed_images, mixed_targets
