"""Experiment (docs/BENCHMARKS.md, "Equal total compute"): does the prompt separate the two hippocampus tasks when
every prompt starts with its own kernel? The controller's prompt columns are He-initialised like nnU-Net's static
head and its shared bias is zeroed, so prompt k's initial kernel is an independent random kernel. Result at 600
iterations, 1 seed: no (the two prompts' masks still agree at Dice 0.96). nnUNetTrainerUniSeMi_PromptsOnly (below)
drops the two terms that ask for the union of the tasks: the masks still agree (Dice 0.87), but the hippocampus
barely left the all-background plateau in 600 iterations. Train and probe (either trainer):

    nnUNet_extTrainer=benchmarks/experiments:benchmarks/trainers:nnunetv2_unisemi/nnunet_ext_trainers \
        nnUNetv2_train 801 3d_cpu 0 -tr nnUNetTrainerUniSeMi_PromptInit_bench600 -device cpu
    python benchmarks/prompt_separation_probe.py --results $nnUNet_results --trainer-dir benchmarks/experiments \
        --trainer nnUNetTrainerUniSeMi_PromptInit_bench600
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainers"))
import unisemi_benchmark_trainers as B  # noqa: E402
from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi  # noqa: E402
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_NoUnlabeled import (  # noqa: E402
    nnUNetTrainerUniSeMi_NoUnlabeled,
)


def distinct_prompt_kernels(head):
    n_prompts = head.num_prompts
    weight = head.controller.weight
    context = weight.shape[1] - n_prompts
    with torch.no_grad():
        for k in range(n_prompts):
            weight[:, context + k] = head.he_kernels()
        head.controller.bias.zero_()


class nnUNetTrainerUniSeMi_PromptInit(nnUNetTrainerUniSeMi):
    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels,
                                   num_output_channels, enable_deep_supervision=True):
        net = super().build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                                 num_output_channels, enable_deep_supervision)
        distinct_prompt_kernels(net.head)
        return net


_cls = B._make(nnUNetTrainerUniSeMi_PromptInit, 600)
globals()[_cls.__name__] = _cls


class nnUNetTrainerUniSeMi_PromptsOnly(nnUNetTrainerUniSeMi_NoUnlabeled):
    """Only the labeled samples under their own prompts: no synthetic task, no unlabeled term (the two terms that ask
    for the union of the tasks). Does the prompt separate the hippocampus tasks then?"""

    @property
    def n_synthetic(self) -> int:
        return 0


_cls = B._make(nnUNetTrainerUniSeMi_PromptsOnly, 600)
globals()[_cls.__name__] = _cls
