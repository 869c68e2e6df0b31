"""Losses of the comparison methods (UA-MT, BCP and their "Uni-" forms), written for nnU-Net's label space.

Every loss takes raw logits over nnU-Net's C = K + 1 channels (background + K tasks) and integer label maps.

- `masked_dice_ce`: 0.5 * (soft Dice + CE) restricted to a voxel region (BCP's `mix_loss` terms; UA-MT's supervised
  loss without a region). Both reference codes average CE and Dice with weight 1/2.
- `partial_label_log_probs`: the partial-label (marginal) view of a sample that is annotated for one task only: the
  softmax over all C channels, with the channels of every other task merged into background, i.e. the 2-class
  log-probabilities (log P(background or another task), log P(own task)). A voxel outside the own task's mask may
  belong to another task's organ that this case simply does not annotate; merging removes any penalty for that.
- `softmax_mse`: UA-MT's consistency (squared difference of softmax probabilities, averaged over channels), optionally
  restricted to a voxel mask (UA-MT's uncertainty mask).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def sigmoid_rampup(current: float, length: float) -> float:
    """exp(-5 (1 - t)^2), t = current / length clipped to [0, 1] (Laine & Aila; used by UA-MT and BCP)."""
    if length <= 0:
        return 1.0
    phase = 1.0 - float(np.clip(current, 0.0, length)) / length
    return float(np.exp(-5.0 * phase * phase))


def partial_label_log_probs(logits: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
    """(B, C, *spatial) logits, (B,) task ids in 1..C-1 -> (B, 2, *spatial) log-probabilities of
    (background merged with every other task, own task)."""
    log_p = torch.log_softmax(logits.float(), dim=1)
    index = task_ids.to(logits.device).view(-1, 1, *([1] * (logits.ndim - 2))).expand(-1, 1, *logits.shape[2:])
    own = log_p.gather(1, index)
    others = log_p.scatter(1, index, float("-inf"))  # every channel but the own task's
    rest = torch.logsumexp(others, dim=1, keepdim=True)
    return torch.cat((rest, own), dim=1)


def masked_dice_ce(
    log_probs: torch.Tensor,
    target: torch.Tensor,
    region: torch.Tensor | None = None,
    dice_channels: Sequence[int] | None = None,
    smooth: float = 1e-5,
) -> torch.Tensor:
    """0.5 * (soft Dice loss + cross-entropy) inside `region`.

    log_probs (B, C, *spatial) log-probabilities; target (B, *spatial) or (B, 1, *spatial) integer class indices;
    region (B, *spatial) bool/float, None = everywhere. CE is averaged over the region's voxels (BCP's
    sum(CE * mask) / sum(mask)); Dice is computed per sample and channel over the region, then averaged over
    `dice_channels` (default: every channel but background) and samples: 1 - mean((2 |P Y| + s) / (|P| + |Y| + s)).
    A sample whose region is empty contributes nothing.
    """
    if target.ndim == log_probs.ndim:
        target = target[:, 0]
    target = target.long()
    region = torch.ones_like(target, dtype=log_probs.dtype) if region is None else region.to(log_probs.dtype)
    channels = list(range(1, log_probs.shape[1])) if dice_channels is None else list(dice_channels)
    ce = F.nll_loss(log_probs, target, reduction="none")
    ce = (ce * region).sum() / (region.sum() + 1e-8)

    axes = tuple(range(2, log_probs.ndim))
    probs = log_probs.exp()[:, channels]
    onehot = torch.stack([(target == c) for c in channels], dim=1).to(probs.dtype)
    weight = region[:, None]
    intersect = (probs * onehot * weight).sum(axes)
    denominator = ((probs + onehot) * weight).sum(axes)
    dice = (2 * intersect + smooth) / (denominator + smooth)
    present = (region.flatten(1).sum(1) > 0).to(dice.dtype)  # (B,)
    dice_loss = ((1 - dice).mean(1) * present).sum() / present.sum().clamp_min(1)
    return 0.5 * (dice_loss + ce)


def softmax_mse(student_probs: torch.Tensor, teacher_probs: torch.Tensor,
                region: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over channels of (student - teacher)^2 (softmax probabilities), averaged over `region` (B, *spatial)
    or every voxel. For two channels this is UA-MT's sum(mask * mse) / (2 * sum(mask)).
    """
    diff = (student_probs.float() - teacher_probs.float()).pow(2).mean(1)
    if region is None:
        return diff.mean()
    region = region.to(diff.dtype)
    return (diff * region).sum() / (region.sum() + 1e-16)


def prediction_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Voxel-wise entropy -sum_c p_c log p_c of (B, C, *spatial) probabilities -> (B, *spatial)."""
    return -(probs * torch.log(probs + 1e-6)).sum(1)
