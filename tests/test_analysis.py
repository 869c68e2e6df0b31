"""Analyses (t-SNE of bottleneck embeddings, labeled/unlabeled probability density) on randomly initialised tiny
networks: nnU-Net's PlainConvUNet with K + 1 outputs (Uni- baselines) and the UniSeMi network around it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet

from nnunetv2_unisemi.analysis.embeddings import case_embeddings, plot_tsne, tsne_2d
from nnunetv2_unisemi.analysis.model_loading import center_patch
from nnunetv2_unisemi.analysis.probability_density import (
    collect_probabilities,
    own_task_probability,
    plot_labeled_unlabeled_density,
)
from nnunetv2_unisemi.network.unisemi_network import UniSeMiNetwork

PATCH = (8, 16, 16)
TASKS = {1: "spleen", 2: "left_atrium", 3: "pancreas"}


def tiny_unet(num_classes: int = 4) -> PlainConvUNet:
    torch.manual_seed(0)
    return PlainConvUNet(1, 3, (4, 8, 16), torch.nn.Conv3d, 3, ((1, 1, 1), (2, 2, 2), (2, 2, 2)), 1, num_classes, 1,
                         conv_bias=True, norm_op=torch.nn.InstanceNorm3d, norm_op_kwargs={"affine": True},
                         nonlin=torch.nn.LeakyReLU, nonlin_kwargs={"inplace": True}).eval()


def tiny_unisemi() -> UniSeMiNetwork:
    backbone = tiny_unet(2)
    return UniSeMiNetwork(backbone.encoder, backbone.decoder, num_prompts=4).eval()


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(0)
    shapes = [(10, 20, 18), (6, 12, 30), (8, 16, 16), (12, 24, 24), (9, 17, 15), (8, 40, 16), (5, 5, 5)]
    tasks = [1, 1, 2, 2, 3, 3, 3]
    images = {f"case_{i}": (rng.normal(size=(1, *s)) + t).astype(np.float32)
              for i, (s, t) in enumerate(zip(shapes, tasks))}
    return images, {f"case_{i}": t for i, t in enumerate(tasks)}


def test_center_patch_crops_the_middle_and_pads_symmetrically():
    image = np.arange(1 * 4 * 6 * 2, dtype=np.float32).reshape(1, 4, 6, 2)
    patch = center_patch(image, (2, 2, 4))
    assert patch.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(patch[0, :, :, 1:3], image[0, 1:3, 2:4, :])
    assert (patch[0, :, :, 0] == 0).all() and (patch[0, :, :, 3] == 0).all()


@pytest.mark.parametrize("mode", ["center", "tiles"])
def test_embeddings_one_row_per_case_with_task_labels_and_tsne_png(cases, mode, tmp_path):
    images, case_to_task = cases
    panels = []
    for title, network in (("Uni-baseline", tiny_unet()), ("UniSeMi", tiny_unisemi())):
        features, ids, tasks = case_embeddings(network, images.items(), case_to_task, PATCH, mode)
        assert features.shape == (len(images), 16)  # one row per case, bottleneck channels
        assert ids == list(images) and tasks.tolist() == [case_to_task[c] for c in ids]
        assert np.isfinite(features).all()
        assert not np.allclose(features[0], features[1])  # different cases, different embeddings
        again, _, _ = case_embeddings(network, [(ids[3], images[ids[3]])], case_to_task, PATCH, mode)
        np.testing.assert_allclose(again[0], features[3], rtol=1e-5, atol=1e-6)
        if mode == "tiles":  # t-SNE and plotting do not depend on the mode: run them once
            continue
        coords = tsne_2d(features)
        assert coords.shape == (len(images), 2) and np.isfinite(coords).all()
        panels.append((title, coords, tasks))
    if mode == "tiles":
        return
    png = tmp_path / "tsne.png"
    plot_tsne(panels, TASKS, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


class FixedLogits(torch.nn.Module):
    """Channel 2 certain everywhere: p(task 2) ~ 1, every other task ~ 0."""

    def forward(self, x):
        logits = torch.zeros((x.shape[0], 4, *x.shape[2:]))
        logits[:, 2] = 20
        return logits


def test_own_task_probability_reads_the_tasks_channel_or_prompt():
    x = torch.zeros((1, 1, *PATCH))
    assert own_task_probability(FixedLogits(), x, 2).min() > 0.99
    assert own_task_probability(FixedLogits(), x, 1).max() < 0.01
    unisemi = tiny_unisemi()
    expected = torch.softmax(unisemi(x, torch.tensor([3])), 1)[:, 1]
    assert torch.allclose(own_task_probability(unisemi, x, 3), expected)


def test_labeled_unlabeled_density_png(cases, tmp_path):
    images, case_to_task = cases
    labeled = ["case_0", "case_2", "case_4"]
    for network in (tiny_unet(), tiny_unisemi()):
        probabilities = collect_probabilities(network, images.items(), case_to_task, PATCH, min_probability=0.01,
                                              max_voxels_per_case=500)
        assert set(probabilities) == set(images)
        for p in probabilities.values():
            assert p.size <= 500 and ((p > 0.01) & (p <= 1)).all()
        png = tmp_path / f"kde_{type(network).__name__}.png"
        counts = plot_labeled_unlabeled_density(probabilities, case_to_task, labeled, TASKS, png, title="test")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        for task in TASKS:
            for group in ("labeled", "unlabeled"):
                expected = sum(p.size for c, p in probabilities.items()
                               if case_to_task[c] == task and (c in labeled) == (group == "labeled"))
                assert counts[task][group] == expected
