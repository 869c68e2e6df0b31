"""UniSeMi with the unlabeled loss at full weight from the first iteration (no ramp-up of lambda; ablation)."""

from __future__ import annotations

import torch

from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi


class nnUNetTrainerUniSeMi_ConstantLambda(nnUNetTrainerUniSeMi):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.unlabeled_rampup_fraction = 0.0
