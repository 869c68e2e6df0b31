"""Orthogonal prompt kernels: the task prompts' head kernels are kept apart (squared cosine in the loss).

Why (docs/BENCHMARKS.md, "One task alone, and orthogonal prompt kernels"): each labeled case is annotated for one task
only. Two tasks on the same images (the anterior and posterior hippocampus of the benchmark) start from the same
all-background plateau and leave it along the structure they share, so their per-prompt kernels drift to one
direction ("hippocampus"). From then on the decoder must serve two contradicting targets with one feature, which it
can only do by memorising which training case belongs to which task, and on new cases both prompts give one mask.
With the kernels kept orthogonal each prompt reads its own feature: in the hippocampus experiment the parts
separated in 3 of 4 seeds with static per-task heads; with the per-prompt dynamic head
(nnUNetTrainerUniSeMi_OrthogonalPrompts) in 1 of 3 real benchmark seeds (Dice between the two prompts' masks on
held-out cases 0.00, against 0.95-0.97), while in the others one task stayed on the all-background plateau or the
masks merged again. Not reliable yet, hence off by default (kernel_alignment_weight = 0).

The kernels must not depend on the image (no pooled context) for the directions to be the prompts' own
(DynamicHead.prompt_kernel_directions). The synthetic prompt K + 1 (every task's foreground) is not included.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def kernel_alignment(directions: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean squared cosine between every two task prompts' kernel directions, over pairs and scales (0 for K = 1).

    directions: one (K, C) tensor per scale (DynamicHead.prompt_kernel_directions of the task prompts). Opposed
    kernels count as aligned (cos^2 = 1): one would read the other's feature with the sign flipped.
    """
    terms = []
    for d in directions:
        if d.shape[0] < 2:
            continue
        unit = F.normalize(d.float(), dim=1)
        cos = unit @ unit.T
        first, second = torch.triu_indices(d.shape[0], d.shape[0], offset=1, device=d.device)
        terms.append((cos[first, second] ** 2).mean())
    return torch.stack(terms).mean() if terms else directions[0].new_zeros((), dtype=torch.float32)
