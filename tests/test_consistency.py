"""Unlabeled self-consistency: P_agg is a max over task prompts and carries no gradient unless told to (two-way)."""

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


def test_unlabeled_loss_equals_nnunets_soft_dice_on_a_detached_target():
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
    from nnunetv2.utilities.helpers import softmax_helper_dim1

    torch.manual_seed(3)
    synthetic_logits = torch.randn(3, 2, 6, 7, 5)
    p_agg = torch.rand(3, 6, 7, 5)
    p_agg[0] = 0  # a sample where no task prompt sees foreground
    nnunet = MemoryEfficientSoftDiceLoss(apply_nonlin=softmax_helper_dim1, batch_dice=False, do_bg=False, smooth=1e-5)
    expected = 1 + nnunet(synthetic_logits, torch.stack((1 - p_agg, p_agg), dim=1))
    torch.testing.assert_close(UnlabeledConsistencyLoss()(synthetic_logits, p_agg), expected)


def test_two_way_consistency_pulls_the_leading_task_prompt_towards_the_synthetic_prediction():
    torch.manual_seed(2)
    task_logits = [torch.randn(2, 2, 6, 6, 6, requires_grad=True) for _ in range(3)]
    synthetic_logits = torch.randn(2, 2, 6, 6, 6)
    consistency = UnlabeledConsistencyLoss()
    loss = consistency(synthetic_logits, aggregated_task_prediction(task_logits, detach=False))
    loss.backward()
    # the gradient reaches, at each voxel, only the prompt whose foreground probability is the max
    leading = torch.stack([torch.softmax(t, 1)[:, 1] for t in task_logits]).argmax(0)
    for k, t in enumerate(task_logits):
        reached = t.grad.abs().sum(1) > 0
        assert reached.any()
        assert not (reached & (leading != k)).any()
    # and a step along it makes the task prompts agree better with the synthetic prompt
    with torch.no_grad():
        stepped = [t - 50 * t.grad for t in task_logits]
    assert consistency(synthetic_logits, aggregated_task_prediction(stepped)) < loss.detach()


def test_trainer_detaches_p_agg_unless_told_otherwise():
    import types

    from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi

    logits = [torch.randn(1, 2, 4, 4, 4, requires_grad=True) for _ in range(3)]  # 2 task prompts + synthetic
    trainer = types.SimpleNamespace(unisemi=types.SimpleNamespace(num_tasks=2), detach_unlabeled_target=True)
    assert not nnUNetTrainerUniSeMi.unlabeled_target(trainer, logits, None).requires_grad
    trainer.detach_unlabeled_target = False  # what the _TwoWay variant sets
    assert nnUNetTrainerUniSeMi.unlabeled_target(trainer, logits, None).requires_grad


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


def test_confidence_threshold_keeps_only_confident_p_agg_voxels_in_the_dice():
    """With a threshold the unlabeled Dice is computed over the voxels where P_agg is >= t or <= 1 - t: unconfident
    voxels get no gradient, and the value is the plain soft Dice restricted to the confident voxels."""
    torch.manual_seed(4)
    synthetic_logits = torch.randn(2, 2, 6, 6, 6, requires_grad=True)
    p_agg = torch.rand(2, 6, 6, 6)
    confident = (p_agg >= 0.9) | (p_agg <= 0.1)
    assert confident.any() and not confident.all()
    loss = UnlabeledConsistencyLoss(confidence_threshold=0.9)(synthetic_logits, p_agg)
    loss.backward()
    reached = synthetic_logits.grad.abs().sum(1) > 0
    assert reached[confident].all() and not reached[~confident].any()
    # the same value as the unmasked loss on the confident voxels alone (one sample at a time: their counts differ)
    per_sample = [UnlabeledConsistencyLoss()(synthetic_logits[b][:, confident[b]][None].detach(),
                                             p_agg[b][confident[b]][None]) for b in range(2)]
    torch.testing.assert_close(loss.detach(), torch.stack(per_sample).mean())
    # and it differs from the paper's term, which the unconfident voxels also enter
    assert not torch.isclose(loss.detach(), UnlabeledConsistencyLoss()(synthetic_logits.detach(), p_agg))


def test_confidence_threshold_must_lie_between_one_half_and_one():
    import pytest

    for bad in (0.5, 1.0, 0.3):
        with pytest.raises(ValueError, match="confidence_threshold"):
            UnlabeledConsistencyLoss(confidence_threshold=bad)
