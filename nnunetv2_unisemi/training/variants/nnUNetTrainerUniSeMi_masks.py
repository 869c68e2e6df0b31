"""CutMix mask strategies of the paper's Table 7 (zero-centered cuboid is the default trainer)."""

from __future__ import annotations

import torch

from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi


class nnUNetTrainerUniSeMi_RandomCubesMask(nnUNetTrainerUniSeMi):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.mask_strategy = "random_cubes"


class nnUNetTrainerUniSeMi_SliceMask(nnUNetTrainerUniSeMi):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.mask_strategy = "slices"
