"""Prediction with a task prompt: nnU-Net's predictor (preprocessing, sliding window, mirroring, export) with the
UniSeMi network set to the requested prompts.

The network, called without prompts as nnU-Net's sliding window does, returns logits in nnU-Net's label space
built from ONE backbone pass per window and one cheap head application per prompt (see
UniSeMiNetwork.task_map_logits), so `-task all` costs one backbone pass, not K.

Task selections:
- a task name or id: that task's binary mask, written with label value = task id (files stay self-describing);
- ``all``: every task from one pass; one multi-label map (overlaps go to the most probable task) or, with
  ``separate_task_files``, one binary file per task in ``<output>/<task name>/``;
- ``synthetic``: the synthetic "all foreground" prompt (Task#K+1), written as a binary mask with value 1.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.inference.export_prediction import export_prediction_from_logits
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.inference.sliding_window_prediction import compute_gaussian
from nnunetv2.utilities.utils import create_lists_from_splitted_dataset_folder

from nnunetv2_unisemi.network.unisemi_network import UniSeMiNetwork
from nnunetv2_unisemi.trainer_dir import register_trainer_dir
from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo

SYNTHETIC = "synthetic"
ALL = "all"


def check_input_channels(input_folder: str | os.PathLike, dataset_json: dict) -> int:
    """Fail before any work when an input case has the wrong number of channel files or a multi-component image.

    Returns the number of cases found.
    """
    n_channels = len(dataset_json["channel_names"])
    ending = dataset_json["file_ending"]
    files = sorted(f for f in os.listdir(input_folder) if f.endswith(ending))
    if not files:
        raise FileNotFoundError(f"no '*{ending}' image found in {input_folder}")
    cases = create_lists_from_splitted_dataset_folder(str(input_folder), ending)
    for case_files in cases:
        name = os.path.basename(case_files[0])
        if len(case_files) != n_channels:
            raise ValueError(f"{name}: {len(case_files)} channel file(s) (_0000, _0001, ...) but the model expects "
                             f"{n_channels} ({list(dataset_json['channel_names'].values())})")
        for f in case_files:
            reader = sitk.ImageFileReader()
            reader.SetFileName(f)
            try:
                reader.ReadImageInformation()
            except RuntimeError as e:
                raise ValueError(f"{f}: unreadable image ({e})") from e
            if reader.GetNumberOfComponents() != 1 or reader.GetDimension() != 3:
                raise ValueError(f"{f}: expected a 3D single-channel image, got {reader.GetDimension()}D with "
                                 f"{reader.GetNumberOfComponents()} components per voxel")
    return len(cases)


class UniSeMiPredictor(nnUNetPredictor):
    """nnUNetPredictor for UniSeMi models. Call ``set_task`` before predicting (default: all tasks)."""

    def __init__(self, *args, separate_task_files: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.unisemi: UnifiedDatasetInfo | None = None
        self.task_selection: list[int] = []
        self.separate_task_files = separate_task_files

    # ------------------------------------------------------------------------------------------------ set-up
    def initialize_from_trained_model_folder(self, model_training_output_dir: str, use_folds=None,
                                             checkpoint_name: str = "checkpoint_final.pth"):
        folder = Path(model_training_output_dir)
        if not (folder / "dataset.json").is_file():
            raise FileNotFoundError(f"{folder} is not a trained nnU-Net model folder (no dataset.json)")
        try:
            info = UnifiedDatasetInfo.from_dataset_json(load_json(str(folder / "dataset.json")))
        except ValueError as e:
            raise ValueError(f"{folder} is not a UniSeMi model: {e}") from e
        register_trainer_dir()  # the checkpoint names a UniSeMi trainer; let nnU-Net's lookup find it
        super().initialize_from_trained_model_folder(str(folder), use_folds, checkpoint_name)
        self._attach(info)

    def manual_initialization(self, network, plans_manager, configuration_manager, parameters, dataset_json,
                              trainer_name, inference_allowed_mirroring_axes):
        super().manual_initialization(network, plans_manager, configuration_manager, parameters, dataset_json,
                                      trainer_name, inference_allowed_mirroring_axes)
        self._attach(UnifiedDatasetInfo.from_dataset_json(dataset_json))

    def _attach(self, info: UnifiedDatasetInfo) -> None:
        if not isinstance(self._unisemi_network, UniSeMiNetwork):
            raise TypeError(f"trainer {self.trainer_name} did not build a UniSeMi network: not a UniSeMi model")
        self.unisemi = info
        self.set_task(ALL)

    @property
    def _unisemi_network(self):
        return getattr(self.network, "_orig_mod", self.network)

    def set_task(self, task: str | int) -> list[int]:
        """Select the prompt(s): a task name or id, 'all' or 'synthetic'. Unknown names fail with the known list."""
        if str(task).lower() == ALL:
            selection = [t.id for t in self.unisemi.tasks]
        elif str(task).lower() == SYNTHETIC:
            selection = [self.unisemi.synthetic_prompt]
        else:
            selection = [self.unisemi.task_by_name_or_id(task).id]
        self.task_selection = selection
        self._unisemi_network.inference_prompts = selection
        return selection

    @property
    def task_names(self) -> dict[int, str]:
        names = {t.id: t.name for t in self.unisemi.tasks}
        names[self.unisemi.synthetic_prompt] = SYNTHETIC
        return names

    # ------------------------------------------------------------------------------------------------ export
    def export_jobs(self, logits: np.ndarray, output_file_truncated: str) -> list[tuple[np.ndarray, str]]:
        """(logits, output file) pairs to export: one multi-label map, or one binary map per selected task."""
        if not self.separate_task_files or len(self.task_selection) == 1:
            return [(logits, output_file_truncated)]
        folder, case = os.path.split(output_file_truncated)
        jobs = []
        for task in self.task_selection:
            only_this = np.full_like(logits, -100.0)
            only_this[0] = 0
            only_this[task] = logits[task]
            os.makedirs(os.path.join(folder, self.task_names[task]), exist_ok=True)
            jobs.append((only_this, os.path.join(folder, self.task_names[task], case)))
        return jobs

    def predict_from_data_iterator(self, data_iterator, save_probabilities: bool = False,
                                   num_processes_segmentation_export: int = 3):
        """nnU-Net's loop, exporting through export_jobs (results are written to files, not returned)."""
        with multiprocessing.get_context("spawn").Pool(num_processes_segmentation_export) as export_pool:
            pending = []
            for preprocessed in data_iterator:
                data = preprocessed["data"]
                if isinstance(data, str):
                    path, data = data, torch.from_numpy(np.load(data))
                    os.remove(path)
                ofile = preprocessed["ofile"]
                names = ", ".join(self.task_names[t] for t in self.task_selection)
                print(f"Predicting {os.path.basename(ofile)} with prompt(s): {names}")
                logits = self.predict_logits_from_preprocessed_data(data).cpu().numpy()
                for job_logits, job_file in self.export_jobs(logits, ofile):
                    pending.append(export_pool.apply_async(export_prediction_from_logits, (
                        job_logits, preprocessed["data_properties"], self.configuration_manager,
                        self.plans_manager, self.dataset_json, job_file, save_probabilities)))
            for result in pending:
                result.get()
        compute_gaussian.cache_clear()
        return None
