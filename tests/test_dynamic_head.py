"""The dynamic head and the network wrapper: per-sample kernels, prompts, one backbone pass for many prompts."""

import pytest
import torch
import torch.nn.functional as F
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from torch import nn

from nnunetv2_unisemi.network.dynamic_head import DynamicHead, dynamic_layer_shapes, grouped_dynamic_conv
from nnunetv2_unisemi.network.unisemi_network import UniSeMiNetwork


def tiny_network(num_prompts: int = 4, deep_supervision: bool = True, seed: int = 0) -> UniSeMiNetwork:
    torch.manual_seed(seed)
    backbone = PlainConvUNet(1, 3, (4, 8, 16), nn.Conv3d, 3, (1, 2, 2), 1, 2, 1, conv_bias=True,
                             norm_op=nn.InstanceNorm3d, norm_op_kwargs={"affine": True}, nonlin=nn.LeakyReLU,
                             deep_supervision=deep_supervision)
    return UniSeMiNetwork(backbone.encoder, backbone.decoder, num_prompts).eval()


def reference_dynamic_conv(x, params, layer_shapes, negative_slope=0.0):
    """Sample by sample, plain convs with the sample's own weights."""
    outs = []
    for i in range(x.shape[0]):
        h, offset = x[i: i + 1], 0
        for k, (cin, cout) in enumerate(layer_shapes):
            w = params[i, offset: offset + cin * cout].reshape(cout, cin, 1, 1, 1)
            offset += cin * cout
            b = params[i, offset: offset + cout]
            offset += cout
            h = F.conv3d(h, w, b)
            if k < len(layer_shapes) - 1:
                h = F.leaky_relu(h, negative_slope)
        outs.append(h)
    return torch.cat(outs)


def test_grouped_dynamic_conv_equals_per_sample_reference():
    torch.manual_seed(1)
    shapes = dynamic_layer_shapes(8, [8, 8], 2)
    x = torch.randn(5, 8, 6, 7, 5)
    params = torch.randn(5, sum(i * o + o for i, o in shapes))
    torch.testing.assert_close(grouped_dynamic_conv(x, params, shapes), reference_dynamic_conv(x, params, shapes))
    leaky = grouped_dynamic_conv(x, params, shapes, negative_slope=0.01)
    torch.testing.assert_close(leaky, reference_dynamic_conv(x, params, shapes, 0.01))
    assert not torch.allclose(leaky, grouped_dynamic_conv(x, params, shapes))


def test_head_generates_different_kernels_per_prompt_and_with_context_per_sample():
    torch.manual_seed(2)
    pooled = torch.randn(2, 16)
    prompts = torch.tensor([[1, 2, 3], [1, 2, 3]])
    head = DynamicHead(16, [4], num_prompts=3, conv_op=nn.Conv3d, use_context=False)  # from the prompt alone
    params = head.generate_params(pooled, prompts)
    assert params.shape == (2, 3, head.num_params)
    assert not torch.allclose(params[:, 0], params[:, 1])
    torch.testing.assert_close(params[0], params[1])  # the image does not change the kernels
    context_head = DynamicHead(16, [4], num_prompts=3, conv_op=nn.Conv3d)  # default: Eq. 1 as written
    params = context_head.generate_params(pooled, prompts)
    assert not torch.allclose(params[:, 0], params[:, 1])
    assert not torch.allclose(params[0, 0], params[1, 0])  # same prompt, different image content
    with pytest.raises(ValueError, match="prompt ids"):
        head.generate_params(pooled, torch.tensor([[0], [4]]))


def test_every_prompt_starts_as_its_own_he_kernel_and_nothing_is_shared_between_prompts():
    """Each prompt's kernels are an independent He draw (the controller's shared bias is fixed at 0 and not trained),
    so a gradient step on one prompt's samples changes no other prompt's kernels (a trained shared bias made the
    hippocampus prompts one mask, docs/BENCHMARKS.md)."""
    torch.manual_seed(5)
    head = DynamicHead(32, [8], num_prompts=4, conv_op=nn.Conv3d, head_channels=None, use_context=False,
                       separate_prompts=True)  # nnUNetTrainerUniSeMi_SeparatePrompts
    assert not head.controller.bias.requires_grad and head.controller.bias.abs().max() == 0
    kernels = head.generate_params(torch.randn(1, 32), torch.tensor([[1, 2, 3, 4]]))[0]
    weights = kernels[:, :16]  # (prompt, 2 x 8) weights of the one dynamic conv
    assert 0.7 < weights.std().item() / (2.0 / 8) ** 0.5 < 1.3
    cosine = F.normalize(weights, dim=1) @ F.normalize(weights, dim=1).T
    assert (cosine - torch.eye(4)).abs().max() < 0.8  # four independent draws, not one kernel plus small offsets
    opt = torch.optim.SGD([p for p in head.parameters() if p.requires_grad], lr=0.1)
    feats = torch.randn(2, 8, 3, 3, 3)
    head(torch.randn(2, 32), [feats], torch.tensor([[1], [1]]))[0].sum().backward()
    opt.step()
    after = head.generate_params(torch.randn(1, 32), torch.tensor([[1, 2, 3, 4]]))[0]
    assert not torch.allclose(after[0], kernels[0])
    torch.testing.assert_close(after[1:], kernels[1:])


def test_prompts_change_the_output_and_batch_mixes_prompts():
    net = tiny_network(deep_supervision=False)
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        out_1 = net(x, torch.tensor([1, 1]))
        out_2 = net(x, torch.tensor([2, 2]))
        mixed = net(x, torch.tensor([1, 2]))
    assert out_1.shape == (2, 2, 16, 16, 16)
    assert (out_1 - out_2).abs().max() > 1e-4
    # each sample is decoded with its own prompt
    torch.testing.assert_close(mixed[0], out_1[0])
    torch.testing.assert_close(mixed[1], out_2[1])


def test_one_backbone_pass_many_prompts_equals_single_prompt_calls():
    net = tiny_network(deep_supervision=True)
    x = torch.randn(3, 1, 16, 16, 16)
    all_prompts = torch.arange(1, 5).expand(3, -1)
    with torch.no_grad():
        multi = net(x, all_prompts)
        assert len(multi) == 4 and len(multi[0]) == 2  # 4 prompts x 2 deep-supervision scales
        for j in range(4):
            single = net(x, torch.full((3,), j + 1))
            for s in range(2):
                torch.testing.assert_close(multi[j][s], single[s])


def test_prompt_groups_share_one_pass():
    net = tiny_network(deep_supervision=False)
    x = torch.randn(4, 1, 16, 16, 16)
    labeled_prompts = torch.tensor([2, 4])
    unlabeled_prompts = torch.arange(1, 5).expand(2, -1)
    with torch.no_grad():
        out_l, out_u = net(x, [labeled_prompts, unlabeled_prompts])
        torch.testing.assert_close(out_l, net(x[:2], labeled_prompts))
        for j in range(4):
            torch.testing.assert_close(out_u[j], net(x[2:], torch.full((2,), j + 1)))
        with pytest.raises(ValueError, match="cover"):
            net(x, [labeled_prompts])


def test_task_map_logits_match_single_task_masks():
    net = tiny_network(num_prompts=4, deep_supervision=False)  # 3 tasks + synthetic
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        net.inference_prompts = [1, 2, 3]
        all_map = net(x).argmax(1)
        single_masks = {}
        for task in (1, 2, 3):
            net.inference_prompts = [task]
            single = net(x).argmax(1)
            assert set(single.unique().tolist()) <= {0, task}
            prob = torch.softmax(net(x, torch.tensor([task])), 1)[:, 1]
            assert torch.equal(single == task, prob > 0.5)
            single_masks[task] = prob
    # the all-task map labels a voxel k only where task k is the most probable and above 0.5
    probs = torch.stack([single_masks[t] for t in (1, 2, 3)])
    expected = torch.where(probs.max(0).values > 0.5, probs.argmax(0) + 1, 0)
    assert (all_map == expected).float().mean() > 0.999


def test_batched_matmul_equals_grouped_convolution():
    torch.manual_seed(3)
    shapes = dynamic_layer_shapes(8, [8], 2)
    x = torch.randn(3, 8, 5, 6, 7)
    params = torch.randn(3, sum(i * o + o for i, o in shapes))
    h, offset = x.reshape(1, -1, 5, 6, 7), 0
    for k, (cin, cout) in enumerate(shapes):
        w = params[:, offset: offset + cin * cout].reshape(3 * cout, cin, 1, 1, 1)
        offset += cin * cout
        b = params[:, offset: offset + cout].reshape(-1)
        offset += cout
        h = F.conv3d(h, w, b, groups=3)
        h = F.relu(h) if k < len(shapes) - 1 else h
    torch.testing.assert_close(grouped_dynamic_conv(x, params, shapes), h.reshape(3, 2, 5, 6, 7))


def test_generated_kernels_start_at_he_scale_and_context_is_scaled():
    """At init each scale's head is a He-initialised static head (zero biases), modulated by prompt and context;
    an SGD step on the controller moves a generated kernel by about a static kernel's step, not C times it."""
    torch.manual_seed(3)
    channels = 128
    head = DynamicHead(channels, [8, 16], num_prompts=4, conv_op=nn.Conv3d)
    pooled = torch.rand(6, channels)  # non-negative like pooled LeakyReLU features
    params = head.generate_params(pooled, torch.tensor([[1], [2], [3], [4], [1], [2]]))[:, 0]
    offset = 0
    assert [shapes[0][0] for shapes in head.scale_layer_shapes] == [8, 8]  # reduced to 8 channels at every scale
    for shapes in head.scale_layer_shapes:
        for cin, cout in shapes:
            w = params[:, offset: offset + cin * cout]
            offset += cin * cout
            assert 0.7 < w.std().item() / (2.0 / cin) ** 0.5 < 1.3
            offset += cout
    assert offset == params.shape[1]
    # d(generated weight)/d(controller row) = the controller's input: its squared norm sets the kernel's step size
    inputs = torch.cat((pooled * head.context_scale, F.one_hot(torch.tensor([0]), 4).float().expand(6, -1)), 1)
    step_factor = 1 + inputs.pow(2).sum(1)  # the bias adds 1
    assert step_factor.max().item() < 3  # unscaled: ~1 + channels / 3 = 44


def test_single_conv_head_is_a_per_sample_linear_map_with_gradient_at_every_voxel():
    """The default head (Eq. 2 as written): one generated convolution, so every voxel's logits are a
    linear function of its features, and every voxel passes gradient back to the decoder (a ReLU head whose hidden
    units are all off at a voxel passes none)."""
    torch.manual_seed(4)
    head = DynamicHead(16, [8], num_prompts=3, conv_op=nn.Conv3d)
    assert head.layer_shapes == [(8, 2)]
    pooled, feats = torch.randn(2, 16), torch.randn(2, 8, 5, 6, 4, requires_grad=True)
    prompts = torch.tensor([[1], [3]])
    logits = head(pooled, [feats], prompts)[0][:, 0]
    params = head.generate_params(pooled, prompts)[:, 0]
    reduced = head.pre_dynamic[0](feats)
    w, b = params[:, :16].reshape(2, 2, 8), params[:, 16:18]
    torch.testing.assert_close(logits, torch.einsum("goc,gcxyz->goxyz", w, reduced) + b[..., None, None, None])
    (grad,) = torch.autograd.grad(logits[:, 1].sum(), feats)
    assert (grad.abs().sum(1) > 0).all()
    # the same check on DoDNet's ReLU head (nnUNetTrainerUniSeMi_MLPHead) with its hidden units off: no gradient
    relu_head = DynamicHead(16, [8], num_prompts=3, conv_op=nn.Conv3d, num_hidden_layers=2)
    with torch.no_grad():
        relu_head.controller.weight.zero_()
        relu_head.controller.bias.zero_()
        relu_head.controller.bias[-2:] = torch.tensor([0.0, 1.8])  # final bias only: p_fg = sigmoid(1.8) everywhere
    out = relu_head(pooled, [feats], prompts)[0][:, 0]
    (grad,) = torch.autograd.grad(out[:, 1].sum(), feats)
    assert grad.abs().max() == 0 and torch.allclose(out.softmax(1)[:, 1], torch.sigmoid(torch.tensor(1.8)))


def _tiny_plans():
    """A PlansManager with one 3-stage PlainConvUNet configuration "3d" (features 4, 8, 16) and that configuration."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    arch = {"network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": {"n_stages": 3, "features_per_stage": [4, 8, 16], "conv_op": "torch.nn.modules.conv.Conv3d",
                            "kernel_sizes": [[3, 3, 3]] * 3, "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
                            "n_conv_per_stage": [1, 1, 1], "n_conv_per_stage_decoder": [1, 1], "conv_bias": True,
                            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                            "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "dropout_op": None,
                            "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
                            "nonlin_kwargs": {"inplace": True}},
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}
    plans = PlansManager({"dataset_name": "d", "plans_name": "p", "configurations": {"3d": {"architecture": arch}}})
    return plans, plans.get_configuration("3d")


def test_trainers_build_the_head_they_name():
    """nnUNetTrainerUniSeMi: one dynamic conv (Eq. 2); _MLPHead and _LeakyHead: DoDNet's three layers."""
    from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi
    from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_LeakyHead import nnUNetTrainerUniSeMi_LeakyHead
    from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_MLPHead import nnUNetTrainerUniSeMi_MLPHead

    plans, config = _tiny_plans()
    depth = {}
    for trainer in (nnUNetTrainerUniSeMi, nnUNetTrainerUniSeMi_MLPHead, nnUNetTrainerUniSeMi_LeakyHead):
        net = trainer.build_network_architecture(plans, config, 1, 4, False)
        depth[trainer.__name__] = (len(net.head.layer_shapes), net.head.negative_slope)
    assert depth == {"nnUNetTrainerUniSeMi": (1, 0.0), "nnUNetTrainerUniSeMi_MLPHead": (3, 0.0),
                     "nnUNetTrainerUniSeMi_LeakyHead": (3, 0.01)}
    from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_SeparatePrompts import (
        nnUNetTrainerUniSeMi_SeparatePrompts,
    )

    default = nnUNetTrainerUniSeMi.build_network_architecture(plans, config, 1, 4, False).head
    separate = nnUNetTrainerUniSeMi_SeparatePrompts.build_network_architecture(plans, config, 1, 4, False).head
    assert default.context_channels == 16 and default.controller.bias.requires_grad
    assert separate.context_channels == 0 and not separate.controller.bias.requires_grad
    assert separate.layer_shapes == [(4, 2)] and isinstance(separate.pre_dynamic[0], nn.Identity)


def test_wide_trainer_has_about_the_parameters_of_the_k_per_task_backbones():
    """_Wide: features per stage x sqrt(K), so its backbone has about K times the planned backbone's parameters (the K
    per-task models it is compared with); the head and the outputs are the same, and the plans are not changed."""
    from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_PerTaskBatch import (
        nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic as Light,
    )
    from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_PerTaskBatch import (
        nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic_Wide as Wide,
    )

    plans, config = _tiny_plans()
    planned, wide = (t.build_network_architecture(plans, config, 1, 4, False) for t in (Light, Wide))  # K = 3
    assert config.network_arch_init_kwargs["features_per_stage"] == [4, 8, 16]
    assert [m.out_channels for m in wide.encoder.modules() if isinstance(m, nn.Conv3d)] == [7, 14, 28]

    def backbone_parameters(net):
        return sum(p.numel() for part in (net.encoder, net.decoder) for p in part.parameters())

    ratio = backbone_parameters(wide) / backbone_parameters(planned)
    assert 2.7 < ratio < 3.1, ratio
    x, prompts = torch.randn(2, 1, 16, 16, 16), torch.tensor([1, 3])
    assert wide(x, prompts).shape == planned(x, prompts).shape == (2, 2, 16, 16, 16)


def test_prompt_kernel_directions_are_what_the_head_applies():
    """d_k = w_k[foreground] - w_k[background]: the logit difference of prompt k at a voxel is d_k . features plus the
    prompt's bias difference, at every scale; heads with the pooled context have no image-independent kernels."""
    torch.manual_seed(0)
    head = DynamicHead(16, [8, 12], num_prompts=4, head_channels=None, use_context=False, separate_prompts=True)
    feats = [torch.randn(1, 8, 3, 3, 3), torch.randn(1, 12, 2, 2, 2)]
    directions = head.prompt_kernel_directions([1, 2, 3])
    logits = head(torch.zeros(1, 16), feats, torch.tensor([[1, 2, 3]]))
    for s, (f, d) in enumerate(zip(feats, directions)):
        assert d.shape == (3, f.shape[1])
        bias = head.generate_params(torch.zeros(1, 16), torch.tensor([[1, 2, 3]]))[0][
            :, head.scale_offsets[s] + 2 * f.shape[1]: head.scale_offsets[s] + 2 * f.shape[1] + 2]
        expected = torch.einsum("pc,c...->p...", d, f[0]) + (bias[:, 1] - bias[:, 0]).view(-1, 1, 1, 1)
        torch.testing.assert_close(logits[s][0, :, 1] - logits[s][0, :, 0], expected)
    with pytest.raises(ValueError, match="without the pooled context"):
        DynamicHead(16, [8], num_prompts=4, use_context=True).prompt_kernel_directions([1, 2])
