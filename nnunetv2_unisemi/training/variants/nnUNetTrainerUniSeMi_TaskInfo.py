"""The paper's "UniSeMi w/ Task Info" rows: the unlabeled cases' tasks are known to the trainer.

Pseudo-masks then come from task-specific data (each unlabeled patch, unmixed, under its own task prompt), CutMixed
with the same mask as the images, instead of the max over all task prompts on the mixed input.
"""

from __future__ import annotations

import torch

from nnunetv2_unisemi.task_mixing import cutmix
from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi


class nnUNetTrainerUniSeMi_TaskInfo(nnUNetTrainerUniSeMi):
    def unlabeled_case_to_task(self, unlabeled: list[str]) -> dict[str, int]:
        return {c: self.unisemi.case_to_task[c] for c in unlabeled}

    def unlabeled_target(self, prompted_logits, mix_parts) -> torch.Tensor:
        first, second, masks, batch = mix_parts
        task_ids = batch["task_ids"].to(self.device)
        with torch.no_grad():
            logits = self.network(torch.cat((first, second)), torch.cat((task_ids[0::2], task_ids[1::2])))
            logits = logits[0] if self.enable_deep_supervision else logits
            foreground = torch.softmax(logits, 1)[:, 1:2]
        n = first.shape[0]
        return cutmix(foreground[:n], foreground[n:], masks)[:, 0].detach()
