"""Trainer classes of the real-data benchmark (`benchmarks/run_benchmark.py`), found by nnU-Net through
`nnUNet_extTrainer` (this folder; its modules are imported as top-level modules, so the real classes are imported
by absolute import).

For every iteration budget N in 20, 40, ..., 6000 and every benchmarked method there is a class
`<base>_bench<N>`: 20 epochs of N/20 iterations (nnU-Net's poly learning rate decays over the 20 epochs),
3 validation iterations per epoch (the pseudo Dice in the training log), a checkpoint every epoch (so a killed run
resumes with `--c`), and *no* final sliding-window validation of the training (validation) cases: on CPU it costs
minutes per run and the benchmark evaluates on its held-out test cases anyway. Nothing else differs from the base
class, so the methods' code is exactly the package's.
"""

from __future__ import annotations

import os

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi
from nnunetv2_unisemi.training.variants.nnUNetTrainerBCP import nnUNetTrainerBCP, nnUNetTrainerUniBCP
from nnunetv2_unisemi.training.variants.nnUNetTrainerMeanTeacher import (
    nnUNetTrainerMeanTeacher,
    nnUNetTrainerUniMeanTeacher,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_ConstantLambda import nnUNetTrainerUniSeMi_ConstantLambda
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_LeakyHead import nnUNetTrainerUniSeMi_LeakyHead
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_MLPHead import nnUNetTrainerUniSeMi_MLPHead
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_NoUnlabeled import nnUNetTrainerUniSeMi_NoUnlabeled
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_OrthogonalPrompts import (
    nnUNetTrainerUniSeMi_OrthogonalPrompts,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_TaskSum,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_PerTaskBatch import (
    nnUNetTrainerUniSeMi_ExclusiveOrthogonalPrompts_PerTaskBatch_TaskSum,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_ConfidentUnlabeled,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled_NoSynthetic,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_ScaledLambda,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TaskOversampling,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic_Wide,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TwoWay,
    nnUNetTrainerUniSeMi_PerTaskBatch,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_SeparatePrompts import nnUNetTrainerUniSeMi_SeparatePrompts
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_TaskInfo import nnUNetTrainerUniSeMi_TaskInfo
from nnunetv2_unisemi.training.variants.short_schedules import short_schedule
from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo

# nnU-Net's CLIs set torch's threads to the number of CPUs before they import this module; when several benchmark
# chains share the CPUs, UNISEMI_BENCH_THREADS=1 avoids oversubscribing them (OpenMP threads spin-wait).
if os.environ.get("UNISEMI_BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["UNISEMI_BENCH_THREADS"]))



class nnUNetTrainer_TaskBinary(nnUNetTrainer):
    """Plain nnU-Net trained as a binary model of one task of the unified dataset: the paper's per-task "VNet" rows.

    The benchmark's fold k (k = task id) holds task k's labeled cases; here the network gets 2 outputs
    (background, task k) and the targets are (label == k). Without this, a plain nnU-Net on the unified dataset
    has K + 1 outputs, and the Dice term (mean over the K foreground channels) of a single-task case is diluted by
    the K - 1 channels that never occur. Predictions are exported with label 1 and mapped back to k by the benchmark.
    """

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        info = UnifiedDatasetInfo.from_dataset_json(dataset_json)
        if not 1 <= fold <= info.num_tasks:
            raise ValueError(f"nnUNetTrainer_TaskBinary trains task k as fold k (1..{info.num_tasks}), got fold {fold}")
        task = info.tasks[fold - 1]
        binary_json = {key: value for key, value in dataset_json.items() if key != "labels"}
        binary_json["labels"] = {"background": 0, task.name: 1}
        super().__init__(plans, configuration, fold, binary_json, device)
        self.task_value = task.id

    def _binary(self, batch: dict) -> dict:
        target = batch["target"]
        to_binary = lambda t: (t == self.task_value).to(t.dtype)  # noqa: E731
        batch["target"] = [to_binary(t) for t in target] if isinstance(target, list) else to_binary(target)
        return batch

    def train_step(self, batch: dict) -> dict:
        return super().train_step(self._binary(batch))

    def validation_step(self, batch: dict) -> dict:
        return super().validation_step(self._binary(batch))


BENCHMARK_BASES = (nnUNetTrainer, nnUNetTrainer_TaskBinary, nnUNetTrainerUniSeMi, nnUNetTrainerUniSeMi_NoUnlabeled,
                   nnUNetTrainerUniSeMi_TaskInfo, nnUNetTrainerUniSeMi_ConstantLambda, nnUNetTrainerMeanTeacher,
                   nnUNetTrainerBCP, nnUNetTrainerUniMeanTeacher, nnUNetTrainerUniBCP, nnUNetTrainerUniSeMi_LeakyHead,
                   nnUNetTrainerUniSeMi_MLPHead, nnUNetTrainerUniSeMi_SeparatePrompts,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts, nnUNetTrainerUniSeMi_OrthogonalPrompts_TaskSum,
                   nnUNetTrainerUniSeMi_PerTaskBatch,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum,
                   nnUNetTrainerUniSeMi_ExclusiveOrthogonalPrompts_PerTaskBatch_TaskSum,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled_NoSynthetic,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_ScaledLambda,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TwoWay,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_ConfidentUnlabeled,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TaskOversampling,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic,
                   nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic_Wide)
BENCHMARK_EPOCHS = 20
BENCHMARK_VAL_ITERATIONS = 3
BUDGETS = range(20, 6001, 20)


def _skip_final_validation(self, save_probabilities: bool = False):
    self.print_to_log_file("benchmark: final validation skipped (the benchmark evaluates on held-out test cases)")


def benchmark_trainer_name(base_name: str, iterations: int) -> str:
    return f"{base_name}_bench{iterations}"


def _make(base: type, iterations: int) -> type:
    no_val = type(f"{base.__name__}_NoFinalVal", (base,),
                  {"perform_actual_validation": _skip_final_validation, "__module__": __name__})
    return short_schedule(no_val, benchmark_trainer_name(base.__name__, iterations), BENCHMARK_EPOCHS,
                          iterations // BENCHMARK_EPOCHS, BENCHMARK_VAL_ITERATIONS)


for _base in BENCHMARK_BASES:
    for _n in BUDGETS:
        _cls = _make(_base, _n)
        globals()[_cls.__name__] = _cls
# a 2-epoch probe used to measure seconds per iteration before choosing the budget
for _base in BENCHMARK_BASES:
    _cls = short_schedule(type(f"{_base.__name__}_NoFinalVal", (_base,),
                               {"perform_actual_validation": _skip_final_validation, "__module__": __name__}),
                          f"{_base.__name__}_probe", 2, 20, 2)
    globals()[_cls.__name__] = _cls
