"""Test-only schedules of the comparison trainers: 1 epoch x 2 steps (BCP: 1 pre-training + 1 self-training step)."""

import torch

from nnunetv2_unisemi.training.variants.nnUNetTrainerBCP import nnUNetTrainerBCP, nnUNetTrainerUniBCP
from nnunetv2_unisemi.training.variants.nnUNetTrainerMeanTeacher import (
    nnUNetTrainerMeanTeacher,
    nnUNetTrainerUniMeanTeacher,
)
from nnunetv2_unisemi.training.variants.short_schedules import short_schedule


def one_pretraining_step(base: type, name: str) -> type:
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        base.__init__(self, plans, configuration, fold, dataset_json, device)
        self.pretrain_iterations = 1

    return type(name, (base,), {"__init__": __init__, "__module__": __name__})


nnUNetTrainerMeanTeacher_Test = short_schedule(nnUNetTrainerMeanTeacher, "nnUNetTrainerMeanTeacher_Test", 1, 2, 1)
nnUNetTrainerUniMeanTeacher_Test = short_schedule(
    nnUNetTrainerUniMeanTeacher, "nnUNetTrainerUniMeanTeacher_Test", 1, 2, 1)
nnUNetTrainerBCP_Test = short_schedule(
    one_pretraining_step(nnUNetTrainerBCP, "_BCPOnePretrainStep"), "nnUNetTrainerBCP_Test", 1, 2, 1)
nnUNetTrainerUniBCP_Test = short_schedule(
    one_pretraining_step(nnUNetTrainerUniBCP, "_UniBCPOnePretrainStep"), "nnUNetTrainerUniBCP_Test", 1, 2, 1)
