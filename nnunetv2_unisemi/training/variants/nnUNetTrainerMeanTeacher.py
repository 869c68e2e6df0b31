"""UA-MT style mean teacher (Yu et al., MICCAI 2019) and its "Uni-" form.

One step: one student pass over [labeled patches | unlabeled patches];
- L_sup: 0.5 (Dice + CE) on the labeled patches (single task, or partial-label loss in the Uni- form);
- L_cons: softmax MSE (single task: on the binary view (1 - p_k, p_k)) between the student on the unlabeled
  patches and the EMA teacher on the same patches plus Gaussian noise (UA-MT: clamp(N(0, 0.1^2), -0.2, 0.2)),
  averaged over `teacher_passes` noisy teacher passes;
- uncertainty weighting (`use_uncertainty`): UA-MT's entropy threshold mask, without MC dropout (nnU-Net's
  networks have no dropout): voxels whose teacher entropy, computed from the mean of the noisy passes, exceeds
  (0.75 + 0.25 ramp(t)) ln(C) are excluded (C = 2 for the single-task form, K + 1 for the Uni- form);
- L = L_sup + w(t) L_cons, w(t) = consistency_weight * sigmoid_rampup(t, rampup) (UA-MT: 0.1, ramp-up over the
  whole run); teacher: theta_t <- a theta_t + (1 - a) theta_s with a = min(1 - 1/(t + 1), ema_decay) (UA-MT).
"""

from __future__ import annotations

import math

import torch

from nnunetv2_unisemi.training.variants.ema_teacher import warmup_decay
from nnunetv2_unisemi.training.variants.nnUNetTrainerSSLBase import nnUNetTrainerSSLBase
from nnunetv2_unisemi.training.variants.ssl_losses import prediction_entropy, sigmoid_rampup, softmax_mse


def binary_view(probs: torch.Tensor, task: int) -> torch.Tensor:
    """(B, C, ...) probabilities -> (B, 2, ...): (1 - p_task, p_task)."""
    own = probs[:, task: task + 1]
    return torch.cat((1 - own, own), dim=1)


class nnUNetTrainerMeanTeacher(nnUNetTrainerSSLBase):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.ema_decay = 0.99
        self.consistency_weight = 0.1
        self.consistency_rampup_fraction = 1.0  # of the whole run (UA-MT: 40 x 150 iterations of 6000)
        self.teacher_noise_std = 0.1
        self.teacher_noise_clip = 0.2
        self.teacher_passes = 2  # UA-MT uses 8 (with dropout); 2 keeps a CPU step affordable
        self.use_uncertainty = True

    @property
    def total_iterations(self) -> int:
        return self.num_epochs * self.num_iterations_per_epoch

    def teacher_decay(self) -> float:
        return warmup_decay(self.ssl_step, self.ema_decay)

    def current_consistency_weight(self) -> float:
        return self.consistency_weight * sigmoid_rampup(self.ssl_step,
                                                        self.consistency_rampup_fraction * self.total_iterations)

    @torch.no_grad()
    def teacher_probabilities(self, unlabeled: torch.Tensor) -> torch.Tensor:
        probs = 0
        for _ in range(self.teacher_passes):
            noise = torch.clamp(torch.randn_like(unlabeled) * self.teacher_noise_std,
                                -self.teacher_noise_clip, self.teacher_noise_clip)
            probs = probs + torch.softmax(self.teacher(unlabeled + noise).float(), dim=1)
        return probs / self.teacher_passes

    def certainty_mask(self, teacher_probs: torch.Tensor) -> torch.Tensor | None:
        if not self.use_uncertainty:
            return None
        n_classes = self.unisemi.num_tasks + 1 if self.multi_task else 2
        ramp = sigmoid_rampup(self.ssl_step, self.total_iterations)
        threshold = (0.75 + 0.25 * ramp) * math.log(n_classes)
        return prediction_entropy(teacher_probs) < threshold

    def compute_losses(self, batch: dict):
        images, target, task_ids = self.labeled_targets(batch)
        unlabeled = self.next_unlabeled()
        logits = self.network(torch.cat((images, unlabeled)))
        logits_l, logits_u = logits[: images.shape[0]], logits[images.shape[0]:]
        loss_sup = self.labeled_loss(logits_l, target, task_ids)
        student_probs = torch.softmax(logits_u.float(), dim=1)
        teacher_probs = self.teacher_probabilities(unlabeled)
        if not self.multi_task:  # a binary problem: (not task k, task k), as UA-MT's two output channels
            student_probs, teacher_probs = binary_view(student_probs, self.task_id), binary_view(teacher_probs,
                                                                                                  self.task_id)
        loss_cons = softmax_mse(student_probs, teacher_probs, self.certainty_mask(teacher_probs))
        weight = self.current_consistency_weight()
        return loss_sup, weight * loss_cons, weight


class nnUNetTrainerUniMeanTeacher(nnUNetTrainerMeanTeacher):
    """All tasks in one K + 1 channel network (partial-label supervision, consistency over all channels)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.multi_task = True
