"""Unlabeled self-consistency: P_agg is a max over task prompts and carries no gradient."""

import torch

from nnunetv2_unisemi.consistency import UnlabeledConsistencyLoss, aggregated_task_prediction


def test_p_agg_is_elementwise_max_of_foreground_probabilities():
    torch.manual_seed(0)
    logits = [torch.randn(2, 2, 5, 5, 5) for _ in range(3)]
    expected = torch.stack([torch.softmax(lg, 1)[:, 1] for lg in logits]).max(0).values
    torch.testing.assert_close(aggregated_task_prediction(logits), expected)


def test_unlabeled_loss_has_no_gradient_through_p_agg():
    torch.manual_seed(1)
    task_logits = [torch.randn(2, 2, 6, 6, 6, requires_grad=True) for _ in range(3)]
    synthetic_logits = torch.randn(2, 2, 6, 6, 6, requires_grad=True)
    loss = UnlabeledConsistencyLoss()(synthetic_logits, aggregated_task_prediction(task_logits))
    loss.backward()
    assert all(t.grad is None for t in task_logits)
    assert synthetic_logits.grad is not None and synthetic_logits.grad.abs().sum() > 0


def test_unlabeled_loss_is_soft_dice():
    p_agg = torch.zeros(1, 4, 4, 4)
    p_agg[:, :2] = 1
    agree = torch.zeros(1, 2, 4, 4, 4)
    agree[:, 1, :2], agree[:, 0, 2:] = 20, 20  # synthetic prompt predicts exactly P_agg
    disagree = agree.flip(1)
    loss = UnlabeledConsistencyLoss()
    assert loss(agree, p_agg) < 1e-3
    assert loss(disagree, p_agg) > 0.99


def test_unlabeled_weight_ramps_up_over_the_first_40_percent_of_epochs():
    import types

    import numpy as np
    import pytest

    from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi

    trainer = types.SimpleNamespace(unlabeled_loss_weight=2.0, unlabeled_rampup_fraction=0.4, num_epochs=20)
    weights = []
    for epoch in range(20):
        trainer.current_epoch = epoch
        weights.append(nnUNetTrainerUniSeMi.current_unlabeled_weight(trainer))
    assert weights[0] == pytest.approx(2.0 * np.exp(-5))
    assert all(a < b for a, b in zip(weights[:8], weights[1:9]))  # rising until epoch 8 = 40% of 20
    assert weights[8:] == [2.0] * 12
    trainer.unlabeled_rampup_fraction = 0.0  # what the ConstantLambda variant sets
    trainer.current_epoch = 0
    assert nnUNetTrainerUniSeMi.current_unlabeled_weight(trainer) == 2.0
