"""Bidirectional copy-paste, BCP (Bai et al., CVPR 2023), and its "Uni-" form (paper Table 6).

Mask M (BCP's `context_mask`): 1 everywhere except a zero cuboid whose sides are `mask_ratio` (2/3) of the
patch's, at a uniformly random position (so about (2/3)^3 = 30 % of the voxels are pasted). Mixing reuses
task_mixing.cutmix: mix = outer * M + inner * (1 - M).

1. Pre-training (the first `pretrain_iterations` steps): labeled copy-paste. Labeled patches a (first half of the
   batch) and b (second half): X = X_a M + X_b (1 - M), Y = Y_a M + Y_b (1 - M), loss 0.5 (Dice + CE).
2. Self-training: at its first step the EMA teacher is set to the pre-trained student. Per step the teacher
   pseudo-labels the unlabeled patches (argmax; largest connected component per label as BCP's
   `get_cut_mask(..., nms=1)`), and the student sees both directions:
       X_in  = X_l,a M + X_u,a (1 - M)    Y_in  = Y_l,a M + P_u,a (1 - M)     (unlabeled pasted into labeled)
       X_out = X_u,b M + X_l,b (1 - M)    Y_out = P_u,b M + Y_l,b (1 - M)     (labeled pasted into unlabeled)
   loss = sum over both directions of [ L(ground-truth region) + u_weight L(pseudo-label region) ], L =
   0.5 (Dice + CE) restricted to the region (BCP's `mix_loss`, u_weight = 0.5); teacher EMA with decay 0.99.

Differences from BCP's code (documented in docs/COMPARISONS.md): one optimiser and nnU-Net's poly learning rate over
both phases (BCP restarts SGD and keeps the best pre-trained model by validation); one mask per mixed sample (BCP:
one per batch); nnU-Net's augmentation and planned network instead of V-Net with flips and random crops.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from nnunetv2_unisemi.task_mixing import cutmix
from nnunetv2_unisemi.training.variants.nnUNetTrainerSSLBase import nnUNetTrainerSSLBase


def bcp_context_masks(n: int, shape: Sequence[int], ratio: float = 2 / 3,
                      rng: np.random.Generator | None = None) -> torch.Tensor:
    """n masks (n, *shape) bool: True everywhere except one cuboid of sides int(s * ratio) (False)."""
    rng = rng if rng is not None else np.random.default_rng()
    sides = [max(1, int(s * ratio)) for s in shape]
    masks = np.ones((n, *shape), dtype=bool)
    for i in range(n):
        starts = [rng.integers(0, s - side + 1) for s, side in zip(shape, sides)]
        masks[(i, *(slice(st, st + side) for st, side in zip(starts, sides)))] = False
    return torch.from_numpy(masks)


def copy_paste(outer_images: torch.Tensor, outer_labels: torch.Tensor, inner_images: torch.Tensor,
               inner_labels: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, C, *spatial), labels (n, *spatial), masks (n, *spatial) bool (True = outer).

    Returns outer * M + inner * (1 - M) for the images and the labels alike."""
    masks = masks.to(outer_images.device)
    return cutmix(outer_images, inner_images, masks), torch.where(masks, outer_labels, inner_labels)


def largest_component_per_label(labels: torch.Tensor, values: Sequence[int]) -> torch.Tensor:
    """Keep, per sample and per label value, only its largest 26/8-connected component (others -> 0)."""
    array = labels.detach().cpu().numpy()
    out = np.zeros_like(array)
    structure = ndimage.generate_binary_structure(array.ndim - 1, array.ndim - 1)
    for i in range(array.shape[0]):
        for v in values:
            components, n = ndimage.label(array[i] == v, structure=structure)
            if n == 0:
                continue
            sizes = np.bincount(components.ravel())[1:]
            out[i][components == int(np.argmax(sizes)) + 1] = v
    return torch.from_numpy(out).to(labels.device)


class nnUNetTrainerBCP(nnUNetTrainerSSLBase):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.ema_decay = 0.99
        self.mask_ratio = 2 / 3
        self.unlabeled_region_weight = 0.5  # BCP's u_weight
        self.pretrain_iterations = None  # None -> pretrain_fraction of the run
        self.pretrain_fraction = 2000 / 17000  # BCP's LA schedule: 2000 pre-training + 15000 self-training
        self.pseudo_label_largest_component = True
        self._mask_rng = np.random.default_rng()

    @property
    def n_pretrain(self) -> int:
        if self.pretrain_iterations is not None:
            return int(self.pretrain_iterations)
        return int(round(self.pretrain_fraction * self.num_epochs * self.num_iterations_per_epoch))

    def in_pretraining(self) -> bool:
        return self.ssl_step < self.n_pretrain

    def teacher_decay(self) -> float | None:
        return None if self.in_pretraining() else self.ema_decay

    def sample_masks(self, n: int, shape: Sequence[int]) -> torch.Tensor:
        return bcp_context_masks(n, shape, self.mask_ratio, self._mask_rng).to(self.device)

    @torch.no_grad()
    def pseudo_labels(self, unlabeled: torch.Tensor) -> torch.Tensor:
        """Teacher argmax (single task: task k where its channel wins, else background), optionally LCC."""
        predicted = self.teacher(unlabeled).argmax(1)
        if not self.multi_task:
            predicted = (predicted == self.task_id).long() * self.task_id
        if self.pseudo_label_largest_component:
            predicted = largest_component_per_label(predicted, self.foreground_channels)
        return predicted.long()

    def _halves(self, n: int) -> tuple[slice, slice]:
        if n == 1:
            return slice(0, 1), slice(0, 1)
        h = n // 2
        return slice(0, h), slice(h, 2 * h)

    def compute_losses(self, batch: dict):
        images, target, task_ids = self.labeled_targets(batch)
        a, b = self._halves(images.shape[0])
        spatial = images.shape[2:]
        if self.in_pretraining():
            masks = self.sample_masks(a.stop - a.start, spatial)
            x, y = copy_paste(images[a], target[a], images[b], target[b], masks)
            logits = self.network(x)
            if self.multi_task:  # each region supervises its own sample's task
                loss = (self.labeled_loss(logits, y, task_ids[a], masks)
                        + self.labeled_loss(logits, y, task_ids[b], ~masks))
            else:
                loss = self.labeled_loss(logits, y, task_ids[a])
            return loss, torch.zeros((), device=self.device), 0.0

        if self.ssl_step == self.n_pretrain:
            self.teacher.copy_from(self.network)
            self.print_to_log_file(f"BCP: self-training from step {self.ssl_step}, teacher = pre-trained student")
        unlabeled = self.next_unlabeled()
        pseudo = self.pseudo_labels(unlabeled)
        ua, ub = self._halves(unlabeled.shape[0])
        n_in, n_out = a.stop - a.start, b.stop - b.start
        if ua.stop - ua.start != n_in or ub.stop - ub.start != n_out:
            raise RuntimeError("BCP needs as many unlabeled as labeled patches per step")
        m_in, m_out = self.sample_masks(n_in, spatial), self.sample_masks(n_out, spatial)
        x_in, y_in = copy_paste(images[a], target[a], unlabeled[ua], pseudo[ua], m_in)
        x_out, y_out = copy_paste(unlabeled[ub], pseudo[ub], images[b], target[b], m_out)
        logits = self.network(torch.cat((x_in, x_out)))
        logits_in, logits_out = logits[:n_in], logits[n_in:]
        loss_sup = (self.labeled_loss(logits_in, y_in, task_ids[a], m_in)
                    + self.labeled_loss(logits_out, y_out, task_ids[b], ~m_out))
        loss_unsup = self.pseudo_label_loss(logits_in, y_in, ~m_in) + self.pseudo_label_loss(logits_out, y_out, m_out)
        return loss_sup, self.unlabeled_region_weight * loss_unsup, self.unlabeled_region_weight


class nnUNetTrainerUniBCP(nnUNetTrainerBCP):
    """All tasks in one K + 1 channel network: ground-truth regions use the partial-label loss of their sample's
    task, pseudo-label regions all K + 1 channels (teacher argmax over every task)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.multi_task = True
