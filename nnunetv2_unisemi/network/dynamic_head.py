"""Task-prompted dynamic segmentation head (paper Eq. 1-2; controller and grouped kernels as in DoDNet).

A controller maps [GAP(bottleneck features), one-hot prompt] to the weights and biases of a 1x1x1 dynamic conv
(Eq. 2: one convolution by default; DoDNet's three layers with ReLU in between as an option) that turns the
decoder's output features into 2 logits (background, target). Each sample gets
its own kernels, applied as one grouped 1x1x1 convolution (groups = samples, computed as a batched matrix product),
so there is no Python loop over samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def dynamic_layer_shapes(in_channels: int, hidden_channels: Sequence[int], out_channels: int) -> list[tuple[int, int]]:
    """(in, out) channel pairs of the dynamic conv layers."""
    chans = [in_channels, *hidden_channels, out_channels]
    return list(zip(chans[:-1], chans[1:]))


def num_dynamic_params(layer_shapes: Sequence[tuple[int, int]]) -> int:
    return sum(cin * cout + cout for cin, cout in layer_shapes)


def grouped_dynamic_conv(
    x: torch.Tensor, params: torch.Tensor, layer_shapes: Sequence[tuple[int, int]], negative_slope: float = 0.0
) -> torch.Tensor:
    """Apply per-sample 1x1(x1) conv layers with ReLU (LeakyReLU if negative_slope > 0) in between.

    x: (G, C_in, *spatial) features, params: (G, num_dynamic_params) generated weights and biases, one row per
    sample. Returns (G, C_out, *spatial).

    A 1x1x1 convolution is a matrix product over channels, so the grouped convolution (groups = samples) is computed
    as one batched matrix product: same numbers, and 12x faster than F.conv3d(groups=G) on CPU for 4 prompts at
    8 channels and a 48x64x64 patch (0.054 s vs 0.64 s, see docs/SPEED.md).
    """
    n_groups, _, *spatial = x.shape
    h = x.reshape(n_groups, x.shape[1], -1)
    offset = 0
    for i, (cin, cout) in enumerate(layer_shapes):
        w = params[:, offset: offset + cin * cout].reshape(n_groups, cout, cin)
        offset += cin * cout
        b = params[:, offset: offset + cout].reshape(n_groups, cout, 1)
        offset += cout
        h = torch.baddbmm(b, w, h)
        if i < len(layer_shapes) - 1:
            h = F.leaky_relu(h, negative_slope) if negative_slope else F.relu(h)
    return h.reshape(n_groups, layer_shapes[-1][1], *spatial)


class DynamicHead(nn.Module):
    """Dynamic heads for one or several decoder scales, whose kernels all come from one controller.

    One controller with one output block per scale is the same as one controller per scale (a linear map split by
    rows); it lets deep supervision use a prompted head at every decoder resolution. The controller is a linear
    layer on the pooled vector: the paper's 1x1x1 controller conv on a 1x1x1 map is exactly that.
    """

    def __init__(
        self,
        bottleneck_channels: int,
        decoder_channels: Sequence[int],
        num_prompts: int,
        conv_op: type[nn.Module] = nn.Conv3d,
        head_channels: int | None = 8,
        num_hidden_layers: int = 0,
        num_classes: int = 2,
        negative_slope: float = 0.0,
        use_context: bool = True,
        separate_prompts: bool = False,
    ):
        super().__init__()
        self.num_prompts = num_prompts
        # Eq. 1 feeds the controller GAP(bottleneck) beside the prompt. Its weights act as one more bias shared by all
        # prompts and can tell the training images apart (docs/BENCHMARKS.md, "Why two prompts gave one mask");
        # nnUNetTrainerUniSeMi_SeparatePrompts turns it off.
        self.context_channels = bottleneck_channels if use_context else 0
        # hidden layers (DoDNet: 2, nnUNetTrainerUniSeMi_MLPHead) use ReLU, or LeakyReLU with this slope if > 0
        self.negative_slope = negative_slope
        self.num_classes = num_classes
        # an int (DoDNet: 8): a fixed 1x1x1 conv, shared by all prompts, first reduces each scale's features to that
        # many channels; None: the dynamic layers work on the decoder features themselves
        if head_channels is None:
            self.pre_dynamic = nn.ModuleList(nn.Identity() for _ in decoder_channels)
            in_channels = list(decoder_channels)
        else:
            self.pre_dynamic = nn.ModuleList(conv_op(c, head_channels, 1) for c in decoder_channels)
            in_channels = [head_channels] * len(decoder_channels)
        self.scale_layer_shapes = [dynamic_layer_shapes(c, [c] * num_hidden_layers, num_classes) for c in in_channels]
        self.layer_shapes = self.scale_layer_shapes[0]  # the highest resolution's (the one used at inference)
        counts = [num_dynamic_params(shapes) for shapes in self.scale_layer_shapes]
        self.scale_offsets = [sum(counts[:s]) for s in range(len(counts) + 1)]
        self.num_params = self.scale_offsets[-1]
        self.controller = nn.Linear(self.context_channels + num_prompts, self.num_params)
        # The pooled vector has C entries of similar sign and size, so an SGD step on the controller moves every
        # generated kernel by about C times the step of a static kernel (C = 128: the head diverged in short CPU
        # runs, and the encoder got most of its gradient through the pooling). Scaling the pooled vector by
        # 1/sqrt(C) gives the generated kernels a static layer's step size (docs/BENCHMARKS.md, "What was tried").
        self.context_scale = bottleneck_channels ** -0.5 if use_context else 0.0
        if separate_prompts:
            self._init_prompt_kernels()
        else:
            self._init_controller_bias()

    def _init_controller_bias(self) -> None:
        """Start every scale's head as nnU-Net's He-initialised static layers (zero biases), held in the controller's
        shared bias; the prompt and the context learn to modulate them. With the default init the generated kernels
        were ~0.5x He scale, so the three dynamic layers passed ~1/15 of a static head's gradient back to the decoder.
        """
        with torch.no_grad():
            first = self.scale_layer_shapes[0]
            if all(shapes == first for shapes in self.scale_layer_shapes):  # one draw for every scale, as before
                self.controller.bias.copy_(self.he_kernels(first).repeat(len(self.scale_layer_shapes)))
            else:
                self.controller.bias.copy_(self.he_kernels())

    def _init_prompt_kernels(self) -> None:
        """separate_prompts: start every prompt as its own He-initialised static head (nnU-Net's init, zero biases):
        the prompt's one-hot column of the controller holds that prompt's kernels, and the controller's shared bias is
        fixed at 0. The one-hot prompt already selects a bias per prompt, so a shared bias adds no function, only a
        shared path for learning: trained, it learns what the tasks have in common (e.g. 'hippocampus' for its
        anterior and posterior parts) for all prompts at once (docs/BENCHMARKS.md, "Why two prompts gave one mask").
        The bias stays a (frozen) parameter, so both layouts load the same checkpoints."""
        with torch.no_grad():
            context = self.controller.weight.shape[1] - self.num_prompts
            for k in range(self.num_prompts):
                self.controller.weight[:, context + k] = self.he_kernels()
            self.controller.bias.zero_()
        self.controller.bias.requires_grad_(False)

    def he_kernels(self, layer_shapes=None) -> torch.Tensor:
        """One set of dynamic parameters for every scale (or for the given layers only), drawn as nnU-Net's
        He-initialised static layers (zero biases), laid out as the controller's output."""
        chunks = []
        for shapes in [layer_shapes] if layer_shapes is not None else self.scale_layer_shapes:
            for cin, cout in shapes:
                chunks.append(torch.randn(cout * cin) * (2.0 / cin) ** 0.5)
                chunks.append(torch.zeros(cout))
        return torch.cat(chunks)

    def prompt_kernel_directions(self, prompt_ids: Sequence[int]) -> list[torch.Tensor]:
        """Each prompt's foreground-minus-background kernel, (P, C) per scale: the direction in feature space along
        which the prompt's foreground logit grows. Defined for a context-free one-convolution binary head, whose
        kernels are the prompts' own (the same for every image)."""
        if self.context_channels or any(len(shapes) != 1 for shapes in self.scale_layer_shapes) \
                or self.num_classes != 2:
            raise ValueError("prompt kernel directions need a one-convolution binary head without the pooled context "
                             "(use_context=False, num_hidden_layers=0)")
        prompts = torch.as_tensor(list(prompt_ids), device=self.controller.weight.device)
        params = self.controller(F.one_hot(prompts - 1, self.num_prompts).to(self.controller.weight.dtype))
        directions = []
        for s, ((cin, cout),) in enumerate(self.scale_layer_shapes):
            w = params[:, self.scale_offsets[s]: self.scale_offsets[s] + cin * cout].reshape(len(prompts), cout, cin)
            directions.append(w[:, 1] - w[:, 0])
        return directions

    def generate_params(self, pooled: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """Eq. 1: kernels for each (sample, prompt). pooled: (B, C), prompts: (B, P) ids in 1..num_prompts.

        Returns (B, P, num_params): every scale's parameters, scale s at scale_offsets[s]:scale_offsets[s + 1].
        """
        if prompts.min() < 1 or prompts.max() > self.num_prompts:
            raise ValueError(f"prompt ids must be in 1..{self.num_prompts}, got {prompts.unique().tolist()}")
        one_hot = F.one_hot(prompts - 1, self.num_prompts).to(pooled.dtype)  # (B, P, num_prompts)
        if not self.context_channels:
            return self.controller(one_hot)
        pooled = (pooled * self.context_scale)[:, None, :].expand(-1, prompts.shape[1], -1)
        return self.controller(torch.cat((pooled, one_hot), dim=-1))

    def forward(self, pooled: torch.Tensor, decoder_features: Sequence[torch.Tensor], prompts: torch.Tensor):
        """Eq. 2 (logits; softmax is applied by the loss / predictor).

        decoder_features: one tensor per scale, highest resolution first; prompts (B, P).
        Returns one logits tensor per scale, each (B, P, num_classes, *spatial).
        """
        n_samples, n_prompts = prompts.shape
        params = self.generate_params(pooled, prompts)
        per_scale = []
        for s, feats in enumerate(decoder_features):
            reduced = self.pre_dynamic[s](feats)  # shared by all prompts: computed once per backbone pass
            expanded = reduced[:, None].expand(-1, n_prompts, *reduced.shape[1:]).reshape(
                n_samples * n_prompts, *reduced.shape[1:]
            )
            p = params[..., self.scale_offsets[s]: self.scale_offsets[s + 1]].reshape(n_samples * n_prompts, -1)
            logits = grouped_dynamic_conv(expanded, p, self.scale_layer_shapes[s], self.negative_slope)
            per_scale.append(logits.reshape(n_samples, n_prompts, *logits.shape[1:]))
        return per_scale
