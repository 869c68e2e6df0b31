"""Shared harness of the comparison methods (UA-MT style mean teacher, BCP and their "Uni-" forms).

Same data, loaders, augmentation, planned network and evaluation as UniSeMi; only the training step differs.

- Network: nnU-Net's planned network (nnUNetTrainer.build_network_architecture) with K + 1 outputs (background +
  K tasks, nnU-Net's num_segmentation_heads for the unified dataset), so nnUNetv2_predict works unchanged.
  No deep supervision, as the V-Net-based reference codes of UA-MT and BCP.
- Single-task form (`multi_task = False`): fold k trains task k (k = task id 1..K, as the benchmark's supervised
  folds): task k's labeled + unlabeled cases, validation on task k's labeled cases; or `self.task` names the task.
  The task is a plain binary problem: everything that is not task k is background (CE over all K + 1 channels,
  so the other tasks' channels are trained to stay off and argmax export writes label k), Dice on channel k.
- Uni- form (`multi_task = True`, paper Table 6): fold 0 (every task's labeled + unlabeled cases); each labeled
  sample supervises only what it annotates through the partial-label loss (other tasks' channels merged into
  background, see ssl_losses.partial_label_log_probs); unlabeled terms use all K + 1 channels.
- EMA teacher: created after the network, saved in every checkpoint and restored on load
  (ema_teacher.EMATeacherCheckpointMixin). `network_weights` holds the student, which nnU-Net's predictor uses,
  unless `export_teacher = True` (then `network_weights` is the teacher and the student goes to `student_weights`).
"""

from __future__ import annotations

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.helpers import dummy_context
from torch import autocast

from nnunetv2_unisemi.training.semi_supervised import SemiSupervisedTrainerMixin, per_task_tp_fp_fn
from nnunetv2_unisemi.training.variants.ema_teacher import EMATeacherCheckpointMixin, unwrap
from nnunetv2_unisemi.training.variants.ssl_losses import masked_dice_ce, partial_label_log_probs
from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo


class nnUNetTrainerSSLBase(EMATeacherCheckpointMixin, SemiSupervisedTrainerMixin, nnUNetTrainer):
    """Not a method by itself: subclasses implement `compute_losses` (and `teacher_decay`)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.unisemi = UnifiedDatasetInfo.from_dataset_json(dataset_json)
        self.enable_deep_supervision = False
        self.multi_task = False  # the "Uni-" form
        self.task = None  # single-task form: task name or id; None -> the fold number is the task id
        self.ema_decay = 0.99
        self.export_teacher = False
        self.use_unlabeled = True
        self.unlabeled_batch_size_override = None  # None -> the labeled batch size
        self.ssl_step = 0  # training iterations done (persisted in checkpoints)
        self.register_loss_terms()

    # ------------------------------------------------------------------------------------------------- task scope
    @property
    def task_id(self) -> int | None:
        """The single task this trainer learns (None for the Uni- form)."""
        if self.multi_task:
            return None
        if self.task is not None:
            return self.unisemi.task_by_name_or_id(self.task).id
        if not isinstance(self.fold, int) or not 1 <= self.fold <= self.unisemi.num_tasks:
            known = ", ".join(f"{t.id}={t.name}" for t in self.unisemi.tasks)
            raise ValueError(f"{self.__class__.__name__} is a single-task trainer: the fold selects the task, "
                             f"give a task id as fold ({known}), got fold {self.fold}")
        return self.fold

    @property
    def foreground_channels(self) -> list[int]:
        """Channels whose Dice is optimised: the own task's channel, or every task's for the Uni- form."""
        return list(range(1, self.unisemi.num_tasks + 1)) if self.multi_task else [self.task_id]

    def do_split(self):
        if self.multi_task:
            tr_keys, val_keys = super().do_split()
        else:
            task = self.task_id
            labeled = sorted(c for c in self.unisemi.labeled if self.unisemi.case_to_task[c] == task)
            unlabeled = sorted(c for c in self.unisemi.unlabeled if self.unisemi.case_to_task[c] == task)
            tr_keys, val_keys = sorted(labeled + unlabeled), labeled
        tests = set(self.unisemi.test) & set(tr_keys + val_keys)
        if tests:
            raise RuntimeError(f"test cases found in the training split: {sorted(tests)[:5]}")
        return tr_keys, val_keys

    # ----------------------------------------------------------------------------------------------------- data
    @property
    def unlabeled_batch_size(self) -> int:
        return self.unlabeled_batch_size_override or self.batch_size

    def next_unlabeled(self) -> torch.Tensor:
        return next(self.dataloader_unlabeled)["data"].to(self.device, non_blocking=True)

    # ---------------------------------------------------------------------------------------------------- teacher
    def initialize(self):
        if not self.was_initialized:
            super().initialize()  # EMATeacherCheckpointMixin: the teacher
            self.print_to_log_file(f"{self.__class__.__name__}: multi_task={self.multi_task}, task={self.task_id}, "
                                   f"ema_decay={self.ema_decay}, export_teacher={self.export_teacher}")

    def teacher_decay(self) -> float | None:
        """EMA decay for the update after the current step; None = do not update the teacher."""
        return self.ema_decay

    # ------------------------------------------------------------------------------------------------ supervision
    def labeled_targets(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"]
        target = (target[0] if isinstance(target, list) else target).to(self.device, non_blocking=True)
        return images, target[:, 0].long(), batch["task_ids"].to(self.device)

    def labeled_loss(self, logits: torch.Tensor, target: torch.Tensor, task_ids: torch.Tensor,
                     region: torch.Tensor | None = None) -> torch.Tensor:
        """Supervised 0.5 (Dice + CE) on ground truth inside `region` (all voxels if None), ignore label excluded.

        Single-task: all K + 1 channels, target as is (label k or background), Dice on channel k.
        Uni-: the partial-label view of each sample's own task (other tasks merged into background).
        """
        valid = target != self.label_manager.ignore_label if self.label_manager.has_ignore_label else None
        region = valid if region is None else (region & valid if valid is not None else region)
        if not self.multi_task:
            return masked_dice_ce(torch.log_softmax(logits.float(), 1), target, region, self.foreground_channels)
        own = (target == task_ids.view(-1, *([1] * (target.ndim - 1)))).long()
        return masked_dice_ce(partial_label_log_probs(logits, task_ids), own, region, [1])

    def pseudo_label_loss(self, logits: torch.Tensor, pseudo: torch.Tensor,
                          region: torch.Tensor | None = None) -> torch.Tensor:
        """0.5 (Dice + CE) against a full pseudo-label map (values 0..K) inside `region`."""
        return masked_dice_ce(torch.log_softmax(logits.float(), 1), pseudo, region, self.foreground_channels)

    def own_task_prediction(self, logits: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """(B, *spatial) bool: where the model predicts each sample's own task."""
        if self.multi_task:
            log_p = partial_label_log_probs(logits, task_ids)
            return log_p[:, 1] > log_p[:, 0]
        return logits.argmax(1) == self.task_id

    # ----------------------------------------------------------------------------------------------------- step
    def compute_losses(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(weighted supervised part, weighted unlabeled part, unlabeled weight) of one step."""
        raise NotImplementedError

    def train_step(self, batch: dict) -> dict:
        self.network.train()
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            loss_sup, loss_unsup, weight = self.compute_losses(batch)
            loss = loss_sup + loss_unsup
        self.backward_and_step(loss)
        decay = self.teacher_decay()
        if decay is not None:
            self.teacher.update(self.network, decay)
        self.ssl_step += 1
        return {"loss": loss.detach().cpu().numpy(), "loss_sup": loss_sup.detach().cpu().numpy(),
                "loss_unsup": loss_unsup.detach().cpu().numpy(), "unlabeled_weight": weight}

    # ------------------------------------------------------------------------------------------------ validation
    def validation_step(self, batch: dict) -> dict:
        """Student on the validation patches; tp/fp/fn of each sample's own task, one entry per task."""
        images, target, task_ids = self.labeled_targets(batch)
        with torch.no_grad(), (autocast(self.device.type, enabled=True) if self.device.type == "cuda"
                               else dummy_context()):
            logits = self.network(images)
            loss = self.labeled_loss(logits, target, task_ids)
        pred = self.own_task_prediction(logits, task_ids)
        ref = target == task_ids.view(-1, *([1] * (target.ndim - 1)))
        if self.label_manager.has_ignore_label:
            valid = target != self.label_manager.ignore_label
            pred, ref = pred & valid, ref & valid
        tp, fp, fn = per_task_tp_fp_fn(pred, ref, task_ids, self.unisemi.num_tasks)
        return {"loss": loss.detach().cpu().numpy(), "tp_hard": tp, "fp_hard": fp, "fn_hard": fn}

    def on_epoch_end(self):
        self.print_loss_terms()
        super().on_epoch_end()


def teacher_network(trainer: nnUNetTrainerSSLBase) -> torch.nn.Module:
    """The trainer's EMA teacher module (for analyses and tests)."""
    return trainer.teacher.network


def student_network(trainer: nnUNetTrainerSSLBase) -> torch.nn.Module:
    return unwrap(trainer.network)
