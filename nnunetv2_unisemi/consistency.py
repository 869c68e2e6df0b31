"""Unlabeled self-consistency (paper Eq. 7 and 9).

On a CutMix of unlabeled samples, the foreground probabilities under the K task prompts are aggregated by an
element-wise max (P_agg, a pseudo-mask of "any task's target") and the prediction under the synthetic prompt is
pulled towards it with a soft Dice loss. P_agg is a target: no gradient flows through it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.utilities.helpers import softmax_helper_dim1


def aggregated_task_prediction(task_logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 7: P_agg = max_k softmax(logits_k)[foreground], detached. Each logits tensor is (B, 2, *spatial)."""
    foreground = torch.stack([torch.softmax(logits, dim=1)[:, 1] for logits in task_logits])
    return foreground.max(dim=0).values.detach()


class UnlabeledConsistencyLoss(torch.nn.Module):
    """Eq. 9: 1 - soft Dice(softmax(synthetic logits)[foreground], P_agg), per sample, averaged."""

    def __init__(self, smooth: float = 1e-5, ddp: bool = False):
        super().__init__()
        self.dice = MemoryEfficientSoftDiceLoss(
            apply_nonlin=softmax_helper_dim1, batch_dice=False, do_bg=False, smooth=smooth, ddp=ddp
        )

    def forward(self, synthetic_logits: torch.Tensor, p_agg: torch.Tensor) -> torch.Tensor:
        soft_target = torch.stack((1 - p_agg, p_agg), dim=1).detach()
        return 1 + self.dice(synthetic_logits, soft_target)
