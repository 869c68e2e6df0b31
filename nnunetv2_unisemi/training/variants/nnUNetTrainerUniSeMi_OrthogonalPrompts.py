"""UniSeMi with per-prompt kernels kept orthogonal (docs/BENCHMARKS.md, "One task alone, and orthogonal prompt
kernels").

The head of nnUNetTrainerUniSeMi_SeparatePrompts (each prompt its own He-initialised kernel on the decoder features,
nothing shared between prompts), without its cross-task exclusion, plus the squared cosine between every two task
prompts' kernel directions in the supervised loss (prompt_orthogonality.kernel_alignment). In the hippocampus experiment
(benchmarks/experiments/prompt_saddle_toy.py) that kept the anterior and posterior prompts apart where exclusion did
not. On the real benchmark (10% labels, 600 iterations, 3 seeds) it separated them in 1 seed, and the average Dice
(48.7 +- 6.2) did not improve on the default (48.1 +- 1.6): not the default.
"""

from __future__ import annotations

import torch

from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_SeparatePrompts import (
    nnUNetTrainerUniSeMi_SeparatePrompts,
)


class nnUNetTrainerUniSeMi_OrthogonalPrompts(nnUNetTrainerUniSeMi_SeparatePrompts):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.exclusion_loss_weight = 0.0
        self.kernel_alignment_weight = 1.0


class nnUNetTrainerUniSeMi_OrthogonalPrompts_TaskSum(nnUNetTrainerUniSeMi_OrthogonalPrompts):
    """... with the tasks' mean losses summed (`sum_task_losses`) in the default batch: the per-task SGD step of
    _PerTaskBatch_TaskSum at the default's step cost (a task in the step takes a full step from its one patch; a task
    is in 2 of 3 steps at K = 3 and batch size 2). Measured (600 iterations, 2 seeds): 47.1 +- 10.3 average Dice, no
    better than the default (48.1 +- 1.6); the hippocampus tasks left the all-background plateau at epoch 5-19 of 20.
    The sum pays only with every task's patches in every step (_PerTaskBatch_TaskSum: 69.5 +- 3.4)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.sum_task_losses = True
