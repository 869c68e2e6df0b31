"""Unlabeled self-consistency (paper Eq. 7 and 9).

On a CutMix of unlabeled samples, the foreground probabilities under the K task prompts are aggregated by an
element-wise max (P_agg, a pseudo-mask of "any task's target") and the prediction under the synthetic prompt is
pulled towards it with a soft Dice loss.

The paper writes no stop-gradient. By default P_agg is a target (detached): the unlabeled term trains the synthetic
prompt (and through it the backbone) only. With `detach=False` the consistency also pulls the task prompts, at each
voxel the one with the largest foreground probability, towards the synthetic prompt's prediction: the only way the
unlabeled cases reach the task prompts themselves (nnUNetTrainerUniSeMi_..._TwoWay).

P_agg is a union: every task prompt's false positive on any image is a foreground target for the synthetic prompt.
On the real benchmark the term made the left atrium's masks too large and cost about 2 Dice points at 1800
iterations (docs/BENCHMARKS.md, "Where the left atrium's errors lie"). `confidence_threshold` keeps only the voxels
where P_agg is confident (>= t or <= 1 - t) in the Dice, the pseudo-label filtering of FixMatch-style methods
(nnUNetTrainerUniSeMi_..._ConfidentUnlabeled); None is the paper's term.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def aggregated_task_prediction(task_logits: Sequence[torch.Tensor], detach: bool = True) -> torch.Tensor:
    """Eq. 7: P_agg = max_k softmax(logits_k)[foreground] (detached unless told). Each logits tensor is
    (B, 2, *spatial)."""
    foreground = torch.stack([torch.softmax(logits, dim=1)[:, 1] for logits in task_logits])
    p_agg = foreground.max(dim=0).values
    return p_agg.detach() if detach else p_agg


class UnlabeledConsistencyLoss(torch.nn.Module):
    """Eq. 9: 1 - soft Dice(softmax(synthetic logits)[foreground], P_agg), per sample, averaged.

    The value of nnU-Net's MemoryEfficientSoftDiceLoss (batch_dice=False, do_bg=False; tests/test_consistency.py),
    written out because that one treats its target as a constant: here gradient also flows into P_agg when P_agg
    carries one (aggregated_task_prediction(..., detach=False))."""

    def __init__(self, smooth: float = 1e-5, confidence_threshold: float | None = None):
        super().__init__()
        if confidence_threshold is not None and not 0.5 < confidence_threshold < 1:
            raise ValueError(f"confidence_threshold must lie in (0.5, 1), got {confidence_threshold}")
        self.smooth = smooth
        self.confidence_threshold = confidence_threshold

    def forward(self, synthetic_logits: torch.Tensor, p_agg: torch.Tensor) -> torch.Tensor:
        synthetic = torch.softmax(synthetic_logits.float(), dim=1)[:, 1]
        p_agg = p_agg.float()
        if self.confidence_threshold is not None:  # unconfident voxels leave both sums of the Dice
            t = self.confidence_threshold
            confident = ((p_agg >= t) | (p_agg <= 1 - t)).detach()
            synthetic, p_agg = synthetic * confident, p_agg * confident
        axes = tuple(range(1, synthetic.ndim))
        intersection = (synthetic * p_agg).sum(axes)
        dice = (2 * intersection + self.smooth) / (synthetic.sum(axes) + p_agg.sum(axes) + self.smooth).clamp_min(1e-8)
        return 1 - dice.mean()
