"""Shared pytest fixtures: the read-only real data in ../shared/data (skipped when a fresh clone has none)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the repository (read-only: write only into tmp_path)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (a fresh clone has no ../shared/data)")
    return SHARED_DATA


DEMO_DATASET_ID = 990
DEMO_CONFIG = "3d_cpu"


def run_cli(cmd: list[str], env: dict, timeout: int = 900) -> str:
    """Run one of the installed console scripts (nnUNetv2_*); fail with its output tail when it fails."""
    proc = subprocess.run([str(Path(sys.executable).parent / cmd[0]), *cmd[1:]], env=env, capture_output=True,
                          text=True, encoding="utf-8", errors="replace", timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The synthetic 3-task demo dataset, converted, planned and preprocessed once per test session, and the
    environment (nnU-Net folders, trainer folders) to run nnU-Net on it."""
    from dataset_conversion.merge_tasks import convert_from_config
    from dataset_conversion.synthetic import make_demo_sources
    from nnunetv2_unisemi.trainer_dir import TRAINER_DIR
    from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo

    root = tmp_path_factory.mktemp("e2e")
    env = dict(os.environ)
    env.update(nnUNet_raw=str(root / "raw"), nnUNet_preprocessed=str(root / "preprocessed"),
               nnUNet_results=str(root / "results"), nnUNet_n_proc_DA="1", nnUNet_def_n_proc="1",
               nnUNet_extTrainer=os.pathsep.join([str(TRAINER_DIR), str(REPO_ROOT / "tests" / "ext_trainers")]))
    folders = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")
    old = {k: os.environ.get(k) for k in folders}
    os.environ.update({k: env[k] for k in folders})  # convert_from_config also writes the preprocessed split
    try:
        config = make_demo_sources(root / "sources", seed=0, num_cases=8)
        raw = convert_from_config(config, verbose=False)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    run_cli(["nnUNetv2_plan_and_preprocess", "-d", str(DEMO_DATASET_ID), "-c", "3d_fullres", "-np", "1",
             "--verify_dataset_integrity"], env)
    run_cli(["nnUNetv2_unisemi_add_plans", "-d", str(DEMO_DATASET_ID), "-c", DEMO_CONFIG], env)
    return {"root": root, "env": env, "raw": raw, "info": UnifiedDatasetInfo.from_dataset_json(raw),
            "dataset_id": DEMO_DATASET_ID, "config": DEMO_CONFIG}
