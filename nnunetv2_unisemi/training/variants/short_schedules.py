"""Short schedules for CPU demos, tests and benchmarks (nnU-Net's own `_Xepochs` variants keep 250 iterations per
epoch, far too long on a CPU). The iteration budget is num_epochs * num_iterations_per_epoch."""

from __future__ import annotations

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_NoUnlabeled import nnUNetTrainerUniSeMi_NoUnlabeled
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_TaskInfo import nnUNetTrainerUniSeMi_TaskInfo


def short_schedule(base: type, name: str, epochs: int, iterations: int, val_iterations: int) -> type:
    """A subclass of `base` named `name` that trains epochs x iterations steps and checkpoints every epoch."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        base.__init__(self, plans, configuration, fold, dataset_json, device)
        self.num_epochs = epochs
        self.num_iterations_per_epoch = iterations
        self.num_val_iterations_per_epoch = val_iterations
        self.save_every = 1

    return type(name, (base,), {"__init__": __init__, "__module__": __name__})


# tests: a couple of epochs of a few iterations
nnUNetTrainerUniSeMi_Tiny = short_schedule(nnUNetTrainerUniSeMi, "nnUNetTrainerUniSeMi_Tiny", 2, 4, 2)
# the built-in demo (nnUNetv2_unisemi_demo): 200 iterations
nnUNetTrainerUniSeMi_Demo = short_schedule(nnUNetTrainerUniSeMi, "nnUNetTrainerUniSeMi_Demo", 8, 25, 3)
# CPU benchmark budget: 600 iterations
nnUNetTrainerUniSeMi_CPU = short_schedule(nnUNetTrainerUniSeMi, "nnUNetTrainerUniSeMi_CPU", 20, 30, 5)
nnUNetTrainerUniSeMi_NoUnlabeled_CPU = short_schedule(
    nnUNetTrainerUniSeMi_NoUnlabeled, "nnUNetTrainerUniSeMi_NoUnlabeled_CPU", 20, 30, 5)
nnUNetTrainerUniSeMi_TaskInfo_CPU = short_schedule(
    nnUNetTrainerUniSeMi_TaskInfo, "nnUNetTrainerUniSeMi_TaskInfo_CPU", 20, 30, 5)
# the supervised per-task baseline (plain nnU-Net) on the same budget
nnUNetTrainer_CPU = short_schedule(nnUNetTrainer, "nnUNetTrainer_CPU", 20, 30, 5)
