"""Gradient flow through the dynamic head at initialisation, against nnU-Net's static segmentation layer.

The benchmark's CPU network (PlainConvUNet, 4 stages, features 16-128, patch 40 x 56 x 40, batch 2, as the `3d_cpu`
configuration of docs/BENCHMARKS.md) is built with nnU-Net's He init, once with its static 1x1x1 seg layer and once
with UniSeMi's dynamic head, for several seeds. For one cross-entropy step on random input and a 5% foreground
target it prints the logit spread and the gradient norms at the last decoder conv and the first encoder conv, and
for the dynamic head the spread of the generated kernels. `--old-init` reproduces the head before the fix (default
nn.Linear init of the controller, unscaled pooled context).

    python benchmarks/head_gradient_check.py [--old-init] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from torch import nn

from nnunetv2_unisemi.network.unisemi_network import UniSeMiNetwork

FEATURES = (16, 32, 64, 128)
PATCH = (40, 56, 40)


def backbone(seed: int) -> PlainConvUNet:
    from dynamic_network_architectures.initialization.weight_init import InitWeights_He  # noqa: PLC0415

    torch.manual_seed(seed)
    net = PlainConvUNet(1, len(FEATURES), FEATURES, nn.Conv3d, 3, (1, 2, 2, 2), 2, 2, 2, conv_bias=True,
                        norm_op=nn.InstanceNorm3d, norm_op_kwargs={"eps": 1e-5, "affine": True},
                        nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True}, deep_supervision=True)
    net.apply(InitWeights_He(1e-2))  # what nnU-Net's get_network_from_plans(allow_init=True) does
    return net


def report(name: str, net: nn.Module, logits: torch.Tensor, target: torch.Tensor) -> None:
    F.cross_entropy(logits, target).backward()
    first = net.encoder.stages[0][0].convs[0].conv.weight.grad.norm().item()
    last = net.decoder.stages[-1].convs[-1].conv.weight.grad.norm().item()
    print(f"  {name:8s} logit std {logits.std().item():.3f}  grad last decoder conv {last:.2e}  "
          f"grad first encoder conv {first:.2e}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old-init", action="store_true", help="the head's initialisation before the fix")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args(argv)
    x = torch.randn(2, 1, *PATCH, generator=torch.Generator().manual_seed(123))
    target = (torch.rand(2, *PATCH, generator=torch.Generator().manual_seed(7)) < 0.05).long()
    for seed in args.seeds:
        print(f"seed {seed}")
        plain = backbone(seed)
        report("static", plain, plain(x)[0], target)
        b = backbone(seed)
        uni = UniSeMiNetwork(b.encoder, b.decoder, num_prompts=4)
        if args.old_init:
            uni.head.controller.reset_parameters()
            uni.head.context_scale = 1.0
        prompts = torch.tensor([1, 2])
        report("dynamic", uni, uni(x, prompts)[0], target)
        with torch.no_grad():
            params = uni.head.generate_params(uni.extract_features(x).pooled, prompts[:, None])
        print(f"  dynamic  generated kernel std {params.std().item():.3f} (He for 8 input channels: "
              f"{(2 / 8) ** 0.5:.3f}), controller grad {uni.head.controller.weight.grad.norm().item():.2e}")


if __name__ == "__main__":
    main()
