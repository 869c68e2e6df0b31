"""UniSeMi with the two changes that target "two prompts, one mask" (docs/BENCHMARKS.md, "Why two prompts gave one
mask"): cross-task exclusion on the labeled samples (task_exclusion.py), and a head with no path shared by all
prompts (each prompt its own He-initialised kernel on the decoder features: no trained shared bias, no pooled
context, no shared 1x1x1 reduction).

Not the default: in the one real-data run so far (600 iterations, 1 seed) the anterior prompt discriminated better
(0.41 of its mask on the anterior part, 0.19 on the posterior, against 0.31 / 0.54 before), but the hippocampus left
the all-background plateau later and the posterior prompt not at all (average Dice 30.6, against 48.1 +- 1.6).
"""

from __future__ import annotations

import torch

from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi


class nnUNetTrainerUniSeMi_SeparatePrompts(nnUNetTrainerUniSeMi):
    head_context = False
    head_channels = None
    head_separate_prompts = True

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.exclusion_loss_weight = 1.0
