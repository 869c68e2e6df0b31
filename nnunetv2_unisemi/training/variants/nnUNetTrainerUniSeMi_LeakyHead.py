"""UniSeMi with DoDNet's three-layer dynamic head (nnUNetTrainerUniSeMi_MLPHead), LeakyReLU (slope 0.01) instead
of ReLU between its layers.

With ReLU, a voxel where every hidden unit of the last dynamic layer is off gets the logit of the final bias alone,
the same in every image. In the CPU benchmark the trained heads encoded "foreground" that way, so each prompt's
foreground probability was capped at sigmoid(bias) (0.86 for the left atrium, 0.51 and 0.46 for the hippocampus
tasks; docs/BENCHMARKS.md). A leaky slope keeps a gradient through the off units, so they can learn to switch on.
"""

from __future__ import annotations

from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn

from nnunetv2_unisemi.network.unisemi_network import build_unisemi_network
from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi


class nnUNetTrainerUniSeMi_LeakyHead(nnUNetTrainerUniSeMi):
    head_negative_slope = 1e-2
    head_hidden_layers = 2

    @staticmethod
    def build_network_architecture(plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return build_unisemi_network(plans_manager, configuration_manager, num_input_channels, num_output_channels,
                                     enable_deep_supervision,
                                     head_negative_slope=nnUNetTrainerUniSeMi_LeakyHead.head_negative_slope,
                                     head_hidden_layers=nnUNetTrainerUniSeMi_LeakyHead.head_hidden_layers)
