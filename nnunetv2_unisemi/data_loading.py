"""The two patch loaders of a UniSeMi step, both nnU-Net's nnUNetDataLoader with its augmentation pipeline.

- Labeled: task-balanced. Each batch slot first draws a task (a permutation of the tasks, so consecutive slots
  differ and the synthetic task always finds partners from different tasks), then one of that task's labeled
  cases. Without balancing, a task with 8 labels would be drawn almost 3x as often as one with 3. The batch carries
  each sample's task id. nnU-Net forces foreground in the last `oversample_foreground_percent` of a batch (rounded:
  1 of 2 at batch size 2); with `per_task_oversampling` that rule is applied to each task's samples of the batch
  instead, so a batch of n patches per task oversamples every task as a per-task loader of batch size n does (at
  n = 2: 1 of each task's 2, where the batch-level rule on 6 patches forces 2 of 6 and leaves one task without).
- Unlabeled: uniform random patches (no foreground oversampling: unlabeled cases have no labels to oversample
  from, and their all-ignore label files must not trigger nnU-Net's 'annotated voxels' sampling). It knows
  nothing about tasks.
"""

from __future__ import annotations

import numpy as np
import torch
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader


class TaskBalancedDataLoader(nnUNetDataLoader):
    def __init__(self, data, batch_size, patch_size, final_patch_size, label_manager, case_to_task: dict[str, int],
                 oversample_foreground_percent: float = 0.33, transforms=None, per_task_oversampling: bool = False):
        super().__init__(data, batch_size, patch_size, final_patch_size, label_manager,
                         oversample_foreground_percent=oversample_foreground_percent, transforms=transforms)
        if per_task_oversampling:
            self.get_do_oversample = self._oversample_last_percent_of_each_task
        self._slots = []
        missing = [c for c in data.identifiers if c not in case_to_task]
        if missing:
            raise ValueError(f"labeled cases without a task in dataset.json's unisemi block: {missing[:5]}")
        self.case_to_task = {c: case_to_task[c] for c in data.identifiers}
        self.cases_per_task = {}
        for case, task in sorted(self.case_to_task.items()):
            self.cases_per_task.setdefault(task, []).append(case)
        self.task_ids = sorted(self.cases_per_task)

    def get_indices(self):
        slots = []
        while len(slots) < self.batch_size:
            slots.extend(np.random.permutation(self.task_ids).tolist())
        self._slots = slots = slots[: self.batch_size]
        return [self.cases_per_task[t][np.random.randint(len(self.cases_per_task[t]))] for t in slots]

    def _oversample_last_percent_of_each_task(self, sample_idx: int) -> bool:
        """nnU-Net's _oversample_last_XX_percent over the samples of this sample's task in the batch."""
        task = self._slots[sample_idx]
        rank, count = self._slots[:sample_idx].count(task), self._slots.count(task)
        return not rank < round(count * (1 - self.oversample_foreground_percent))

    def generate_train_batch(self):
        batch = super().generate_train_batch()
        batch["task_ids"] = torch.as_tensor([self.case_to_task[k] for k in batch["keys"]], dtype=torch.long)
        return batch


class RandomPatchDataLoader(nnUNetDataLoader):
    """Uniformly random patches. `case_to_task` is only given by the "w/ Task Info" variant."""

    def __init__(self, data, batch_size, patch_size, final_patch_size, label_manager, transforms=None,
                 case_to_task: dict[str, int] | None = None):
        super().__init__(data, batch_size, patch_size, final_patch_size, label_manager,
                         oversample_foreground_percent=0.0, transforms=transforms)
        self.has_ignore = False  # -> nnUNetDataLoader.get_bbox draws a uniformly random patch
        self.case_to_task = case_to_task

    def generate_train_batch(self):
        batch = super().generate_train_batch()
        if self.case_to_task is not None:
            batch["task_ids"] = torch.as_tensor([self.case_to_task[k] for k in batch["keys"]], dtype=torch.long)
        return batch
