"""UniSeMi network: nnU-Net's planned encoder-decoder with a task-prompted dynamic head.

The backbone is whatever nnU-Net planned (PlainConvUNet, ResEncUNet, ...): we take its encoder and decoder and
replace the decoder's fixed segmentation layers by identities, so the decoder returns features at every scale.
The prompt only reaches the dynamic head, so one backbone pass can be decoded under any number of prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from dynamic_network_architectures.building_blocks.helper import convert_dim_to_conv_op
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn

from nnunetv2_unisemi.network.dynamic_head import DynamicHead


@dataclass
class BackboneFeatures:
    """One backbone pass: pooled bottleneck vector (B, C) and decoder features per scale (highest res first)."""

    pooled: torch.Tensor
    decoder: list[torch.Tensor]

    def select(self, index: slice) -> BackboneFeatures:
        return BackboneFeatures(self.pooled[index], [f[index] for f in self.decoder])


class UniSeMiNetwork(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, num_prompts: int, head_channels: int | None = 8,
                 head_negative_slope: float = 0.0, head_hidden_layers: int = 0, head_context: bool = True,
                 head_separate_prompts: bool = False):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder  # nnU-Net toggles deep supervision through `network.decoder.deep_supervision`
        self.decoder.seg_layers = nn.ModuleList(nn.Identity() for _ in self.decoder.seg_layers)
        # decoder stage s outputs the channels of encoder stage -(s+2); deep supervision outputs are highest res first
        decoder_channels = list(encoder.output_channels[:-1])
        conv_op = convert_dim_to_conv_op(len(encoder.strides[0]))
        self.head = DynamicHead(encoder.output_channels[-1], decoder_channels, num_prompts, conv_op, head_channels,
                                num_hidden_layers=head_hidden_layers, negative_slope=head_negative_slope,
                                use_context=head_context, separate_prompts=head_separate_prompts)
        self.num_prompts = num_prompts
        # prompts used when called without prompts, as nnU-Net's predictor does: see task_map_logits
        self.inference_prompts = list(range(1, num_prompts))

    @property
    def synthetic_prompt(self) -> int:
        return self.num_prompts

    def extract_features(self, x: torch.Tensor) -> BackboneFeatures:
        skips = self.encoder(x)
        decoded = self.decoder(skips)
        if not isinstance(decoded, (list, tuple)):
            decoded = [decoded]
        pooled = skips[-1].mean(dim=tuple(range(2, skips[-1].ndim)))
        return BackboneFeatures(pooled, list(decoded))

    def decode(self, features: BackboneFeatures, prompts: torch.Tensor):
        """Prompted logits from one backbone pass.

        prompts (B,): one output, a (B, 2, ...) tensor, or a list over scales under deep supervision.
        prompts (B, P): a list of P such outputs, output j under prompts[:, j].
        """
        single = prompts.ndim == 1
        per_scale = self.head(features.pooled, features.decoder, prompts[:, None] if single else prompts)
        # (without deep supervision the decoder returned one scale)
        outputs = [[scale[:, j] for scale in per_scale] for j in range(per_scale[0].shape[1])]
        if not self.decoder.deep_supervision:
            outputs = [scales[0] for scales in outputs]
        return outputs[0] if single else outputs

    def task_map_logits(self, features: BackboneFeatures, task_ids: list[int]) -> torch.Tensor:
        """Logits in nnU-Net's label space (background, task 1..K) from one backbone pass under several prompts.

        Channel k holds task k's log-odds log(p_k / (1 - p_k)) when k is prompted (a large negative value
        otherwise) and the background channel is 0, so nnU-Net's argmax export yields label k where p_k > 0.5,
        overlaps going to the most probable task; with one prompt it is exactly that task's binary mask.
        """
        n = features.pooled.shape[0]
        prompts = torch.as_tensor(task_ids, device=features.pooled.device).expand(n, -1)
        logits = self.head(features.pooled, features.decoder[:1], prompts)[0]  # (n, P, 2, *spatial)
        out = logits.new_full((n, self.num_prompts, *logits.shape[3:]), -100.0)
        out[:, 0] = 0
        # the synthetic prompt has no label of its own: alone, it is written as a binary map in channel 1
        channels = [task if task < self.num_prompts else 1 for task in task_ids]
        out[:, channels] = logits[:, :, 1] - logits[:, :, 0]
        return out

    def forward(self, x: torch.Tensor, prompts: torch.Tensor | list[torch.Tensor] | None = None):
        """prompts: a (B,) or (B, P) tensor (see decode); or a list of such tensors for consecutive groups of the
        batch, decoded from the same single backbone pass (a training step mixes labeled samples with one prompt
        each and unlabeled samples under every prompt); or None: task map logits under self.inference_prompts."""
        features = self.extract_features(x)
        if prompts is None:
            return self.task_map_logits(features, self.inference_prompts)
        if isinstance(prompts, torch.Tensor):
            return self.decode(features, prompts)
        outputs, start = [], 0
        for group in prompts:
            outputs.append(self.decode(features.select(slice(start, start + group.shape[0])), group))
            start += group.shape[0]
        if start != x.shape[0]:
            raise ValueError(f"prompt groups cover {start} samples, the batch has {x.shape[0]}")
        return outputs


def build_unisemi_network(
    plans_manager: PlansManager,
    configuration_manager: ConfigurationManager,
    num_input_channels: int,
    num_prompts: int,
    enable_deep_supervision: bool = True,
    head_negative_slope: float = 0.0,
    head_hidden_layers: int = 0,
    head_context: bool = True,
    head_channels: int | None = 8,
    head_separate_prompts: bool = False,
    backbone_width: float = 1.0,
) -> UniSeMiNetwork:
    """The planned backbone (same class, kwargs and init as nnU-Net's) wrapped with the dynamic head.
    `backbone_width` multiplies the planned features per stage (a convolution's weights grow with its square)."""
    arch_kwargs = dict(configuration_manager.network_arch_init_kwargs)
    if backbone_width != 1.0:
        arch_kwargs["features_per_stage"] = [round(f * backbone_width) for f in arch_kwargs["features_per_stage"]]
    backbone = get_network_from_plans(
        configuration_manager.network_arch_class_name,
        arch_kwargs,
        configuration_manager.network_arch_init_kwargs_req_import,
        num_input_channels,
        2,  # the fixed seg layers are discarded; the dynamic head makes the (background, target) logits
        allow_init=True,
        deep_supervision=enable_deep_supervision,
    )
    if not (hasattr(backbone, "encoder") and hasattr(backbone, "decoder")):
        raise TypeError(
            f"{configuration_manager.network_arch_class_name} has no encoder/decoder pair; UniSeMi needs a U-Net "
            "style architecture from dynamic_network_architectures (PlainConvUNet, ResidualEncoderUNet)."
        )
    return UniSeMiNetwork(backbone.encoder, backbone.decoder, num_prompts, head_negative_slope=head_negative_slope,
                          head_hidden_layers=head_hidden_layers, head_context=head_context, head_channels=head_channels,
                          head_separate_prompts=head_separate_prompts)
