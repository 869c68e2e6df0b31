"""Comparison trainers (UA-MT style mean teacher, BCP, Uni- forms): losses and mixing on constructed examples, and
each trainer end to end on CPU on the synthetic 3-task dataset (nnU-Net's trainer lookup, 2 steps, checkpoints).
"""

from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from nnunetv2_unisemi.training.variants.ema_teacher import EMATeacher
from nnunetv2_unisemi.training.variants.nnUNetTrainerBCP import (
    bcp_context_masks,
    copy_paste,
    largest_component_per_label,
    nnUNetTrainerBCP,
    nnUNetTrainerUniBCP,
)
from nnunetv2_unisemi.training.variants.ssl_losses import (
    masked_dice_ce,
    partial_label_log_probs,
    sigmoid_rampup,
    softmax_mse,
)

# `demo` (conftest.py, session scope): the planned synthetic dataset, shared with test_end_to_end.py


# ----------------------------------------------------------------------------------------------- BCP mixing
def test_bcp_context_mask_is_one_cuboid_of_two_thirds_sides():
    masks = bcp_context_masks(5, (9, 12, 15), rng=np.random.default_rng(0))
    assert masks.dtype == torch.bool and masks.shape == (5, 9, 12, 15)
    for m in masks:
        inside = np.argwhere(~m.numpy())
        assert len(inside) == 6 * 8 * 10  # int(s * 2/3) per side, the rest of the patch stays True
        assert (inside.max(0) - inside.min(0) + 1).tolist() == [6, 8, 10]


def test_bcp_mixed_images_and_labels_both_directions():
    shape = (4, 5, 6)
    mask = torch.ones(shape, dtype=torch.bool)
    mask[1:3, 1:4, 2:5] = False  # the pasted cuboid
    masks = mask[None]
    rng = np.random.default_rng(1)
    y_l = torch.from_numpy(rng.choice([0, 2], size=(1, *shape)))  # ground truth (task 2)
    pseudo = torch.from_numpy(rng.choice([0, 1, 3], size=(1, *shape)))  # teacher's pseudo-label
    x_l, x_u = torch.full((1, 1, *shape), 7.0), torch.full((1, 1, *shape), -3.0)

    x_in, y_in = copy_paste(x_l, y_l, x_u, pseudo, masks)  # unlabeled pasted into labeled
    x_out, y_out = copy_paste(x_u, pseudo, x_l, y_l, masks)  # labeled pasted into unlabeled
    for z in range(shape[0]):
        for y in range(shape[1]):
            for x in range(shape[2]):
                in_cube = 1 <= z < 3 and 1 <= y < 4 and 2 <= x < 5
                assert x_in[0, 0, z, y, x] == (-3.0 if in_cube else 7.0)
                assert y_in[0, z, y, x] == (pseudo if in_cube else y_l)[0, z, y, x]
                assert x_out[0, 0, z, y, x] == (7.0 if in_cube else -3.0)
                assert y_out[0, z, y, x] == (y_l if in_cube else pseudo)[0, z, y, x]


def test_largest_component_per_label():
    labels = torch.zeros((1, 6, 6, 6), dtype=torch.long)
    labels[0, 0:3, 0:3, 0:3] = 1  # 27 voxels
    labels[0, 5, 5, 5] = 1  # an isolated voxel of the same label: removed
    labels[0, 5, 0, 0] = 2  # the only component of label 2: kept
    out = largest_component_per_label(labels, [1, 2])
    assert out[0, 5, 5, 5] == 0 and out[0, 5, 0, 0] == 2 and (out == 1).sum() == 27


# ------------------------------------------------------------------------------------------------- losses
def test_partial_label_loss_merges_other_tasks_into_background():
    torch.manual_seed(0)
    shape = (1, 4, 4, 4)
    target = torch.zeros(shape, dtype=torch.long)
    target[:, 1:3, 1:3, 1:3] = 1  # a task-1 case: only task 1 is annotated
    outside = target == 0
    base = torch.randn((1, 4, *shape[1:]))  # K = 3 tasks -> 4 channels
    base[:, 1][target == 1] += 4
    # same probability mass for "background or another task", split differently between background and task 2
    swapped = base.clone()
    swapped[:, 0][outside], swapped[:, 2][outside] = base[:, 2][outside], base[:, 0][outside]
    task = torch.tensor([1])

    def partial(logits):
        return masked_dice_ce(partial_label_log_probs(logits, task), (target == 1).long(), None, [1])

    def full(logits):
        return masked_dice_ce(torch.log_softmax(logits, 1), target, None, [1, 2, 3])

    assert torch.allclose(partial(base), partial(swapped), atol=1e-6)
    assert not torch.allclose(full(base), full(swapped), atol=1e-3)  # the naive loss does penalise the swap
    # the own task's channel still matters
    worse = base.clone()
    worse[:, 1][target == 1] -= 8
    assert partial(worse) > partial(base) + 0.1
    # exact marginal: log(p0 + p2 + p3), log(p1)
    p = torch.softmax(base, 1)
    expected = torch.stack((torch.log(p[:, 0] + p[:, 2] + p[:, 3]), torch.log(p[:, 1])), 1)
    assert torch.allclose(partial_label_log_probs(base, task), expected, atol=1e-5)
    # a task-2 sample merges channels 0, 1 and 3 instead
    assert torch.allclose(partial_label_log_probs(base, torch.tensor([2]))[:, 1], torch.log(p[:, 2]), atol=1e-5)


def test_masked_loss_ignores_voxels_outside_the_region():
    torch.manual_seed(0)
    logits = torch.randn((2, 3, 4, 4, 4), requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4, 4))
    region = torch.zeros((2, 4, 4, 4), dtype=torch.bool)
    region[:, :2] = True
    loss = masked_dice_ce(torch.log_softmax(logits, 1), target, region)
    loss.backward()
    assert logits.grad[:, :, :2].abs().sum() > 0 and logits.grad[:, :, 2:].abs().sum() == 0
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 4, 1, 2, 3).float() * 30
    assert masked_dice_ce(torch.log_softmax(perfect, 1), target, region) < 1e-3


def test_softmax_mse_and_rampup():
    a = torch.tensor([[[0.2]], [[0.8]]])[None]  # (1, 2, 1, 1)
    b = torch.tensor([[[0.6]], [[0.4]]])[None]
    assert torch.isclose(softmax_mse(a, b), torch.tensor(0.16))
    assert torch.isclose(softmax_mse(a, b, torch.zeros((1, 1, 1), dtype=torch.bool)), torch.tensor(0.0))
    assert sigmoid_rampup(0, 10) == pytest.approx(np.exp(-5)) and sigmoid_rampup(10, 10) == 1.0


def fake_trainer(cls, multi_task: bool, task: int | None = None, num_tasks: int = 3):
    """Just enough of a trainer for its loss methods."""
    trainer = object.__new__(cls)
    trainer.multi_task, trainer.task, trainer.fold = multi_task, task, task
    trainer.unisemi = types.SimpleNamespace(num_tasks=num_tasks, task_by_name_or_id=lambda t: types.SimpleNamespace(
        id=int(t)))
    trainer.label_manager = types.SimpleNamespace(has_ignore_label=True, ignore_label=num_tasks + 1)
    return trainer


def test_bcp_region_losses_use_ground_truth_and_pseudo_label_semantics():
    """Uni-BCP: a ground-truth region of a task-1 sample must not penalise task-2 predictions there (partial label);
    a pseudo-label region must (full label map over all channels)."""
    trainer = fake_trainer(nnUNetTrainerUniBCP, multi_task=True)
    shape = (1, 4, 4, 4)
    labels = torch.zeros(shape, dtype=torch.long)  # background in both regions
    region = torch.zeros(shape, dtype=torch.bool)
    region[:, :2] = True  # ground-truth part
    logits = torch.zeros((1, 4, *shape[1:]))
    logits[:, 0] = 5
    other_task = logits.clone()
    other_task[:, 2], other_task[:, 0] = 5, 0  # "task 2" everywhere instead of background
    tasks = torch.tensor([1])
    assert torch.isclose(trainer.labeled_loss(logits, labels, tasks, region),
                         trainer.labeled_loss(other_task, labels, tasks, region), atol=1e-6)
    assert trainer.pseudo_label_loss(other_task, labels, ~region) > trainer.pseudo_label_loss(logits, labels, ~region)
    # single task (task 2): every other channel is background; Dice only on channel 2
    single = fake_trainer(nnUNetTrainerBCP, multi_task=False, task=2)
    assert single.foreground_channels == [2]
    assert single.labeled_loss(other_task, labels, tasks, region) > single.labeled_loss(logits, labels, tasks, region)


def test_ema_teacher_is_frozen_and_moves_towards_the_student():
    student = torch.nn.Conv3d(1, 2, 3)
    teacher = EMATeacher(student)
    assert all(not p.requires_grad for p in teacher.network.parameters())
    before = teacher.network.weight.clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    teacher.update(student, 0.99)
    assert torch.allclose(teacher.network.weight, 0.99 * before + 0.01 * student.weight)


# ----------------------------------------------------------------------------------------------- end to end
TRAINERS = {  # trainer -> fold (single-task forms: the fold is the task id)
    "nnUNetTrainerMeanTeacher_Test": 2,
    "nnUNetTrainerUniMeanTeacher_Test": 0,
    "nnUNetTrainerBCP_Test": 3,
    "nnUNetTrainerUniBCP_Test": 0,
}


@pytest.fixture(scope="module")
def trained(demo):
    """Every comparison trainer, 1 epoch x 2 steps in-process, found through nnU-Net's external-trainer lookup."""
    import os

    from nnunetv2.run.run_training import get_trainer_from_args

    keys = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer")
    old = {k: os.environ.get(k) for k in (*keys, "nnUNet_n_proc_DA")}
    os.environ.update({k: demo["env"][k] for k in keys})
    os.environ["nnUNet_n_proc_DA"] = "0"
    trainers = {}
    try:
        for name, fold in TRAINERS.items():
            trainer = get_trainer_from_args(str(demo["dataset_id"]), demo["config"], fold, name,
                                            device=torch.device("cpu"))
            trainer.run_training()
            trainers[name] = trainer
        yield trainers
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.mark.parametrize("name", list(TRAINERS))
def test_trainer_runs_end_to_end(trained, name):
    trainer = trained[name]
    log = trainer.logger.local_logger.my_fantastic_logging
    for key in ("train_losses", "train_loss_sup", "train_loss_unsup", "val_losses"):
        assert len(log[key]) == 1 and np.isfinite(log[key][0]), key
    assert trainer.ssl_step == 2
    out = Path(trainer.output_folder)
    assert (out / "checkpoint_final.pth").is_file()
    # K + 1 outputs: background + every task, in nnU-Net's label space
    assert trainer.network(torch.zeros((1, 1, *trainer.configuration_manager.patch_size))).shape[1] == 4
    tr_keys, val_keys = trainer.do_split()
    info = trainer.unisemi
    if trainer.multi_task:
        assert {info.case_to_task[k] for k in tr_keys} == {1, 2, 3}
    else:
        assert {info.case_to_task[k] for k in tr_keys} == {TRAINERS[name]}
        assert set(val_keys) == set(info.labeled_cases_of_task(TRAINERS[name]))
    if "BCP" in name:  # step 0 pre-training (no unlabeled term), step 1 self-training
        assert trainer.n_pretrain == 1 and log["unlabeled_weight"][0] == 0.5
        assert "self-training from step 1" in Path(trainer.log_file).read_text(encoding="utf-8")
    else:
        assert log["train_loss_unsup"][0] > 0


@pytest.mark.parametrize("name", list(TRAINERS))
def test_ema_teacher_checkpoint_round_trip_is_exact(demo, trained, name):
    from nnunetv2.run.run_training import get_trainer_from_args

    trainer = trained[name]
    teacher, student = trainer.teacher.state_dict(), trainer.network.state_dict()
    assert all(not p.requires_grad for p in trainer.teacher.network.parameters())
    assert any(not torch.equal(teacher[k], student[k]) for k in teacher)  # moved differently from the student
    checkpoint = torch.load(Path(trainer.output_folder) / "checkpoint_final.pth", weights_only=False)
    assert all(torch.equal(checkpoint["network_weights"][k], student[k]) for k in student)  # prediction: student

    restored = get_trainer_from_args(str(demo["dataset_id"]), demo["config"], TRAINERS[name], name,
                                     device=torch.device("cpu"))
    restored.load_checkpoint(str(Path(trainer.output_folder) / "checkpoint_final.pth"))
    restored_teacher = restored.teacher.state_dict()
    assert restored_teacher.keys() == teacher.keys()
    assert all(torch.equal(restored_teacher[k], teacher[k]) for k in teacher)
    assert all(torch.equal(restored.network.state_dict()[k], student[k]) for k in student)
    assert restored.ssl_step == trainer.ssl_step == 2


def test_export_teacher_writes_teacher_as_network_weights_and_still_resumes(demo, trained, tmp_path):
    from nnunetv2.run.run_training import get_trainer_from_args

    name = "nnUNetTrainerUniBCP_Test"
    trainer = trained[name]
    trainer.export_teacher = True
    try:
        trainer.save_checkpoint(str(tmp_path / "exported.pth"))
    finally:
        trainer.export_teacher = False
    checkpoint = torch.load(tmp_path / "exported.pth", weights_only=False)
    teacher, student = trainer.teacher.state_dict(), trainer.network.state_dict()
    assert all(torch.equal(checkpoint["network_weights"][k], teacher[k]) for k in teacher)
    assert all(torch.equal(checkpoint["student_weights"][k], student[k]) for k in student)
    restored = get_trainer_from_args(str(demo["dataset_id"]), demo["config"], 0, name, device=torch.device("cpu"))
    restored.load_checkpoint(str(tmp_path / "exported.pth"))
    assert all(torch.equal(restored.network.state_dict()[k], student[k]) for k in student)
    assert all(torch.equal(restored.teacher.state_dict()[k], teacher[k]) for k in teacher)


def test_single_task_trainer_rejects_a_fold_that_is_no_task(demo):
    trainer = fake_trainer(nnUNetTrainerBCP, multi_task=False)
    trainer.task, trainer.fold = None, 0
    trainer.unisemi = demo["info"]
    with pytest.raises(ValueError, match="give a task id as fold"):
        _ = trainer.task_id


def _load_script(name: str):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_analysis_clis_on_trained_models(trained, tmp_path):
    uni = [str(Path(trained[n].output_folder).parent) for n in ("nnUNetTrainerUniMeanTeacher_Test",
                                                                 "nnUNetTrainerUniBCP_Test")]
    png = _load_script("analysis_tsne").main(["-m", *uni, "-o", str(tmp_path / "tsne.png")])
    assert png.stat().st_size > 5000
    arrays = np.load(tmp_path / "tsne.npz")
    info = trained["nnUNetTrainerUniBCP_Test"].unisemi
    cases = arrays["nnUNetTrainerUniBCP_Test_cases"].tolist()
    assert sorted(cases) == sorted(info.labeled + info.unlabeled)  # one row per training case
    assert arrays["nnUNetTrainerUniBCP_Test_tasks"].tolist() == [info.case_to_task[c] for c in cases]
    assert arrays["nnUNetTrainerUniMeanTeacher_Test_features"].shape[0] == len(cases)

    bcp = str(Path(trained["nnUNetTrainerBCP_Test"].output_folder).parent)
    png = _load_script("analysis_kde").main(["-m", bcp, "-f", "3", "-t", "pancreas", "-o", str(tmp_path / "kde.png")])
    assert png.stat().st_size > 5000
    counts = json.loads((tmp_path / "kde.json").read_text(encoding="utf-8"))
    assert list(counts) == ["pancreas"] and set(counts["pancreas"]) == {"labeled", "unlabeled"}
