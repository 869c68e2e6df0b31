"""Test-only schedules (this folder is added to nnUNet_extTrainer by tests/test_end_to_end.py)."""

from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_OrthogonalPrompts import (
    nnUNetTrainerUniSeMi_OrthogonalPrompts,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_PerTaskBatch import (
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled_NoSynthetic,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled,
    nnUNetTrainerUniSeMi_PerTaskBatch,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_SeparatePrompts import nnUNetTrainerUniSeMi_SeparatePrompts
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_TaskInfo import nnUNetTrainerUniSeMi_TaskInfo
from nnunetv2_unisemi.training.variants.short_schedules import short_schedule

# 3 epochs x 6 steps: long enough for the supervised loss to drop on the synthetic demo data
nnUNetTrainerUniSeMi_Test = short_schedule(nnUNetTrainerUniSeMi, "nnUNetTrainerUniSeMi_Test", 3, 6, 2)
# one more epoch than _Test: resuming _Test's final checkpoint must run exactly one epoch
nnUNetTrainerUniSeMi_TestResume = short_schedule(nnUNetTrainerUniSeMi, "nnUNetTrainerUniSeMi_TestResume", 4, 6, 2)
nnUNetTrainerUniSeMi_TaskInfo_Test = short_schedule(
    nnUNetTrainerUniSeMi_TaskInfo, "nnUNetTrainerUniSeMi_TaskInfo_Test", 1, 2, 1)
nnUNetTrainerUniSeMi_SeparatePrompts_Test = short_schedule(
    nnUNetTrainerUniSeMi_SeparatePrompts, "nnUNetTrainerUniSeMi_SeparatePrompts_Test", 1, 2, 1)
nnUNetTrainerUniSeMi_OrthogonalPrompts_Test = short_schedule(
    nnUNetTrainerUniSeMi_OrthogonalPrompts, "nnUNetTrainerUniSeMi_OrthogonalPrompts_Test", 1, 2, 1)
nnUNetTrainerUniSeMi_PerTaskBatch_Test = short_schedule(
    nnUNetTrainerUniSeMi_PerTaskBatch, "nnUNetTrainerUniSeMi_PerTaskBatch_Test", 1, 2, 1)
# 3 steps: the EMA teacher equals the student on steps 0 and 1 (UA-MT's warm-up decays 0, 0.5) and differs on step 2
nnUNetTrainerUniSeMi_TeacherUnlabeled_Test = short_schedule(
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled,
    "nnUNetTrainerUniSeMi_TeacherUnlabeled_Test", 1, 3, 1)
nnUNetTrainerUniSeMi_NoSynthetic_Test = short_schedule(
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled_NoSynthetic,
    "nnUNetTrainerUniSeMi_NoSynthetic_Test", 1, 2, 1)
