"""UniSeMi with the paper's head as Eq. 2 writes it: one dynamic convolution on the decoder features.

P_k = SoftMax(f_D(Embedding) * w_k): a single generated 1x1x1 convolution (after the fixed 1x1x1 reduction to the
head's channels, which is linear, so the composition is still one convolution of f_D). The default head follows
DoDNet instead (three dynamic layers with ReLU in between); in the benchmark its trained kernels encoded foreground
as "every hidden unit off", so foreground voxels sent no gradient past the final bias (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn

from nnunetv2_unisemi.network.unisemi_network import build_unisemi_network
from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi


class nnUNetTrainerUniSeMi_LinearHead(nnUNetTrainerUniSeMi):
    head_hidden_layers = 0

    @staticmethod
    def build_network_architecture(plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return build_unisemi_network(plans_manager, configuration_manager, num_input_channels, num_output_channels,
                                     enable_deep_supervision,
                                     head_hidden_layers=nnUNetTrainerUniSeMi_LinearHead.head_hidden_layers)
