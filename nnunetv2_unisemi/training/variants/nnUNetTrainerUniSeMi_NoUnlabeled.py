"""Multi-task supervised UniSeMi: labeled tasks + the synthetic task, no unlabeled data (ablation / baseline)."""

from __future__ import annotations

import torch

from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi


class nnUNetTrainerUniSeMi_NoUnlabeled(nnUNetTrainerUniSeMi):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.use_unlabeled = False
