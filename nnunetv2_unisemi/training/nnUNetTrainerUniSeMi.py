"""nnUNetTrainerUniSeMi: nnU-Net's training loop with UniSeMi's step (paper section 3).

One step = one backbone pass over [labeled samples | synthetic-task samples | CutMixed unlabeled samples]:
- labeled samples under their own task prompt (and, for cross-task exclusion, their own target as background under
  the other task prompts), synthetic samples (CutMix of two labeled samples of different tasks,
  target = union of both targets under the mask) under the synthetic prompt K+1: Dice + CE (Eq. 3-5);
- CutMixed unlabeled samples under all K+1 prompts: Dice(P_synthetic, max_k P_k), P_agg detached by default (Eq. 6-9).
L = L_sup + lambda * L_unsup.
"""

from __future__ import annotations

import math
import multiprocessing
import warnings
from os.path import join
from time import sleep

import numpy as np
import torch
from batchgenerators.utilities.file_and_folder_operations import maybe_mkdir_p
from nnunetv2.configuration import default_num_processes
from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
from nnunetv2.inference.export_prediction import export_prediction_from_logits
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.inference.sliding_window_prediction import compute_gaussian
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.file_path_utilities import check_workers_alive_and_busy
from nnunetv2.utilities.helpers import dummy_context
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import autocast, nn
from torch import distributed as dist

from nnunetv2_unisemi.consistency import UnlabeledConsistencyLoss, aggregated_task_prediction
from nnunetv2_unisemi.network.unisemi_network import build_unisemi_network
from nnunetv2_unisemi.prompt_orthogonality import kernel_alignment
from nnunetv2_unisemi.task_exclusion import exclusion_loss, own_then_other_prompts
from nnunetv2_unisemi.task_mixing import cutmix, pair_different_tasks, sample_cutmix_masks, synthesize_task_batch
from nnunetv2_unisemi.training.semi_supervised import SemiSupervisedTrainerMixin, per_task_tp_fp_fn
from nnunetv2_unisemi.training.variants.ema_teacher import unwrap
from nnunetv2_unisemi.training.variants.ssl_losses import sigmoid_rampup
from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo


def concat_samples(first, second):
    """Concatenate two network outputs along the batch: tensors, or lists over deep-supervision scales."""
    if isinstance(first, torch.Tensor):
        return torch.cat((first, second))
    return [torch.cat(pair) for pair in zip(first, second)]


def select_samples(output, index: torch.Tensor):
    """The given samples of a network output or target: a tensor, or a list over deep-supervision scales."""
    if isinstance(output, torch.Tensor):
        return output[index]
    return [o[index] for o in output]


class nnUNetTrainerUniSeMi(SemiSupervisedTrainerMixin, nnUNetTrainer):
    # the dynamic head, read when the network is built (also by the predictor, from the class): Eq. 2's one dynamic
    # convolution by default; nnUNetTrainerUniSeMi_MLPHead / _LeakyHead set DoDNet's three layers
    head_hidden_layers = 0
    head_negative_slope = 0.0
    # Eq. 1's controller input [GAP(bottleneck), prompt], DoDNet's shared 1x1x1 reduction to 8 channels and a shared
    # He-initialised controller bias; nnUNetTrainerUniSeMi_SeparatePrompts removes these paths shared by all prompts
    head_context = True
    head_channels = 8
    head_separate_prompts = False
    # the backbone's planned width by default; True: sqrt(K) times the features per stage, about as many parameters as
    # the K per-task models together (nnUNetTrainerUniSeMi_..._Wide)
    match_per_task_parameters = False

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.unisemi = UnifiedDatasetInfo.from_dataset_json(dataset_json)
        # --- UniSeMi hyperparameters (variants override these) ---
        self.mask_strategy = "zero_centered"  # CutMix mask for both the synthetic task and the unlabeled mix
        self.mask_fraction_range = (0.3, 0.7)
        self.use_unlabeled = True
        # cross-task exclusion (task_exclusion.py): a labeled case's own target is background under the other task
        # prompts; 0 = the paper's supervised term alone (the default until it is shown to help, docs/BENCHMARKS.md)
        self.exclusion_loss_weight = 0.0
        # squared cosine between the task prompts' kernels (prompt_orthogonality.py; needs a context-free
        # one-convolution head): keeps the prompts from sharing one feature; on in _OrthogonalPrompts
        self.kernel_alignment_weight = 0.0
        self.unlabeled_loss_weight = 1.0  # lambda
        # True: P_agg is a target and the unlabeled term trains the synthetic prompt only. False (the paper writes no
        # stop-gradient): it also pulls the task prompts towards the synthetic prompt's prediction (consistency.py)
        self.detach_unlabeled_target = True
        # sigmoid ramp-up of lambda over this fraction of the epochs (0 = constant lambda). An untrained network's
        # pseudo labels say "no foreground" for every task it has not learned yet; at full weight from the start
        # they held the small hippocampus tasks at all-background in the CPU benchmark (docs/BENCHMARKS.md).
        self.unlabeled_rampup_fraction = 0.4
        # labeled patches per task in each batch. None: the configuration's batch size for all tasks together (the
        # paper's setting; each task gets 1/K of it). n: a batch of K x n labeled patches, as many per task as a
        # per-task model with batch size n sees (nnUNetTrainerUniSeMi_PerTaskBatch)
        self.labeled_patches_per_task = None
        # False: L_sup is one mean over the batch's labeled and synthetic samples, so with K tasks in a batch each
        # task's gradient is ~1/K of a per-task model's. True: each prompt's mean, summed over the prompts in the batch
        # (Eq. 5 per task): under nnU-Net's SGD every task then takes a per-task model's step size
        # (nnUNetTrainerUniSeMi_..._TaskSum; docs/BENCHMARKS.md, "Summing the tasks' losses")
        self.sum_task_losses = False
        # synthetic-task samples per step. None -> max(1, batch_size // 2); 0 = none, only without unlabeled data (the
        # unlabeled term trains the synthetic prompt, which then has no supervision): the task prompts alone
        self.synthetic_per_batch = None
        # with sum_task_losses: the synthetic prompt's mean loss enters the sum x this weight (1 = as much as a task)
        self.synthetic_loss_weight = 1.0
        self.unlabeled_mixes_per_batch = None  # None -> max(1, batch_size // 2); loads 2x that many patches
        self.consistency_loss = UnlabeledConsistencyLoss()
        self._mix_rng = np.random.default_rng()
        self.register_loss_terms()

    # ------------------------------------------------------------------------------------------------- network
    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        # nnU-Net passes num_segmentation_heads = background + K tasks (ignore excluded) = K + 1 = number of prompts
        width = math.sqrt(num_output_channels - 1) if cls.match_per_task_parameters else 1.0
        return build_unisemi_network(plans_manager, configuration_manager, num_input_channels, num_output_channels,
                                     enable_deep_supervision, head_negative_slope=cls.head_negative_slope,
                                     head_hidden_layers=cls.head_hidden_layers, head_context=cls.head_context,
                                     head_channels=cls.head_channels, head_separate_prompts=cls.head_separate_prompts,
                                     backbone_width=width)

    def _build_loss(self):
        # per-sample Dice (batch_dice=False): the samples of a batch belong to different tasks
        loss = DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": self.is_ddp}, {},
                              weight_ce=1, weight_dice=1, ignore_label=None, dice_class=MemoryEfficientSoftDiceLoss)
        if self.enable_deep_supervision:
            weights = np.array([1 / (2 ** i) for i in range(len(self._get_deep_supervision_scales()))])
            weights[-1] = 1e-6 if self.is_ddp else 0
            loss = DeepSupervisionWrapper(loss, weights / weights.sum())
        return loss

    # ---------------------------------------------------------------------------------------------------- data
    def do_split(self):
        """Train on labeled + unlabeled cases; validate on the labeled ones (see UnifiedDatasetInfo)."""
        tr_keys, val_keys = super().do_split()
        tests = set(self.unisemi.test) & set(tr_keys + val_keys)
        if tests:
            raise RuntimeError(f"test cases found in the training split: {sorted(tests)[:5]}. Regenerate "
                               "splits_final.json from the dataset's unisemi block.")
        return tr_keys, val_keys

    def _set_batch_size_and_oversample(self):
        super()._set_batch_size_and_oversample()
        if self.labeled_patches_per_task:
            if self.is_ddp:
                raise NotImplementedError("labeled_patches_per_task is not split across DDP workers; train on one "
                                          "device or leave it at None")
            # TaskBalancedDataLoader fills the batch with permutations of the tasks: exactly n per task
            self.batch_size = self.labeled_patches_per_task * self.unisemi.num_tasks

    @property
    def n_synthetic(self) -> int:
        return max(1, self.batch_size // 2) if self.synthetic_per_batch is None else self.synthetic_per_batch

    def on_train_start(self):
        if self.use_unlabeled and self.synthetic_per_batch == 0:
            raise ValueError(f"{type(self).__name__}: synthetic_per_batch = 0 with unlabeled data. The unlabeled term "
                             "pulls the synthetic prompt's prediction towards P_agg, and without synthetic samples "
                             "nothing supervises that prompt; set use_unlabeled = False or synthetic_per_batch >= 1")
        if self.synthetic_loss_weight != 1.0 and not self.sum_task_losses:
            raise ValueError(f"{type(self).__name__}: synthetic_loss_weight = {self.synthetic_loss_weight} needs "
                             "sum_task_losses = True (the batch-mean loss has no per-prompt terms to weight)")
        super().on_train_start()

    @property
    def n_unlabeled_mixes(self) -> int:
        return self.unlabeled_mixes_per_batch or max(1, self.batch_size // 2)

    @property
    def unlabeled_batch_size(self) -> int:
        return 2 * self.n_unlabeled_mixes  # pairs (0, 1), (2, 3), ... are CutMixed in the step

    # ---------------------------------------------------------------------------------------------------- step
    def binary_targets(self, target, task_ids: torch.Tensor) -> list[torch.Tensor]:
        """Each sample's own-task foreground (1) vs everything else (0), per deep-supervision scale."""
        targets = target if isinstance(target, list) else [target]
        view = (-1,) + (1,) * (targets[0].ndim - 1)
        return [(t == task_ids.view(view).to(t.device)).to(torch.int16) for t in targets]

    def current_unlabeled_weight(self) -> float:
        rampup = sigmoid_rampup(self.current_epoch, self.unlabeled_rampup_fraction * self.num_epochs)
        return self.unlabeled_loss_weight * rampup

    def labeled_inputs(self, batch: dict):
        """Labeled samples + synthetic-task samples, their prompts and binary targets per scale."""
        images = batch["data"].to(self.device, non_blocking=True)
        task_ids = batch["task_ids"].to(self.device)
        targets = [t.to(self.device, non_blocking=True) for t in self.binary_targets(batch["target"], task_ids)]
        pairs = pair_different_tasks(task_ids.tolist(), self.n_synthetic, self._mix_rng)
        if pairs:
            masks = sample_cutmix_masks(len(pairs), images.shape[2:], self.mask_strategy, self._mix_rng,
                                        *self.mask_fraction_range)
            syn_images, syn_targets = synthesize_task_batch(images, targets, pairs, masks)
            images = torch.cat((images, syn_images))
            targets = [torch.cat((t, s.to(t.dtype))) for t, s in zip(targets, syn_targets)]
            task_ids = torch.cat((task_ids, task_ids.new_full((len(pairs),), self.unisemi.synthetic_prompt)))
        return images, task_ids, targets

    def unlabeled_inputs(self, batch: dict):
        """CutMix of unlabeled pairs (Eq. 6). Never looks at the cases' tasks."""
        images = batch["data"].to(self.device, non_blocking=True)
        masks = sample_cutmix_masks(images.shape[0] // 2, images.shape[2:], self.mask_strategy, self._mix_rng,
                                    *self.mask_fraction_range).to(self.device)
        first, second = images[0::2], images[1::2]
        return cutmix(first, second, masks), (first, second, masks, batch)

    def unlabeled_target(self, prompted_logits: list[torch.Tensor], mix_parts) -> torch.Tensor:
        """P_agg (Eq. 7): element-wise max of the task prompts' foreground probabilities on the mixed input."""
        return aggregated_task_prediction(prompted_logits[: self.unisemi.num_tasks],
                                          detach=self.detach_unlabeled_target)

    def task_kernel_alignment(self) -> torch.Tensor:
        head = unwrap(self.network).head
        return kernel_alignment(head.prompt_kernel_directions([t.id for t in self.unisemi.tasks]))

    def full_resolution(self, outputs: list) -> list[torch.Tensor]:
        """The highest-resolution logits of each prompt's output (outputs are lists over scales under deep
        supervision)."""
        return [o[0] if self.enable_deep_supervision else o for o in outputs]

    def task_losses(self, output, targets, prompts: torch.Tensor) -> dict[int, torch.Tensor]:
        """Eq. 5 per prompt: each prompt's mean loss over its own samples of the batch."""
        return {int(p): self.loss(select_samples(output, prompts == p), select_samples(targets, prompts == p))
                for p in prompts.unique()}

    def supervised_loss(self, output, targets, prompts: torch.Tensor) -> torch.Tensor:
        """Eq. 5 (Dice + CE, deep supervision) on the labeled and synthetic samples, decoded under `prompts`."""
        if not self.sum_task_losses:
            return self.loss(output, targets)
        synthetic = self.unisemi.synthetic_prompt
        return torch.stack([loss * self.synthetic_loss_weight if prompt == synthetic else loss
                            for prompt, loss in self.task_losses(output, targets, prompts).items()]).sum()

    def train_step(self, batch: dict) -> dict:
        images, prompts, targets = self.labeled_inputs(batch)
        n_labeled = batch["data"].shape[0]
        # labeled samples under their own prompt, and under the other tasks' prompts for the exclusion term
        exclusion = self.exclusion_loss_weight > 0 and self.unisemi.num_tasks > 1
        labeled_prompts = prompts[:n_labeled]
        groups = [own_then_other_prompts(labeled_prompts, self.unisemi.num_tasks) if exclusion else labeled_prompts]
        n_synthetic = prompts.shape[0] - n_labeled
        if n_synthetic:
            groups.append(prompts[n_labeled:])
        if self.use_unlabeled:
            mixed, mix_parts = self.unlabeled_inputs(next(self.dataloader_unlabeled))
            images = torch.cat((images, mixed))
            all_prompts = torch.arange(1, self.unisemi.num_prompts + 1, device=self.device)
            groups.append(all_prompts.expand(mixed.shape[0], -1))

        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            outputs = self.network(images, groups)  # one backbone pass for everything
            own, others = (outputs[0][0], outputs[0][1:]) if exclusion else (outputs[0], [])
            out_labeled = concat_samples(own, outputs[1]) if n_synthetic else own
            loss_sup = self.supervised_loss(out_labeled, targets if self.enable_deep_supervision else targets[0],
                                            prompts)
            if exclusion:
                # summed task losses: each other prompt's exclusion is a mean over the samples it excludes (a
                # fraction (K - 1) / K of the batch, under K - 1 prompts each), summed over the K prompts: x K
                # (exact when every task has as many samples in the batch, as with labeled_patches_per_task)
                scale = self.unisemi.num_tasks if self.sum_task_losses else 1
                loss_sup = loss_sup + scale * self.exclusion_loss_weight * exclusion_loss(
                    self.full_resolution(others), targets[0][:n_labeled])
            if self.kernel_alignment_weight > 0:
                loss_sup = loss_sup + self.kernel_alignment_weight * self.task_kernel_alignment()
            loss_unsup = torch.zeros((), device=self.device)
            weight = self.current_unlabeled_weight()
            if self.use_unlabeled:
                full_res = self.full_resolution(outputs[-1])
                p_agg = self.unlabeled_target(full_res, mix_parts)
                loss_unsup = self.consistency_loss(full_res[self.unisemi.synthetic_prompt - 1], p_agg)
            loss = loss_sup + weight * loss_unsup

        self.backward_and_step(loss)
        return {"loss": loss.detach().cpu().numpy(), "loss_sup": loss_sup.detach().cpu().numpy(),
                "loss_unsup": loss_unsup.detach().cpu().numpy(), "unlabeled_weight": weight}

    # ---------------------------------------------------------------------------------------------- validation
    def validation_step(self, batch: dict) -> dict:
        """Each validation patch under its own task prompt; tp/fp/fn collected per task (K entries)."""
        images = batch["data"].to(self.device, non_blocking=True)
        task_ids = batch["task_ids"].to(self.device)
        targets = [t.to(self.device) for t in self.binary_targets(batch["target"], task_ids)]
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            output = self.network(images, task_ids)
            loss = self.loss(output, targets if self.enable_deep_supervision else targets[0])
        output = output[0] if self.enable_deep_supervision else output
        pred = output.argmax(1) == 1
        ref = targets[0][:, 0] == 1
        tp, fp, fn = per_task_tp_fp_fn(pred, ref, task_ids, self.unisemi.num_tasks)
        return {"loss": loss.detach().cpu().numpy(), "tp_hard": tp, "fp_hard": fp, "fn_hard": fn}

    def on_epoch_end(self):
        # nnU-Net prints 'Pseudo dice' per entry of dice_per_class_or_region, which here is per task
        self.print_loss_terms()
        names = [t.name for t in self.unisemi.tasks]
        dice = self.logger.get_value("dice_per_class_or_region", step=-1)
        self.print_to_log_file("Pseudo dice per task", {n: round(float(d), 4) for n, d in zip(names, dice)})
        if self.local_rank == 0:
            self.plot_unisemi_progress()
        super().on_epoch_end()

    def plot_unisemi_progress(self) -> None:
        """progress_unisemi.png beside nnU-Net's progress.png: L_sup, L_unsup and per-task pseudo Dice."""
        import matplotlib

        matplotlib.use("agg")
        import matplotlib.pyplot as plt

        log = self.logger.local_logger.my_fantastic_logging
        n = len(log["train_loss_unsup"])
        fig, (ax_loss, ax_dice) = plt.subplots(2, 1, figsize=(10, 9))
        x = list(range(n))
        ax_loss.plot(x, log["train_loss_sup"][:n], label="L_sup")
        ax_loss.plot(x, log["train_loss_unsup"][:n], label="L_unsup")
        ax_loss.set_xlabel("epoch")
        ax_loss.legend()
        dice = np.array(log["dice_per_class_or_region"][:n], dtype=float).reshape(n, -1)
        for k, task in enumerate(self.unisemi.tasks):
            if k < dice.shape[1]:
                ax_dice.plot(x, dice[:, k], label=f"{task.name} pseudo Dice")
        ax_dice.set_xlabel("epoch")
        ax_dice.set_ylim(0, 1)
        ax_dice.legend()
        fig.tight_layout()
        fig.savefig(join(self.output_folder, "progress_unisemi.png"))
        plt.close(fig)

    def perform_actual_validation(self, save_probabilities: bool = False):
        """Sliding-window prediction of every validation case under its own task prompt, then nnU-Net's metrics
        (per label = per task, since a case's reference holds only its task's value)."""
        self.set_deep_supervision_enabled(False)
        self.network.eval()
        network = unwrap(self.network)
        predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                    perform_everything_on_device=True, device=self.device, verbose=False,
                                    verbose_preprocessing=False, allow_tqdm=False)
        predictor.manual_initialization(network, self.plans_manager, self.configuration_manager, None,
                                        self.dataset_json, self.__class__.__name__,
                                        self.inference_allowed_mirroring_axes)
        validation_output_folder = join(self.output_folder, "validation")
        maybe_mkdir_p(validation_output_folder)
        _, val_keys = self.do_split()
        if self.is_ddp:
            val_keys = val_keys[self.local_rank:: dist.get_world_size()]
        dataset_val = self.dataset_class(self.preprocessed_dataset_folder, val_keys,
                                         folder_with_segs_from_previous_stage=self.folder_with_segs_from_previous_stage)
        with multiprocessing.get_context("spawn").Pool(default_num_processes) as export_pool:
            workers = list(export_pool._pool)
            results = []
            for k in dataset_val.identifiers:
                while check_workers_alive_and_busy(export_pool, workers, results, allowed_num_queued=2):
                    sleep(0.1)
                task = self.unisemi.case_to_task[k]
                self.print_to_log_file(f"predicting {k} with prompt {task} ({self.unisemi.tasks[task - 1].name})")
                data, _, _, properties = dataset_val.load_case(k)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    data = torch.from_numpy(data[:])
                network.inference_prompts = [task]
                prediction = predictor.predict_sliding_window_return_logits(data).cpu()
                results.append(export_pool.starmap_async(export_prediction_from_logits, (
                    (prediction, properties, self.configuration_manager, self.plans_manager, self.dataset_json,
                     join(validation_output_folder, k), save_probabilities),)))
            _ = [r.get() for r in results]
        network.inference_prompts = [t.id for t in self.unisemi.tasks]
        if self.is_ddp:
            dist.barrier()
        if self.local_rank == 0:
            metrics = compute_metrics_on_folder(
                join(self.preprocessed_dataset_folder_base, "gt_segmentations"), validation_output_folder,
                join(validation_output_folder, "summary.json"), self.plans_manager.image_reader_writer_class(),
                self.dataset_json["file_ending"], self.label_manager.foreground_labels,
                self.label_manager.ignore_label, chill=True, num_processes=default_num_processes)
            for label, values in metrics["mean"].items():
                name = self.unisemi.tasks[int(label) - 1].name if str(label).isdigit() else label
                self.logger.log_summary(f"final_val/{name}_dice", values["Dice"])
                self.print_to_log_file(f"Validation Dice {name}: {values['Dice']:.4f}")
            self.print_to_log_file("Mean Validation Dice: ", metrics["foreground_mean"]["Dice"],
                                   also_print_to_console=True)
        self.set_deep_supervision_enabled(True)
        compute_gaussian.cache_clear()
