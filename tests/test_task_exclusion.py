"""Cross-task exclusion: a labeled case's own target is background under the other task prompts."""

import math

import torch
import torch.nn.functional as F

from nnunetv2_unisemi.task_exclusion import exclusion_loss, own_then_other_prompts


def test_own_prompt_first_then_every_other_task():
    prompts = own_then_other_prompts(torch.tensor([2, 1, 3, 2]), num_tasks=3)
    assert prompts.tolist() == [[2, 1, 3], [1, 2, 3], [3, 1, 2], [2, 1, 3]]
    assert own_then_other_prompts(torch.tensor([1, 1]), num_tasks=1).tolist() == [[1], [1]]


def test_exclusion_is_background_ce_on_own_foreground_only_weighted_per_voxel():
    torch.manual_seed(0)
    own = torch.zeros(2, 1, 4, 5, 6)
    own[0, 0, 1:3, 1:3, 1:3] = 1  # 8 voxels of sample 0 belong to its own task; sample 1 has none in this patch
    logits = [torch.randn(2, 2, 4, 5, 6, requires_grad=True) for _ in range(2)]
    loss = exclusion_loss(logits, own)
    mask = own[:, 0].bool()
    expected = sum(-F.log_softmax(lg, 1)[:, 0][mask].sum() / mask.numel() for lg in logits) / 2
    torch.testing.assert_close(loss, expected)
    loss.backward()
    for lg in logits:  # nothing is said about voxels outside the own target (they may hold the other task)
        assert lg.grad[1].abs().max() == 0  # sample 1 has no own voxel here
        assert (lg.grad[0][:, ~mask[0]] == 0).all() and (lg.grad[0][:, mask[0]] != 0).all()
        # descending the loss lowers the foreground logit where the own target is
        assert (lg.grad[0, 1][mask[0]] > 0).all() and (lg.grad[0, 0][mask[0]] < 0).all()


def test_exclusion_vanishes_when_other_prompts_say_background_and_without_other_tasks():
    own = torch.ones(1, 1, 2, 2, 2)
    confident_bg = torch.zeros(1, 2, 2, 2, 2)
    confident_bg[:, 0] = 20.0
    assert exclusion_loss([confident_bg], own).item() < 1e-6
    undecided = torch.zeros(1, 2, 2, 2, 2)
    assert math.isclose(exclusion_loss([undecided], own).item(), math.log(2), rel_tol=1e-6)
    assert exclusion_loss([], own).item() == 0
