"""CPU budgets of the comparison methods: the same 600 iterations (20 epochs x 30) as nnUNetTrainerUniSeMi_CPU."""

from __future__ import annotations

from nnunetv2_unisemi.training.variants.nnUNetTrainerBCP import nnUNetTrainerBCP, nnUNetTrainerUniBCP
from nnunetv2_unisemi.training.variants.nnUNetTrainerMeanTeacher import (
    nnUNetTrainerMeanTeacher,
    nnUNetTrainerUniMeanTeacher,
)
from nnunetv2_unisemi.training.variants.short_schedules import short_schedule

nnUNetTrainerMeanTeacher_CPU = short_schedule(nnUNetTrainerMeanTeacher, "nnUNetTrainerMeanTeacher_CPU", 20, 30, 5)
nnUNetTrainerUniMeanTeacher_CPU = short_schedule(
    nnUNetTrainerUniMeanTeacher, "nnUNetTrainerUniMeanTeacher_CPU", 20, 30, 5)
# BCP's pre-training share (2000 of 17000 iterations) of 600 iterations: 71 pre-training steps
nnUNetTrainerBCP_CPU = short_schedule(nnUNetTrainerBCP, "nnUNetTrainerBCP_CPU", 20, 30, 5)
nnUNetTrainerUniBCP_CPU = short_schedule(nnUNetTrainerUniBCP, "nnUNetTrainerUniBCP_CPU", 20, 30, 5)
