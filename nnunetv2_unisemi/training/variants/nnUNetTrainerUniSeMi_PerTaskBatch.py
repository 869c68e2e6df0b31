"""UniSeMi with as many labeled patches per task in each step as a per-task model gets.

The paper's setting (and the default) splits one batch between the tasks, so each of K tasks gets 1/K of the labeled
patches a per-task model of the same batch size sees in the same number of iterations. Here the labeled batch holds
`batch size` patches of every task (K x batch size in all), while the synthetic and CutMixed unlabeled parts keep the
default size (batch size // 2 each): a step costs about (K x b + b) / (b + b) of the default, 2x at K = 3, about the
compute of the K per-task models together.

Measured on the CPU benchmark (10% labels, 600 iterations; docs/BENCHMARKS.md, "A labeled batch per task"): with
orthogonal prompt kernels every task was learned in every seed, average Dice 62.6 +- 7.3 (3 seeds) against
48.1 +- 1.6 for the default, but still below the per-task models (74.4 +- 1.3); the left atrium gained little
(55.3 against 48.0; 67.7 per task). Not the default: it doubles the step cost.

The reason the left atrium gained little: nnU-Net's loss is a mean over the batch, so with 2 of its 7 samples each task
took 2/7 of a per-task model's SGD step. With the tasks' mean losses summed instead (_TaskSum, sum_task_losses):
69.5 +- 3.4 (3 seeds), left atrium 63.4 +- 1.2, the hippocampus prompts apart in 2 of 3 seeds (partly in the third)
(docs/BENCHMARKS.md, "Summing the tasks' losses"); still below the per-task models.
"""

from __future__ import annotations

import torch

from nnunetv2_unisemi.consistency import UnlabeledConsistencyLoss, aggregated_task_prediction
from nnunetv2_unisemi.task_mixing import cutmix
from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi
from nnunetv2_unisemi.training.variants.ema_teacher import EMATeacherCheckpointMixin, warmup_decay
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_OrthogonalPrompts import (
    nnUNetTrainerUniSeMi_OrthogonalPrompts,
)


def per_task_batch(trainer: nnUNetTrainerUniSeMi) -> None:
    """The configuration's batch size per task for the labeled part; the other parts keep their default size."""
    configured = trainer.configuration_manager.batch_size
    trainer.labeled_patches_per_task = configured
    trainer.synthetic_per_batch = trainer.unlabeled_mixes_per_batch = max(1, configured // 2)


class nnUNetTrainerUniSeMi_PerTaskBatch(nnUNetTrainerUniSeMi):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        per_task_batch(self)


class nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch(nnUNetTrainerUniSeMi_OrthogonalPrompts):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        per_task_batch(self)


class nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum(nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch):
    """Each task's supervised loss is the mean over its own patches, summed over the tasks (and the synthetic task):
    with the per-task batch, every task then gets a per-task model's patches *and* step size under SGD (the mean over
    the whole batch gives each task 2/7 of it at K = 3)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.sum_task_losses = True


class nnUNetTrainerUniSeMi_ExclusiveOrthogonalPrompts_PerTaskBatch_TaskSum(
        nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum):
    """... plus cross-task exclusion (task_exclusion.py): each labeled case's own target is background under the other
    task prompts. A prompt's own cases say nothing about the other task's structure, so without it a prompt is never
    told to leave out the structure of a task it does not see (the anterior prompt segmented the whole hippocampus).
    Measured (seed 0): 70.6 average Dice against 72.1 without it; the prompts already separate without it."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.exclusion_loss_weight = 1.0


class nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled(
        nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum):
    """The ablation of the variant above: labeled tasks and the synthetic task only (what the unlabeled term adds)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.use_unlabeled = False


class nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled_NoSynthetic(
        nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled):
    """... without the synthetic task either: the task prompts alone, one multi-task supervised model. Set beside
    _NoUnlabeled it measures what the synthetic task (CutMixes of two tasks' patches under prompt K + 1) costs the task
    prompts or gives them: the candidate cause of the shared models' hippocampus deficit against the per-task models
    (docs/BENCHMARKS.md, "Seed 1 of the model without unlabeled data")."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.synthetic_per_batch = 0


class nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_ConfidentUnlabeled(
        nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum):
    """... with only the voxels where P_agg is confident (>= 0.95 or <= 0.05) in the unlabeled Dice. P_agg, the max
    over the task prompts, collects every prompt's false positives; at 1800 iterations the unlabeled term cost about
    2 Dice points and made the left atrium's masks too large (78.2 against 80.2 without unlabeled data, seed 0).
    Measured (1800 iterations, seed 0): 79.2; the left atrium's loss is gone (77.0 against 72.7), but the average is
    not above the model without unlabeled data (docs/BENCHMARKS.md, "Confident voxels of P_agg")."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.consistency_loss = UnlabeledConsistencyLoss(confidence_threshold=0.95)


class nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled(
        EMATeacherCheckpointMixin, nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum):
    """... with P_agg from an EMA (mean) teacher of the network on the same CutMixed input, instead of the student's
    own pass: the second candidate against the confirmation loop of docs/BENCHMARKS.md, "Where the left atrium's
    errors lie" (the synthetic prompt learns every task prompt's false positives from P_agg, and through the shared
    features the task prompts learn them back). The teacher (decay 0.99 after UA-MT's warm-up) changes slowly, so a
    false positive the student has just learned does not enter the target at once. One extra forward pass of the
    unlabeled mixes per step; the teacher is kept in the checkpoints, the student is what nnU-Net's predictor loads.
    Measured (1800 iterations, CPU): 80.2 +- 0.8 average Dice over 3 seeds (81.0, 79.5, 80.0), against 80.0 +- 0.3
    without unlabeled data (2 seeds) and 80.7 +- 0.3 for the per-task models (3 seeds): no gain shown
    (docs/BENCHMARKS.md, "P_agg from an EMA teacher", "Seed 1 of the model without unlabeled data")."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.ema_decay = 0.99  # the teacher and ssl_step come from EMATeacherCheckpointMixin

    def unlabeled_target(self, prompted_logits: list[torch.Tensor], mix_parts) -> torch.Tensor:
        first, second, masks, _ = mix_parts
        task_prompts = torch.arange(1, self.unisemi.num_tasks + 1, device=self.device).expand(first.shape[0], -1)
        with torch.no_grad():
            teacher_logits = self.teacher.network(cutmix(first, second, masks), task_prompts)
        return aggregated_task_prediction(self.full_resolution(teacher_logits))

    def train_step(self, batch: dict) -> dict:
        result = super().train_step(batch)
        self.teacher.update(self.network, warmup_decay(self.ssl_step, self.ema_decay))
        self.ssl_step += 1
        return result


class nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic(
        nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled):
    """... with the synthetic task weighted per sample like a task's labeled patches (synthetic_loss_weight =
    synthetic samples / labeled patches per task, 1/2 at batch size 2) instead of as a whole task. Under the summed
    loss one CutMixed sample took a task's full step; at 1800 iterations its gradient was the largest of the step
    (norm 1.17 against 0.34-0.64 for the tasks, docs/BENCHMARKS.md, "Where the left atrium's errors lie"), and the
    shared model without the synthetic task scored above the one with it (seed 0: 81.7 against 80.2, the left atrium
    81.0 against 76.6; "Without the synthetic task"). The paper's batch-mean loss weighs a synthetic sample as one
    labeled sample; this keeps that ratio under the summed loss, and keeps the synthetic prompt the unlabeled term
    needs."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.synthetic_loss_weight = self.n_synthetic / self.labeled_patches_per_task


class nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic_Wide(
        nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic):
    """... with a backbone sqrt(K) times as wide (features per stage), about as many parameters as the K per-task
    models it is compared with together (one network of the planned width against K of them). Every shared model
    measured scores about a point below the per-task models on the posterior hippocampus while the left atrium gains
    (docs/BENCHMARKS.md, "Three batches, ten seeds each"); this asks whether that is the capacity one network shares.
    On the benchmark's 3d_cpu plans: 4.2 M parameters against 1.4 M, a forward and backward pass 1.6x as long on the
    CPU; not trained yet, a GPU experiment (docs/BENCHMARKS.md, "A second CPU seed, and a wide shared backbone")."""

    match_per_task_parameters = True


class nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_ScaledLambda(
        nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum):
    """... with lambda = K + 1. L_sup summed over the K + 1 prompts in the batch is about K + 1 times the batch mean the
    paper's L = L_sup + lambda * L_unsup was written with, so at lambda = 1 the unlabeled term's share of the loss (and
    of each step, relative to each task's) fell by about K + 1; this restores it. (Under the paper's Adam only that
    share matters; under nnU-Net's SGD the unlabeled term's own step is then K + 1 times the mean-loss trainer's.)
    Measured (seed 0): 60.9 average Dice against 72.1 at lambda = 1; the hippocampus tasks left the all-background
    plateau later and kept distant false positives (docs/BENCHMARKS.md, "The unlabeled term under the summed loss")."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.unlabeled_loss_weight = float(self.unisemi.num_prompts)


class nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TwoWay(
        nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum):
    """... with gradient through P_agg (Eq. 9 as written, no stop-gradient): on the CutMixed unlabeled cases the task
    prompts are pulled towards the synthetic prompt's prediction as well as the other way round, so the unlabeled
    cases train the task prompts themselves, not only the shared backbone. Measured (3 seeds): 70.5 +- 2.7 average
    Dice, against 69.5 +- 3.4 one-way and 71.6 +- 3.4 without unlabeled data; the prompts stayed apart."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.detach_unlabeled_target = False


class nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TaskOversampling(
        nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum):
    """... with nnU-Net's foreground oversampling applied to each task's patches (TaskBalancedDataLoader): at batch
    size 2 a per-task nnU-Net forces foreground in 1 of its 2 patches (50%); nnU-Net's rule over the 6 labeled patches
    forces 2 of 6 (33%), and one task goes without in every batch. Measured (seed 0): 72.6 average Dice against 72.1."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.oversample_per_task = True
