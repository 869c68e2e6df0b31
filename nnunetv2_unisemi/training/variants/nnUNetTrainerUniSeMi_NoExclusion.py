"""UniSeMi with the paper's supervised term alone: each labeled case only under its own task prompt.

Without the cross-task exclusion (task_exclusion.py) a shared network can segment "whatever is annotated in this
training image" and give two tasks on the same images one mask on new cases (docs/BENCHMARKS.md). Use this variant
for the ablation, or for tasks whose structures nest (an organ and a tumour inside it from another data set), where
one task's target is not background for the other.
"""

from __future__ import annotations

import torch

from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi


class nnUNetTrainerUniSeMi_NoExclusion(nnUNetTrainerUniSeMi):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.exclusion_loss_weight = 0.0
