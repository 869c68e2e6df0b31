"""Where nnU-Net finds the UniSeMi trainers: `export nnUNet_extTrainer=$(nnUNetv2_unisemi_trainer_dir)`."""

from __future__ import annotations

import os
from pathlib import Path

TRAINER_DIR = Path(__file__).resolve().parent / "nnunet_ext_trainers"


def register_trainer_dir() -> None:
    """Add the trainer folder to nnUNet_extTrainer for this process (our own commands call this)."""
    current = [p for p in os.environ.get("nnUNet_extTrainer", "").split(os.pathsep) if p]
    if str(TRAINER_DIR) not in current:
        os.environ["nnUNet_extTrainer"] = os.pathsep.join([*current, str(TRAINER_DIR)])


def main() -> None:
    print(TRAINER_DIR)
