"""Load a trained model folder (any trainer of this project or nnU-Net) and its preprocessed training cases."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunetv2_unisemi.trainer_dir import register_trainer_dir
from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo


@dataclass
class TrainedModel:
    network: torch.nn.Module
    plans_manager: PlansManager
    configuration_manager: ConfigurationManager
    dataset_json: dict
    info: UnifiedDatasetInfo
    trainer_name: str
    folder: Path

    @property
    def name(self) -> str:
        return self.trainer_name


def load_trained_model(model_folder: str | os.PathLike, fold: int | str = 0,
                       checkpoint: str = "checkpoint_final.pth", device: str | torch.device = "cpu") -> TrainedModel:
    """The network of `model_folder/fold_<fold>/<checkpoint>` in eval mode (nnU-Net's predictor does the lookup)."""
    register_trainer_dir()
    predictor = nnUNetPredictor(device=torch.device(device), perform_everything_on_device=False, verbose=False,
                                allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(model_folder), (fold,), checkpoint)
    network = predictor.network.to(device).eval()
    return TrainedModel(network, predictor.plans_manager, predictor.configuration_manager, predictor.dataset_json,
                        UnifiedDatasetInfo.from_dataset_json(predictor.dataset_json), predictor.trainer_name,
                        Path(model_folder))


def default_preprocessed_folder(model: TrainedModel) -> Path:
    """$nnUNet_preprocessed/<dataset name>/<data identifier of the model's configuration>."""
    preprocessed = os.environ.get("nnUNet_preprocessed")
    if not preprocessed:
        raise RuntimeError("nnUNet_preprocessed is not set: give the preprocessed folder explicitly (-p)")
    return Path(preprocessed) / model.plans_manager.dataset_name / model.configuration_manager.data_identifier


def iterate_preprocessed_cases(folder: str | os.PathLike, case_ids: Sequence[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(case id, image array (C, *spatial)) of nnU-Net preprocessed cases."""
    dataset = infer_dataset_class(str(folder))(str(folder), list(case_ids))
    for case in case_ids:
        data, _, _, _ = dataset.load_case(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield case, np.asarray(data[:], dtype=np.float32)


def center_patch(image: np.ndarray, patch_size: Sequence[int]) -> np.ndarray:
    """The central patch of a (C, *spatial) image, zero-padded (symmetrically) where the image is smaller."""
    out = image
    for axis, size in enumerate(patch_size, start=1):
        length = out.shape[axis]
        if length < size:
            before = (size - length) // 2
            pad = [(0, 0)] * out.ndim
            pad[axis] = (before, size - length - before)
            out = np.pad(out, pad)
        elif length > size:
            start = (length - size) // 2
            out = np.take(out, range(start, start + size), axis=axis)
    return np.ascontiguousarray(out)
