"""What every semi-supervised trainer on a unified dataset shares (UniSeMi and the comparison methods): the
loaders, per-task pseudo Dice bookkeeping and the loss-term log lines.

Three loaders, all nnU-Net's nnUNetDataLoader with its augmentation pipeline and background workers:
task-balanced labeled patches (with task ids), task-balanced validation patches, and random unlabeled patches
(with task ids only where `unlabeled_case_to_task` gives them: the "w/ Task Info" and single-task variants).
"""

from __future__ import annotations

import numpy as np
import torch
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA
from torch import distributed as dist

from nnunetv2_unisemi.data_loading import RandomPatchDataLoader, TaskBalancedDataLoader


def per_task_tp_fp_fn(pred: torch.Tensor, ref: torch.Tensor, task_ids: torch.Tensor,
                      num_tasks: int) -> list[np.ndarray]:
    """tp, fp, fn of binary masks (B, ...) summed per task id (1..K): nnU-Net's per-class pseudo Dice inputs."""
    axes = tuple(range(1, pred.ndim))
    per_task = []
    for counts in ((pred & ref).sum(axes), (pred & ~ref).sum(axes), (~pred & ref).sum(axes)):
        acc = torch.zeros(num_tasks, dtype=torch.float64, device=pred.device)
        acc.index_add_(0, task_ids - 1, counts.double())
        per_task.append(acc.cpu().numpy())
    return per_task


LOSS_TERM_KEYS = ("train_loss_sup", "train_loss_unsup", "unlabeled_weight")


class SemiSupervisedTrainerMixin:
    """Mix into an nnUNetTrainer subclass that sets `self.unisemi` (UnifiedDatasetInfo) and `self.use_unlabeled`,
    calls `register_loss_terms()` in __init__ and returns loss_sup / loss_unsup / unlabeled_weight from train_step."""

    dataloader_unlabeled = None
    # foreground oversampling of the labeled batch per task (TaskBalancedDataLoader) instead of over the whole batch
    oversample_per_task = False

    def register_loss_terms(self) -> None:
        for key in LOSS_TERM_KEYS:  # nnU-Net's logger only logs keys it already has
            self.logger.local_logger.my_fantastic_logging.setdefault(key, [])

    def on_train_epoch_end(self, train_outputs: list[dict]):
        super().on_train_epoch_end(train_outputs)
        for key, out_key in (("train_loss_sup", "loss_sup"), ("train_loss_unsup", "loss_unsup")):
            self.logger.log(key, self._mean_over_ranks([o[out_key] for o in train_outputs]), self.current_epoch)
        self.logger.log("unlabeled_weight", float(train_outputs[-1]["unlabeled_weight"]), self.current_epoch)

    @property
    def unlabeled_batch_size(self) -> int:
        return self.batch_size

    def unlabeled_case_to_task(self, unlabeled: list[str]) -> dict[str, int] | None:
        """Tasks of the unlabeled cases handed to the loader; None (the default) = the trainer never sees them."""
        return None

    def _wrap_loader(self, loader, num_processes: int, num_cached: int):
        if num_processes == 0:
            return SingleThreadedAugmenter(loader, None)
        return NonDetMultiThreadedAugmenter(loader, None, num_processes, num_cached, seeds=None,
                                            pin_memory=self.device.type == "cuda", wait_time=0.002)

    def get_dataloaders(self):
        if self.dataset_class is None:
            self.dataset_class = infer_dataset_class(self.preprocessed_dataset_folder)
        patch_size = self.configuration_manager.patch_size
        ds_scales = self._get_deep_supervision_scales()  # None without deep supervision
        rotation, dummy_2d, initial_patch_size, mirror_axes = \
            self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        tr_transforms = self.get_training_transforms(
            patch_size, rotation, ds_scales, mirror_axes, dummy_2d,
            use_mask_for_norm=self.configuration_manager.use_mask_for_norm, is_cascaded=self.is_cascaded,
            foreground_labels=self.label_manager.foreground_labels, regions=None,
            ignore_label=self.label_manager.ignore_label)
        val_transforms = self.get_validation_transforms(
            ds_scales, is_cascaded=self.is_cascaded, foreground_labels=self.label_manager.foreground_labels,
            regions=None, ignore_label=self.label_manager.ignore_label)

        tr_keys, val_keys = self.do_split()
        labeled = [k for k in tr_keys if k in set(self.unisemi.labeled)]
        unlabeled = [k for k in tr_keys if k in set(self.unisemi.unlabeled)]
        if not labeled:
            raise RuntimeError("the training split contains no labeled case")
        if self.use_unlabeled and not unlabeled:
            raise RuntimeError("the training split contains no unlabeled case (for multi-task supervised training "
                               "use nnUNetTrainerUniSeMi_NoUnlabeled)")
        folder, prev = self.preprocessed_dataset_folder, self.folder_with_segs_from_previous_stage
        labeled_tasks = {c: self.unisemi.case_to_task[c] for c in labeled + val_keys}
        dl_labeled = TaskBalancedDataLoader(
            self.dataset_class(folder, labeled, folder_with_segs_from_previous_stage=prev), self.batch_size,
            initial_patch_size, patch_size, self.label_manager, labeled_tasks,
            oversample_foreground_percent=self.oversample_foreground_percent, transforms=tr_transforms,
            per_task_oversampling=self.oversample_per_task)
        dl_val = TaskBalancedDataLoader(
            self.dataset_class(folder, val_keys, folder_with_segs_from_previous_stage=prev), self.batch_size,
            patch_size, patch_size, self.label_manager, labeled_tasks,
            oversample_foreground_percent=self.oversample_foreground_percent, transforms=val_transforms)

        n_proc = get_allowed_n_proc_DA()
        gen_labeled = self._wrap_loader(dl_labeled, n_proc, max(6, n_proc // 2))
        gen_val = self._wrap_loader(dl_val, max(1, n_proc // 2) if n_proc else 0, max(3, n_proc // 4))
        if self.use_unlabeled:
            dl_unlabeled = RandomPatchDataLoader(
                self.dataset_class(folder, unlabeled, folder_with_segs_from_previous_stage=prev),
                self.unlabeled_batch_size, initial_patch_size, patch_size, self.label_manager,
                transforms=tr_transforms, case_to_task=self.unlabeled_case_to_task(unlabeled))
            self.dataloader_unlabeled = self._wrap_loader(dl_unlabeled, n_proc, max(6, n_proc // 2))
            next(self.dataloader_unlabeled)
        next(gen_labeled)
        next(gen_val)
        return gen_labeled, gen_val

    def on_train_end(self):
        super().on_train_end()
        if isinstance(self.dataloader_unlabeled, NonDetMultiThreadedAugmenter):
            self.dataloader_unlabeled._finish()

    def _mean_over_ranks(self, values) -> float:
        values = np.asarray(values, dtype=np.float64)
        if self.is_ddp:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, values)
            values = np.concatenate([np.ravel(g) for g in gathered])
        return float(np.mean(values))

    def backward_and_step(self, loss: torch.Tensor) -> None:
        """nnU-Net's update: (scaled) backward, gradient clipping at 12, optimizer step."""
        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12)
            self.optimizer.step()

    def print_loss_terms(self) -> None:
        self.print_to_log_file("L_sup", np.round(self.logger.get_value("train_loss_sup", step=-1), 4),
                               "L_unsup", np.round(self.logger.get_value("train_loss_unsup", step=-1), 4),
                               "lambda", np.round(self.logger.get_value("unlabeled_weight", step=-1), 4))
