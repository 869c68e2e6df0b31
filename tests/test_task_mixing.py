"""CutMix masks (Table 7 strategies), the synthetic task's label union, pairing of different tasks."""

import numpy as np
import pytest
import torch

from nnunetv2_unisemi.task_mixing import (
    MASK_STRATEGIES,
    cutmix,
    pair_different_tasks,
    sample_cutmix_masks,
    synthesize_task_batch,
)


@pytest.mark.parametrize("strategy", MASK_STRATEGIES)
@pytest.mark.parametrize("shape", [(40, 56, 64), (17, 33, 29), (64, 64)])
def test_mask_fraction_within_30_to_70_percent(strategy, shape):
    masks = sample_cutmix_masks(100, shape, strategy, np.random.default_rng(0))
    fractions = masks.float().flatten(1).mean(1)
    assert masks.dtype == torch.bool and masks.shape == (100, *shape)
    assert fractions.min() >= 0.3 and fractions.max() <= 0.7
    assert fractions.std() > 0.05  # the fraction is drawn, not fixed


def test_zero_centered_mask_is_one_cuboid():
    mask = sample_cutmix_masks(1, (30, 40, 50), "zero_centered", np.random.default_rng(3))[0].numpy()
    idx = np.argwhere(mask)
    lo, hi = idx.min(0), idx.max(0) + 1
    assert mask[tuple(slice(a, b) for a, b in zip(lo, hi))].all()  # its bounding box is full


def test_slice_mask_exchanges_whole_slices():
    mask = sample_cutmix_masks(1, (20, 16, 16), "slices", np.random.default_rng(4))[0]
    per_slice = mask.flatten(1).float().mean(1)
    assert set(per_slice.unique().tolist()) == {0.0, 1.0}


def test_unknown_strategy_is_rejected():
    with pytest.raises(ValueError, match="unknown CutMix mask strategy"):
        sample_cutmix_masks(1, (8, 8, 8), "checkerboard")


def test_synthetic_label_is_union_under_mask():
    rng = np.random.default_rng(5)
    images = torch.randn(3, 1, 12, 12, 12)
    seg = torch.zeros(3, 1, 12, 12, 12, dtype=torch.int16)
    seg[0, 0, 2:6, 2:6, 2:6] = 1
    seg[1, 0, 6:11, 6:11, 6:11] = 1
    low = seg[:, :, ::2, ::2, ::2].clone()  # a deep-supervision scale
    masks = sample_cutmix_masks(1, (12, 12, 12), "zero_centered", rng)
    syn_img, (syn_full, syn_low) = synthesize_task_batch(images, [seg, low], [(0, 1)], masks)
    m = masks[0]
    torch.testing.assert_close(syn_img[0, 0], torch.where(m, images[0, 0], images[1, 0]))
    expected = torch.where(m, seg[0, 0], seg[1, 0])
    assert torch.equal(syn_full[0, 0].to(torch.int16), expected)
    assert syn_low.shape == (1, 1, 6, 6, 6)
    # the union keeps foreground of both tasks where the mask shows them
    assert (syn_full[0, 0] * m).sum() == (seg[0, 0] * m).sum()
    assert (syn_full[0, 0] * ~m).sum() == (seg[1, 0] * ~m).sum()


def test_cutmix_is_exact_mix():
    a, b = torch.ones(2, 1, 4, 4, 4), torch.zeros(2, 1, 4, 4, 4)
    masks = torch.zeros(2, 4, 4, 4, dtype=torch.bool)
    masks[0, :2] = True
    mixed = cutmix(a, b, masks)
    assert mixed[0].sum() == 32 and mixed[1].sum() == 0


def test_pairs_only_join_different_tasks():
    rng = np.random.default_rng(6)
    pairs = pair_different_tasks([1, 1, 2, 3], 3, rng)
    ids = [1, 1, 2, 3]
    assert len(pairs) == 3 and all(ids[i] != ids[j] for i, j in pairs)
    assert pair_different_tasks([2, 2], 1, rng) == []
