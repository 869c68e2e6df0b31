"""End to end on CPU: synthetic sources -> unified dataset -> nnU-Net planning/preprocessing -> UniSeMi training
(CLI and in-process), resume, prediction with task prompts, evaluation. The planned dataset is conftest's
session fixture `demo`.

Uses generated fixtures (dataset_conversion.synthetic), so it runs on a fresh clone without ../shared.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from conftest import DEMO_CONFIG as CONFIG
from conftest import DEMO_DATASET_ID as DATASET_ID
from conftest import run_cli as run

from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo

pytestmark = pytest.mark.slow


def model_dir(demo, trainer: str) -> Path:
    return Path(demo["env"]["nnUNet_results"]) / demo["raw"].name / f"{trainer}__nnUNetPlans__{CONFIG}"


def epoch_values(log_text: str, key: str) -> list[float]:
    return [float(v) for v in re.findall(rf"{key} (-?[0-9.]+)", log_text)]


@pytest.fixture(scope="module")
def trained(demo):
    """nnUNetv2_train through nnU-Net's own CLI and external-trainer lookup, including final validation."""
    out = run(["nnUNetv2_train", str(DATASET_ID), CONFIG, "0", "-tr", "nnUNetTrainerUniSeMi_Test", "-device", "cpu"],
              demo["env"])
    return {"log": out, "folder": model_dir(demo, "nnUNetTrainerUniSeMi_Test") / "fold_0"}


def test_training_cli_losses_finite_and_supervised_loss_decreasing(trained):
    l_sup = epoch_values(trained["log"], "L_sup")
    l_unsup = epoch_values(trained["log"], "L_unsup")
    assert len(l_sup) == 3 and len(l_unsup) == 3
    assert all(np.isfinite(l_sup + l_unsup))
    assert l_sup[-1] < l_sup[0]
    assert all(0 <= v <= 1 for v in l_unsup)  # 1 - soft Dice
    folder = trained["folder"]
    assert (folder / "checkpoint_final.pth").is_file()
    assert (folder / "progress_unisemi.png").stat().st_size > 1000
    assert "Pseudo dice per task" in trained["log"]
    # validation predicted every labeled case with its own prompt and reported Dice per task
    assert sorted(p.name for p in (folder / "validation").glob("*.nii.gz")) == sorted(
        f"{c}.nii.gz" for c in UnifiedDatasetInfo.from_dataset_json(folder.parent / "dataset.json").labeled)
    assert "Validation Dice left_atrium" in (next(folder.glob("training_log_*.txt"))).read_text(encoding="utf-8")


def test_resume_continues_from_checkpoint(demo, trained):
    resumed = model_dir(demo, "nnUNetTrainerUniSeMi_TestResume") / "fold_0"
    resumed.mkdir(parents=True)
    for name in ("plans.json", "dataset.json", "dataset_fingerprint.json"):
        shutil.copy(trained["folder"].parent / name, resumed.parent / name)
    shutil.copy(trained["folder"] / "checkpoint_final.pth", resumed / "checkpoint_latest.pth")
    out = run(["nnUNetv2_train", str(DATASET_ID), CONFIG, "0", "-tr", "nnUNetTrainerUniSeMi_TestResume",
               "-device", "cpu", "--c"], demo["env"])
    epochs = [int(e) for e in re.findall(r"Epoch (\d+)\n", out)]
    assert epochs == [3]  # epochs 0-2 came from the checkpoint
    checkpoint = torch.load(resumed / "checkpoint_final.pth", weights_only=False)
    assert checkpoint["current_epoch"] == 4
    assert len(checkpoint["logging"]["train_loss_unsup"]) == 4


def test_val_flag_reruns_validation_with_task_prompts(demo, trained):
    summary = trained["folder"] / "validation" / "summary.json"
    summary.unlink()
    out = run(["nnUNetv2_train", str(DATASET_ID), CONFIG, "0", "-tr", "nnUNetTrainerUniSeMi_Test", "-device", "cpu",
               "--val"], demo["env"])
    assert summary.is_file()
    assert re.search(r"predicting \S+ with prompt 3 \(pancreas\)", out)


class GuardedTaskMap(dict):
    """case_to_task that fails the test if anyone asks for an unlabeled case's task."""

    def __init__(self, data, unlabeled):
        super().__init__(data)
        self.unlabeled = set(unlabeled)

    def __getitem__(self, key):
        assert key not in self.unlabeled, f"the trainer read the task of unlabeled case {key}"
        return super().__getitem__(key)

    def get(self, key, default=None):
        assert key not in self.unlabeled, f"the trainer read the task of unlabeled case {key}"
        return super().get(key, default)


def test_trainer_never_reads_unlabeled_tasks(demo, monkeypatch):
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_n_proc_DA", "nnUNet_extTrainer"):
        monkeypatch.setenv(k, demo["env"][k])
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")  # in-process data loading
    from nnunetv2.run.run_training import get_trainer_from_args

    trainer = get_trainer_from_args(str(DATASET_ID), CONFIG, 0, "nnUNetTrainerUniSeMi_Tiny", device=torch.device("cpu"))
    info = trainer.unisemi
    trainer.unisemi.case_to_task = GuardedTaskMap(info.case_to_task, info.unlabeled)
    trainer.run_training()
    log = trainer.logger.local_logger.my_fantastic_logging
    assert len(log["train_loss_unsup"]) == trainer.num_epochs and all(np.isfinite(log["train_loss_unsup"]))

    # the "w/ Task Info" variant is the one that may read them (and runs a step with them)
    info_trainer = get_trainer_from_args(str(DATASET_ID), CONFIG, 0, "nnUNetTrainerUniSeMi_TaskInfo_Test",
                                         device=torch.device("cpu"))
    info_trainer.unisemi.case_to_task = GuardedTaskMap(info.case_to_task, info.unlabeled)
    with pytest.raises(AssertionError, match="unlabeled case"):
        info_trainer.run_training()
    info_trainer.on_train_end()


def test_separate_prompts_variant_trains_with_exclusion_on_every_labeled_sample(demo, monkeypatch):
    """nnUNetTrainerUniSeMi_SeparatePrompts: each step decodes the labeled samples under the K - 1 other task prompts
    and passes their own binary targets to the exclusion loss; its head shares nothing between prompts."""
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer"):
        monkeypatch.setenv(k, demo["env"][k])
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    from nnunetv2.run.run_training import get_trainer_from_args

    import nnunetv2_unisemi.training.nnUNetTrainerUniSeMi as trainer_module

    calls, exclusion_loss = [], trainer_module.exclusion_loss

    def recording_exclusion_loss(other_logits, own_foreground):
        calls.append(([tuple(o.shape) for o in other_logits], own_foreground.detach().clone()))
        return exclusion_loss(other_logits, own_foreground)

    monkeypatch.setattr(trainer_module, "exclusion_loss", recording_exclusion_loss)
    trainer = get_trainer_from_args(str(DATASET_ID), CONFIG, 0, "nnUNetTrainerUniSeMi_SeparatePrompts_Test",
                                    device=torch.device("cpu"))
    trainer.run_training()
    head = trainer.network.head
    assert head.context_channels == 0 and not head.controller.bias.requires_grad
    assert all(isinstance(m, torch.nn.Identity) for m in head.pre_dynamic)
    assert len(calls) == trainer.num_iterations_per_epoch * trainer.num_epochs
    k = trainer.unisemi.num_tasks
    for shapes, own in calls:
        assert len(shapes) == k - 1 and own.shape[0] == trainer.batch_size
        assert all(s[0] == trainer.batch_size and s[1] == 2 and s[2:] == tuple(own.shape[2:]) for s in shapes)
        assert set(own.unique().tolist()) <= {0, 1}
    assert any(own.sum() > 0 for _, own in calls)
    assert np.isfinite(trainer.logger.local_logger.my_fantastic_logging["train_loss_sup"]).all()


def test_orthogonal_prompts_variant_adds_the_task_kernels_alignment_on_every_step(demo, monkeypatch):
    """nnUNetTrainerUniSeMi_OrthogonalPrompts: every step adds the squared cosine between the K task prompts' kernel
    directions, at every deep-supervision scale, to the supervised loss; no exclusion term."""
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer"):
        monkeypatch.setenv(k, demo["env"][k])
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    from nnunetv2.run.run_training import get_trainer_from_args

    import nnunetv2_unisemi.training.nnUNetTrainerUniSeMi as trainer_module

    calls, kernel_alignment = [], trainer_module.kernel_alignment

    def recording_alignment(directions):
        value = kernel_alignment(directions)
        calls.append(([tuple(d.shape) for d in directions], value.item(), all(d.requires_grad for d in directions)))
        return value

    monkeypatch.setattr(trainer_module, "kernel_alignment", recording_alignment)
    monkeypatch.setattr(trainer_module, "exclusion_loss", lambda *a: pytest.fail("exclusion is off in this variant"))
    trainer = get_trainer_from_args(str(DATASET_ID), CONFIG, 0, "nnUNetTrainerUniSeMi_OrthogonalPrompts_Test",
                                    device=torch.device("cpu"))
    trainer.run_training()
    assert len(calls) == trainer.num_iterations_per_epoch * trainer.num_epochs
    head, k = trainer.network.head, trainer.unisemi.num_tasks
    expected_shapes = [(k, shapes[0][0]) for shapes in head.scale_layer_shapes]
    assert len(expected_shapes) > 1  # deep supervision: every scale's kernels are kept apart
    for shapes, value, differentiable in calls:
        assert shapes == expected_shapes and 0 <= value <= 1 and differentiable


def test_per_task_batch_variant_gives_every_task_the_configured_batch(demo, monkeypatch):
    """nnUNetTrainerUniSeMi_PerTaskBatch: every step's labeled part holds the configuration's batch size of patches for
    each task (K x b), while the synthetic and unlabeled parts keep their default sizes (b // 2 each)."""
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer"):
        monkeypatch.setenv(k, demo["env"][k])
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    from nnunetv2.run.run_training import get_trainer_from_args

    trainer = get_trainer_from_args(str(DATASET_ID), CONFIG, 0, "nnUNetTrainerUniSeMi_PerTaskBatch_Test",
                                    device=torch.device("cpu"))
    steps, labeled_inputs, unlabeled_inputs = [], trainer.labeled_inputs, trainer.unlabeled_inputs

    def recording_labeled(batch):
        images, prompts, targets = labeled_inputs(batch)
        steps.append({"tasks": batch["task_ids"].tolist(), "prompts": prompts.tolist()})
        return images, prompts, targets

    def recording_unlabeled(batch):
        steps[-1]["unlabeled"] = batch["data"].shape[0]
        return unlabeled_inputs(batch)

    monkeypatch.setattr(trainer, "labeled_inputs", recording_labeled)
    monkeypatch.setattr(trainer, "unlabeled_inputs", recording_unlabeled)
    trainer.run_training()
    b, k = trainer.configuration_manager.batch_size, trainer.unisemi.num_tasks
    assert len(steps) == trainer.num_iterations_per_epoch * trainer.num_epochs
    for step in steps:
        assert sorted(step["tasks"]) == sorted(list(range(1, k + 1)) * b)
        assert step["prompts"][: k * b] == step["tasks"]
        assert step["prompts"][k * b:] == [trainer.unisemi.synthetic_prompt] * max(1, b // 2)
        assert step["unlabeled"] == 2 * max(1, b // 2)


def test_no_synthetic_variant_trains_the_task_prompts_alone(demo, monkeypatch):
    """nnUNetTrainerUniSeMi_..._NoUnlabeled_NoSynthetic (synthetic_per_batch = 0): every step holds the labeled patches
    under their own task prompts and nothing else (no synthetic sample, no unlabeled loader); synthetic_per_batch = 0
    with unlabeled data is refused before training starts, since nothing would then supervise the synthetic prompt."""
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer"):
        monkeypatch.setenv(k, demo["env"][k])
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    from nnunetv2.run.run_training import get_trainer_from_args

    trainer = get_trainer_from_args(str(DATASET_ID), CONFIG, 0, "nnUNetTrainerUniSeMi_NoSynthetic_Test",
                                    device=torch.device("cpu"))
    steps, labeled_inputs = [], trainer.labeled_inputs

    def recording_labeled(batch):
        images, prompts, targets = labeled_inputs(batch)
        steps.append((batch["task_ids"].tolist(), prompts.tolist(), images.shape[0]))
        return images, prompts, targets

    monkeypatch.setattr(trainer, "labeled_inputs", recording_labeled)
    trainer.run_training()
    b, k = trainer.configuration_manager.batch_size, trainer.unisemi.num_tasks
    assert len(steps) == trainer.num_iterations_per_epoch * trainer.num_epochs
    for tasks, prompts, n_images in steps:
        assert sorted(tasks) == sorted(list(range(1, k + 1)) * b)
        assert prompts == tasks and n_images == k * b
    assert trainer.dataloader_unlabeled is None

    with_unlabeled = get_trainer_from_args(str(DATASET_ID), CONFIG, 0, "nnUNetTrainerUniSeMi_PerTaskBatch_Test",
                                           device=torch.device("cpu"))
    with_unlabeled.synthetic_per_batch = 0
    with pytest.raises(ValueError, match="synthetic_per_batch = 0 with unlabeled data"):
        with_unlabeled.run_training()
    assert not with_unlabeled.was_initialized and with_unlabeled.dataloader_train is None


def test_task_sum_gives_each_task_the_gradient_it_gets_in_a_batch_of_its_own(demo, monkeypatch):
    """sum_task_losses (nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum): a task's samples get the gradient
    they would get in a batch of their own, whatever else the batch holds; the default mean over the batch gives a
    task's n_k samples n_k / N of that gradient. synthetic_loss_weight scales the synthetic prompt's term and nothing
    else, and is refused without the summed loss."""
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer"):
        monkeypatch.setenv(k, demo["env"][k])
    from nnunetv2.run.run_training import get_trainer_from_args

    trainer = get_trainer_from_args(str(DATASET_ID), CONFIG, 0,
                                    "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum",
                                    device=torch.device("cpu"))
    trainer.initialize()
    assert trainer.sum_task_losses
    prompts = torch.tensor([1, 1, 2, 3, trainer.unisemi.synthetic_prompt])
    patch = np.array(trainer.configuration_manager.patch_size)
    generator = torch.Generator().manual_seed(0)
    shapes = [tuple(int(v) for v in np.round(patch * np.array(s))) for s in trainer._get_deep_supervision_scales()]
    logits = [torch.randn((len(prompts), 2, *shape), generator=generator) for shape in shapes]
    targets = [torch.randint(0, 2, (len(prompts), 1, *shape), generator=generator).to(torch.int16) for shape in shapes]

    def gradient(sum_task_losses: bool, index: torch.Tensor) -> torch.Tensor:
        trainer.sum_task_losses = sum_task_losses
        output = [scale[index].clone().requires_grad_(True) for scale in logits]
        trainer.supervised_loss(output, [t[index] for t in targets], prompts[index]).backward()
        return output[0].grad

    everything = torch.arange(len(prompts))
    summed, mean = gradient(True, everything), gradient(False, everything)
    for own in ([0, 1], [2], [4]):  # task 1's pair, task 2 alone, the synthetic task
        alone = gradient(True, torch.tensor(own))
        assert alone.abs().max() > 0
        torch.testing.assert_close(summed[own], alone)
        torch.testing.assert_close(mean[own], alone * len(own) / len(prompts))

    # synthetic_loss_weight scales the synthetic prompt's term alone (_LightSynthetic: per sample like a task's patches)
    trainer.synthetic_loss_weight = 0.5
    weighted = gradient(True, everything)
    torch.testing.assert_close(weighted[4:], 0.5 * summed[4:])
    torch.testing.assert_close(weighted[:4], summed[:4])
    light = get_trainer_from_args(str(DATASET_ID), CONFIG, 0,
                                  "nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic",
                                  device=torch.device("cpu"))
    assert light.sum_task_losses
    assert light.synthetic_loss_weight == light.n_synthetic / light.labeled_patches_per_task < 1
    # the batch-mean loss has no synthetic term of its own to weight: refused before initialisation
    light.sum_task_losses = False
    with pytest.raises(ValueError, match="synthetic_loss_weight = 0.5 needs sum_task_losses"):
        light.run_training()
    assert not light.was_initialized


def test_teacher_unlabeled_variant_takes_p_agg_from_the_ema_teacher_and_keeps_it_in_checkpoints(demo, monkeypatch):
    """nnUNetTrainerUniSeMi_..._TeacherUnlabeled: the unlabeled term's P_agg is the EMA teacher's on the same CutMixed
    input. The teacher equals the student on steps 0 and 1 (warm-up decays 0 and 0.5), so P_agg is then the student's
    own; on step 2 it is not. The teacher is saved in the checkpoint and restored exactly; prediction loads the
    student."""
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer"):
        monkeypatch.setenv(k, demo["env"][k])
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    from nnunetv2.run.run_training import get_trainer_from_args

    from nnunetv2_unisemi.consistency import aggregated_task_prediction

    name = "nnUNetTrainerUniSeMi_TeacherUnlabeled_Test"
    trainer = get_trainer_from_args(str(DATASET_ID), CONFIG, 0, name, device=torch.device("cpu"))
    steps, unlabeled_target = [], trainer.unlabeled_target

    def recording_target(prompted_logits, mix_parts):
        p_agg = unlabeled_target(prompted_logits, mix_parts)
        own = aggregated_task_prediction(prompted_logits[: trainer.unisemi.num_tasks])
        steps.append((p_agg, own))
        return p_agg

    monkeypatch.setattr(trainer, "unlabeled_target", recording_target)
    trainer.run_training()
    assert len(steps) == 3 and trainer.ssl_step == 3
    for p_agg, own in steps:
        assert p_agg.shape == own.shape and not p_agg.requires_grad and 0 <= p_agg.min() and p_agg.max() <= 1
    for p_agg, own in steps[:2]:
        torch.testing.assert_close(p_agg, own)
    assert (steps[2][0] - steps[2][1]).abs().max() > 1e-4

    teacher, student = trainer.teacher.state_dict(), trainer.network.state_dict()
    assert any(not torch.equal(teacher[k], student[k]) for k in teacher)
    checkpoint_file = Path(trainer.output_folder) / "checkpoint_final.pth"
    checkpoint = torch.load(checkpoint_file, weights_only=False)
    assert all(torch.equal(checkpoint["network_weights"][k], student[k]) for k in student)
    restored = get_trainer_from_args(str(DATASET_ID), CONFIG, 0, name, device=torch.device("cpu"))
    restored.initialize()
    restored.load_checkpoint(str(checkpoint_file))
    assert restored.ssl_step == 3
    assert all(torch.equal(restored.teacher.state_dict()[k], teacher[k]) for k in teacher)


def read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def predict(demo, input_dir: Path, output_dir: Path, *task_args: str) -> str:
    return run(["nnUNetv2_predict_unisemi", "-i", str(input_dir), "-o", str(output_dir), "-d", str(DATASET_ID),
                "-c", CONFIG, "-tr", "nnUNetTrainerUniSeMi_Test", "-device", "cpu", "-npp", "1", "-nps", "1",
                "--disable_progress_bar", *task_args], demo["env"])


def test_predict_each_task_and_all_then_evaluate(demo, trained, monkeypatch):
    from nnunetv2_unisemi.evaluation.evaluate import evaluate_folder
    from nnunetv2_unisemi.inference.predictor import UniSeMiPredictor

    info, root = demo["info"], demo["root"]
    images_ts, labels_ts = demo["raw"] / "imagesTs", demo["raw"] / "labelsTs"
    all_dir = root / "pred_all"
    # without mirroring: 8 passes per window made this the suite's slowest test (one pass for all prompts is what is
    # compared here; mirrored prediction is test_predictor_reproduces_trainer_validation's)
    predict(demo, images_ts, all_dir, "-task", "all", "--separate_task_files", "--disable_tta")
    predict(demo, images_ts, root / "pred_map", "-task", "all", "--disable_tta")
    # one run per prompt, in this process with the CLI's predictor settings (the single-task CLI path is also
    # test_predictor_reproduces_trainer_validation's): K CLI runs cost K interpreter starts, model loads and pools
    monkeypatch.setenv("nnUNet_extTrainer", demo["env"]["nnUNet_extTrainer"])
    predictor = UniSeMiPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                 perform_everything_on_device=True, device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(trained["folder"].parent), (0,))
    reader = predictor.plans_manager.image_reader_writer_class()
    for case in info.test:
        multi_label = read(root / "pred_map" / f"{case}.nii.gz")
        image, properties = reader.read_images([str(images_ts / f"{case}_0000.nii.gz")])
        for task in info.tasks:
            predictor.set_task(task.name)
            single = predictor.predict_single_npy_array(image, properties)
            assert set(np.unique(single)) <= {0, task.id}  # a single-task file says which task it is
            from_all = read(all_dir / task.name / f"{case}.nii.gz")
            np.testing.assert_array_equal(from_all, single)  # one pass for all prompts == one run per prompt
            # the multi-label map only labels a voxel k where task k's own mask does
            assert np.all(single[multi_label == task.id] == task.id)

    # each test case evaluated with its own task's mask from the one-pass run
    per_task_pred = root / "pred_own_task"
    per_task_pred.mkdir()
    for case in info.test:
        task = info.tasks[info.case_to_task[case] - 1]
        shutil.copy(all_dir / task.name / f"{case}.nii.gz", per_task_pred / f"{case}.nii.gz")
    summary = evaluate_folder(labels_ts, per_task_pred, demo["raw"] / "dataset.json", root / "eval", verbose=False)
    assert set(summary["tasks"]) == {t.name for t in info.tasks}
    for values in summary["tasks"].values():
        assert values["n_cases"] == 2 and 0 <= values["dice"]["mean"] <= 1
    assert (root / "eval" / "summary.md").is_file()


def test_predictor_reproduces_trainer_validation(demo, trained):
    info = demo["info"]
    case = info.labeled_cases_of_task(2)[0]
    one_case = demo["root"] / "one_case"
    one_case.mkdir()
    shutil.copy(demo["raw"] / "imagesTr" / f"{case}_0000.nii.gz", one_case)
    out_dir = demo["root"] / "pred_validation_case"
    predict(demo, one_case, out_dir, "-task", "2")
    np.testing.assert_array_equal(read(out_dir / f"{case}.nii.gz"),
                                  read(trained["folder"] / "validation" / f"{case}.nii.gz"))


def test_predict_rejects_bad_requests_before_work(demo, trained, tmp_path):
    with pytest.raises(AssertionError, match="unknown task 'liver'.*1=spleen"):
        predict(demo, demo["raw"] / "imagesTs", tmp_path / "x", "-task", "liver")
    two_channels = tmp_path / "two_channels"
    two_channels.mkdir()
    case = demo["info"].test[0]
    for ch in ("0000", "0001"):
        shutil.copy(demo["raw"] / "imagesTs" / f"{case}_0000.nii.gz", two_channels / f"{case}_{ch}.nii.gz")
    with pytest.raises(AssertionError, match="2 channel file"):
        predict(demo, two_channels, tmp_path / "y", "-task", "all")
    assert not (tmp_path / "y").exists()
