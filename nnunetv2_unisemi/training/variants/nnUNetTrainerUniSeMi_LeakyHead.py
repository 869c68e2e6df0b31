"""UniSeMi with DoDNet's three-layer dynamic head (nnUNetTrainerUniSeMi_MLPHead), LeakyReLU (slope 0.01) instead
of ReLU between its layers.

With ReLU, a voxel where every hidden unit of the last dynamic layer is off gets the logit of the final bias alone,
the same in every image. In the CPU benchmark the trained heads encoded "foreground" that way, so each prompt's
foreground probability was capped at sigmoid(bias) (0.86 for the left atrium, 0.51 and 0.46 for the hippocampus
tasks; docs/BENCHMARKS.md). A leaky slope keeps a gradient through the off units, so they can learn to switch on.
"""

from __future__ import annotations

from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_MLPHead import nnUNetTrainerUniSeMi_MLPHead


class nnUNetTrainerUniSeMi_LeakyHead(nnUNetTrainerUniSeMi_MLPHead):
    head_negative_slope = 1e-2
