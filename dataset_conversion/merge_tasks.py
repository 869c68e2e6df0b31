"""Merge several binary segmentation sources into ONE nnU-Net v2 raw dataset with task channels.

A YAML/JSON config lists the tasks (any number K >= 1)::

    dataset_id: 601
    dataset_name: UniSeMi
    seed: 0
    labeled_fraction: 0.1          # paper default; or per-task 'labeled_count'
    selection: seeded              # or 'first' (first N of the training list, as UA-MT/BCP code does)
    tasks:
      - name: pancreas
        format: pancreas_ct_dicom  # msd | pancreas_ct_dicom | pancreas_h5 | la_h5 | la_nrrd
        path: Pancreas-CT          # relative paths are resolved against --data-root (default: the config's folder)
        modality: CT               # CT | MRI
        ct_window: abdomen         # [lo, hi] HU, a preset name (abdomen, lung) or none
        test_count: 20             # or test_fraction, or test_list (official list file, relative to 'path')

Output (``$nnUNet_raw/DatasetNNN_<Name>`` or ``-o``): imagesTr/labelsTr (labeled and unlabeled training cases),
imagesTs/labelsTs (test cases), dataset.json with the ``"unisemi"`` block, and splits_final.json (also written to
``$nnUNet_preprocessed/DatasetNNN_<Name>/`` when that variable is set). Label value k = task k's foreground; an
unlabeled case's label file is all ``ignore`` (K+1). Console script: ``nnUNetv2_unisemi_convert``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from dataset_conversion.common import CaseSource, ConversionError, copy_geometry, read_list_file, sanitize_case_id
from dataset_conversion.left_atrium import LA_SPACING_MM, LeftAtriumH5Source, LeftAtriumNrrdSource
from dataset_conversion.msd import MSDSource
from dataset_conversion.pancreas_ct import PANCREAS_H5_DEFAULT_SPACING, PancreasDicomSource, PancreasH5Source
from nnunetv2_unisemi.unified_dataset import Task, UnifiedDatasetInfo

FORMATS = ("msd", "pancreas_ct_dicom", "pancreas_h5", "la_h5", "la_nrrd")
MODALITIES = ("CT", "MRI")
SELECTION_MODES = ("seeded", "first")
# CT windows (HU) applied at conversion. Abdominal soft-tissue window for pancreas/spleen (the DTC/MagicNet
# preprocessing of NIH pancreas uses the same); the lung window keeps parenchyma (-850 HU) and tumour (~0-100 HU).
CT_WINDOW_PRESETS: dict[str, tuple[float, float]] = {"abdomen": (-125.0, 275.0), "lung": (-1000.0, 400.0)}
DEFAULT_CT_WINDOW = "abdomen"
DEFAULT_LABELED_FRACTION = 0.1

TOP_LEVEL_KEYS = {"dataset_id", "dataset_name", "description", "seed", "labeled_fraction", "selection", "tasks"}
TASK_KEYS = {
    "name", "format", "path", "labels", "modality", "ct_window", "channel", "spacing", "cases", "case_slice",
    "train_list", "test_list", "test_fraction", "test_count", "labeled_count",
}  # fmt: skip
RESERVED_TASK_NAMES = {"background", "ignore"}


# ---------------------------------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class TaskConfig:
    name: str
    format: str
    path: Path
    modality: str
    labels: list[int] | None = None
    ct_window: tuple[float, float] | None = None
    channel: int | None = None
    spacing: tuple[float, float, float] | None = None
    cases: list[str] | None = None
    case_slice: tuple[int | None, int | None] | None = None
    train_list: Path | None = None
    test_list: Path | None = None
    test_fraction: float | None = None
    test_count: int | None = None
    labeled_count: int | None = None
    raw: dict = field(default_factory=dict)  # the config entry as given, recorded in dataset.json


def load_config(path: str | os.PathLike) -> dict:
    """Read a YAML (.yaml/.yml) or JSON task config."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: missing config file")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        else:
            config = json.loads(path.read_text(encoding="utf-8"))
    except Exception as e:  # yaml and json raise various types; all mean "broken config"
        raise ConversionError(f"{path}: unreadable config ({e})") from e
    if not isinstance(config, dict):
        raise ConversionError(f"{path}: config must be a mapping with a 'tasks' list")
    return config


def _resolve(path_text: str, base: Path) -> Path:
    path = Path(os.path.expandvars(os.path.expanduser(str(path_text))))
    return path if path.is_absolute() else base / path


def _parse_ct_window(value, where: str) -> tuple[float, float] | None:
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    if isinstance(value, str):
        if value.lower() not in CT_WINDOW_PRESETS:
            raise ConversionError(f"{where}: unknown ct_window preset '{value}' (known: {sorted(CT_WINDOW_PRESETS)})")
        return CT_WINDOW_PRESETS[value.lower()]
    if not (isinstance(value, list | tuple) and len(value) == 2 and float(value[0]) < float(value[1])):
        raise ConversionError(f"{where}: ct_window must be [low, high] HU with low < high, got {value!r}")
    return float(value[0]), float(value[1])


def parse_task_config(entry: dict, base: Path, index: int) -> TaskConfig:
    where = f"task {index + 1} ({entry.get('name', '?') if isinstance(entry, dict) else '?'}) of the config"
    if not isinstance(entry, dict):
        raise ConversionError(f"{where}: must be a mapping")
    unknown = sorted(set(entry) - TASK_KEYS)
    if unknown:
        raise ConversionError(f"{where}: unknown keys {unknown} (known: {sorted(TASK_KEYS)})")
    for key in ("name", "format", "path"):
        if key not in entry:
            raise ConversionError(f"{where}: missing key '{key}'")
    name = str(entry["name"])
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*(_[A-Za-z0-9-]+)*", name) or name.lower() in RESERVED_TASK_NAMES:
        raise ConversionError(f"{where}: task name '{name}' must be alphanumeric (with - or _) and not reserved")
    fmt = str(entry["format"])
    if fmt not in FORMATS:
        raise ConversionError(f"{where}: unknown format '{fmt}' (known: {', '.join(FORMATS)})")
    default_modality = "MRI" if fmt.startswith("la_") else "CT" if fmt.startswith("pancreas") else None
    modality = str(entry.get("modality", default_modality)).upper()
    if modality not in MODALITIES:
        raise ConversionError(f"{where}: modality must be one of {MODALITIES}, got {entry.get('modality')!r}")
    task = TaskConfig(name=name, format=fmt, path=_resolve(entry["path"], base), modality=modality, raw=dict(entry))
    if "labels" in entry:
        labels = entry["labels"]
        labels = [labels] if isinstance(labels, int) else labels
        if not labels or not all(isinstance(v, int) and v > 0 for v in labels):
            raise ConversionError(f"{where}: labels must be a non-empty list of positive label values, got {labels!r}")
        task.labels = list(labels)
    # pancreas_h5 images are already normalised by the DTC preprocessing (no HU left to window).
    default_window = DEFAULT_CT_WINDOW if modality == "CT" and fmt != "pancreas_h5" else None
    task.ct_window = _parse_ct_window(entry.get("ct_window", default_window), where)
    if task.ct_window is not None and modality != "CT":
        raise ConversionError(f"{where}: ct_window is only meaningful for CT tasks")
    if "channel" in entry:
        task.channel = int(entry["channel"])
    if "spacing" in entry:
        spacing = entry["spacing"]
        spacing = [spacing] * 3 if isinstance(spacing, int | float) else spacing
        if len(spacing) != 3 or min(float(s) for s in spacing) <= 0:
            raise ConversionError(f"{where}: spacing must be a positive number or [x, y, z] in mm, got {spacing!r}")
        task.spacing = tuple(float(s) for s in spacing)
    if "cases" in entry and "case_slice" in entry:
        raise ConversionError(f"{where}: give either 'cases' or 'case_slice', not both")
    if "cases" in entry:
        task.cases = [str(c) for c in entry["cases"]]
    if "case_slice" in entry:
        sl = entry["case_slice"]
        if not (isinstance(sl, list | tuple) and len(sl) == 2):
            raise ConversionError(f"{where}: case_slice must be [start, stop] (null for open ends), got {sl!r}")
        task.case_slice = (sl[0], sl[1])
    for key in ("train_list", "test_list"):
        if key in entry:
            setattr(task, key, _resolve(entry[key], task.path))
    n_test_keys = sum(k in entry for k in ("test_list", "test_fraction", "test_count"))
    if n_test_keys > 1:
        raise ConversionError(f"{where}: give at most one of test_list, test_fraction, test_count")
    if "test_fraction" in entry:
        task.test_fraction = float(entry["test_fraction"])
        if not 0 <= task.test_fraction < 1:
            raise ConversionError(f"{where}: test_fraction must be in [0, 1), got {task.test_fraction}")
    if "test_count" in entry:
        task.test_count = int(entry["test_count"])
        if task.test_count < 0:
            raise ConversionError(f"{where}: test_count must be >= 0")
    if "labeled_count" in entry:
        task.labeled_count = int(entry["labeled_count"])
    return task


def make_source(task: TaskConfig) -> CaseSource:
    """The reader for a task's source format."""
    if task.format == "msd":
        return MSDSource(task.path, task.labels, task.channel)
    if task.format == "pancreas_ct_dicom":
        return PancreasDicomSource(task.path, task.labels or (1,))
    if task.format == "pancreas_h5":
        return PancreasH5Source(task.path, task.spacing or PANCREAS_H5_DEFAULT_SPACING)
    if task.format == "la_h5":
        return LeftAtriumH5Source(task.path, task.spacing or LA_SPACING_MM)
    if task.format == "la_nrrd":
        return LeftAtriumNrrdSource(task.path, task.labels or (255,))
    raise ConversionError(f"unknown format '{task.format}'")


# ---------------------------------------------------------------------------------------------------------------------
# case selection: subset, test split, label budget
# ---------------------------------------------------------------------------------------------------------------------
def _task_rng(seed: int, task_name: str, purpose: int) -> np.random.Generator:
    # Seeded per task name, so adding/reordering tasks does not change another task's selection.
    return np.random.default_rng([int(seed), zlib.crc32(task_name.encode()), purpose])


def split_task_cases(task: TaskConfig, source: CaseSource, seed: int) -> tuple[list[str], list[str]]:
    """(training case ids in list order, test case ids) of one task, after subset and test selection."""
    available = source.case_ids()
    available_set = set(available)

    def checked(ids: list[str], where: Path | str) -> list[str]:
        missing = [c for c in ids if c not in available_set]
        if missing:
            raise ConversionError(f"{where}: cases {missing[:5]} not found in {source.path} (missing image)")
        return ids

    train_list, test_list = task.train_list, task.test_list
    default_train = getattr(source, "default_train_list", None)
    default_test = getattr(source, "default_test_list", None)
    if train_list is None and default_train and (task.path / default_train).is_file():
        train_list = task.path / default_train  # e.g. UA-MT's train.list next to the LA h5 folder
    if test_list is None and default_test and task.test_fraction is None and task.test_count is None:
        if (task.path / default_test).is_file():
            test_list = task.path / default_test

    ordered = checked(read_list_file(train_list), train_list) if train_list else list(available)
    listed_test = checked(read_list_file(test_list), test_list) if test_list else []
    if train_list is None:
        ordered = [c for c in ordered if c not in set(listed_test)]

    subset = set(available)
    if task.cases is not None:
        subset = set(checked(task.cases, f"'cases' of task {task.name}"))
    elif task.case_slice is not None:
        start, stop = task.case_slice
        subset = set(sorted(available)[slice(start, stop)])
    ordered = [c for c in ordered if c in subset]
    test = [c for c in listed_test if c in subset]
    both = sorted(set(ordered) & set(test))
    if both:
        raise ConversionError(f"{test_list}: cases {both[:5]} are in both the training and the test list")

    if task.test_fraction is not None or task.test_count is not None:
        n_test = task.test_count if task.test_count is not None else round_half_up(task.test_fraction * len(ordered))
        if n_test >= len(ordered):
            raise ConversionError(f"task {task.name}: test_count {n_test} leaves no training case of {len(ordered)}")
        picked = set(_task_rng(seed, task.name, 0).choice(sorted(ordered), size=n_test, replace=False).tolist())
        test = sorted(picked)
        ordered = [c for c in ordered if c not in picked]
    if not ordered:
        raise ConversionError(f"{source.path}: task {task.name} has no training cases (empty task)")
    return ordered, test


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def default_labeled_count(num_training_cases: int, fraction: float) -> int:
    """round(fraction * n), at least 1: 6/12 of 62 (pancreas), 8/16 of 80 (LA), 3/6 of 30 (spleen), 5/10 of 50."""
    return max(1, round_half_up(fraction * num_training_cases))


def choose_labeled_cases(train_ids: Sequence[str], count: int, mode: str, seed: int, task_name: str) -> list[str]:
    """`count` labeled cases: seeded random choice, or the first `count` of the training list (UA-MT/BCP)."""
    if mode == "first":
        return list(train_ids[:count])
    if mode == "seeded":
        return sorted(_task_rng(seed, task_name, 1).choice(sorted(train_ids), size=count, replace=False).tolist())
    raise ConversionError(f"unknown selection mode '{mode}' (known: {', '.join(SELECTION_MODES)})")


# ---------------------------------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------------------------------
def apply_intensity_policy(image: sitk.Image, modality: str, ct_window: tuple[float, float] | None) -> sitk.Image:
    """CT: clip to the task's HU window and store int16; otherwise float32 as is (nnU-Net z-scores every case)."""
    array = sitk.GetArrayFromImage(image)
    if modality == "CT" and ct_window is not None:
        out = np.rint(np.clip(array.astype(np.float32), ct_window[0], ct_window[1])).astype(np.int16)
    else:
        out = array.astype(np.float32)
    return copy_geometry(image, sitk.GetImageFromArray(out))


@dataclass
class CaseJob:
    task_id: int
    task: TaskConfig
    source: CaseSource
    source_case_id: str
    case_id: str
    role: str  # labeled | unlabeled | test


def _write_case(job: CaseJob, out_dir: Path, ignore_value: int) -> dict:
    case = job.source.load(job.source_case_id)
    if case.label is None and job.role != "unlabeled":
        raise ConversionError(f"{job.source.path}: missing label of {job.role} case {job.source_case_id}")
    image = apply_intensity_policy(case.image, job.task.modality, job.task.ct_window)
    if job.role == "unlabeled":
        label_array = np.full(sitk.GetArrayViewFromImage(image).shape, ignore_value, dtype=np.uint8)
    else:
        label_array = (sitk.GetArrayViewFromImage(case.label) > 0).astype(np.uint8) * np.uint8(job.task_id)
    label = copy_geometry(image, sitk.GetImageFromArray(label_array))
    images, labels = ("imagesTs", "labelsTs") if job.role == "test" else ("imagesTr", "labelsTr")
    sitk.WriteImage(image, str(out_dir / images / f"{job.case_id}_0000.nii.gz"), useCompression=True)
    sitk.WriteImage(label, str(out_dir / labels / f"{job.case_id}.nii.gz"), useCompression=True)
    return {"case": job.case_id, "foreground_voxels": int((label_array == job.task_id).sum())}


def _write_case_star(args: tuple[CaseJob, Path, int]) -> dict:
    return _write_case(*args)


def _nnunet_raw_dir() -> Path:
    raw = os.environ.get("nnUNet_raw")
    if not raw:
        raise ConversionError("nnUNet_raw is not set: set it or give an output folder with -o")
    return Path(raw)


def dataset_folder_name(dataset_id: int, dataset_name: str) -> str:
    if not 1 <= int(dataset_id) <= 999:
        raise ConversionError(f"dataset id must be in 1..999, got {dataset_id}")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", dataset_name):
        raise ConversionError(f"dataset name '{dataset_name}' must only contain letters, digits, _ and -")
    return f"Dataset{int(dataset_id):03d}_{dataset_name}"


@dataclass
class ConversionPlan:
    tasks: list[TaskConfig]
    jobs: list[CaseJob]
    info: UnifiedDatasetInfo


def plan_conversion(
    config: dict,
    data_root: Path,
    labeled_fraction: float | None = None,
    labeled_counts: dict[str, int] | None = None,
    selection: str | None = None,
    seed: int | None = None,
) -> ConversionPlan:
    """Parse and validate the config, read the case lists and choose test / labeled / unlabeled cases (no writing)."""
    unknown = sorted(set(config) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConversionError(f"config: unknown top-level keys {unknown} (known: {sorted(TOP_LEVEL_KEYS)})")
    entries = config.get("tasks")
    if not isinstance(entries, list) or not entries:
        raise ConversionError("config: 'tasks' must be a non-empty list")
    tasks = [parse_task_config(entry, data_root, i) for i, entry in enumerate(entries)]
    names = [t.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConversionError(f"config: duplicate task names {duplicates}")
    labeled_counts = dict(labeled_counts or {})
    unknown_counts = sorted(set(labeled_counts) - set(names))
    if unknown_counts:
        raise ConversionError(f"--labeled-count: unknown tasks {unknown_counts} (tasks: {names})")
    seed = int(config.get("seed", 0) if seed is None else seed)
    selection = str(config.get("selection", "seeded") if selection is None else selection)
    if selection not in SELECTION_MODES:
        raise ConversionError(f"config: unknown selection mode '{selection}' (known: {', '.join(SELECTION_MODES)})")
    fraction = labeled_fraction if labeled_fraction is not None else config.get("labeled_fraction")
    fraction = DEFAULT_LABELED_FRACTION if fraction is None else float(fraction)
    if not 0 < fraction <= 1:
        raise ConversionError(f"labeled fraction must be in (0, 1], got {fraction}")

    jobs: list[CaseJob] = []
    case_to_task: dict[str, int] = {}
    labeled: list[str] = []
    unlabeled: list[str] = []
    test: list[str] = []
    budget_counts: dict[str, int] = {}
    train_counts: dict[str, int] = {}
    for task_id, task in enumerate(tasks, start=1):
        source = make_source(task)
        train_ids, test_ids = split_task_cases(task, source, seed)
        count = labeled_counts.get(task.name, task.labeled_count)
        count = default_labeled_count(len(train_ids), fraction) if count is None else int(count)
        if count < 1:
            raise ConversionError(f"task {task.name}: labeled count {count}: a task needs a labeled case (empty task)")
        if count > len(train_ids):
            raise ConversionError(
                f"task {task.name}: labeled count {count} exceeds its {len(train_ids)} training cases"
            )
        chosen = set(choose_labeled_cases(train_ids, count, selection, seed, task.name))
        budget_counts[task.name] = count
        train_counts[task.name] = len(train_ids)
        roles = [(c, "labeled" if c in chosen else "unlabeled") for c in train_ids] + [(c, "test") for c in test_ids]
        for source_id, role in roles:
            case_id = f"{task.name}_{sanitize_case_id(source_id)}"
            if case_id in case_to_task:
                raise ConversionError(f"{source.path}: duplicate case id {case_id} (from source case {source_id})")
            case_to_task[case_id] = task_id
            {"labeled": labeled, "unlabeled": unlabeled, "test": test}[role].append(case_id)
            jobs.append(CaseJob(task_id, task, source, source_id, case_id, role))

    info = UnifiedDatasetInfo(
        tasks=[Task(i, t.name, t.modality) for i, t in enumerate(tasks, start=1)],
        case_to_task=case_to_task,
        labeled=labeled,
        unlabeled=unlabeled,
        test=test,
        label_budget={
            "fraction": fraction,
            "selection": selection,
            "seed": seed,
            "labeled_counts": budget_counts,
            "training_cases": train_counts,
            "per_task_count_given": sorted(
                n
                for n in names
                if labeled_counts.get(n, None) is not None or tasks[names.index(n)].labeled_count is not None
            ),
        },
    )
    info.validate()
    return ConversionPlan(tasks, jobs, info)


def build_dataset_json(plan: ConversionPlan, dataset_name: str, description: str = "") -> dict:
    info = plan.info
    labels = {"background": 0, **{t.name: t.id for t in info.tasks}, "ignore": info.ignore_label}
    block = info.to_json_block()
    # Provenance: where each task came from and what was done to its intensities (extra keys; the contract's
    # reader ignores them).
    block["conversion"] = {
        t.name: {
            "format": t.format,
            "source": str(t.raw.get("path")),
            "labels": t.labels,
            "modality": t.modality,
            "ct_window": list(t.ct_window) if t.ct_window else None,
            "intensity": (
                f"clipped to [{t.ct_window[0]:g}, {t.ct_window[1]:g}] HU, int16" if t.ct_window else "as is, float32"
            )
            + "; z-scored per case by nnU-Net",
        }
        for t in plan.tasks
    }
    return {
        "name": dataset_name,
        "description": description or "UniSeMi unified semi-supervised multi-task dataset (nnUNetv2_unisemi_convert)",
        # Not "CT": nnU-Net's CT normalisation uses one global percentile window for all cases, wrong when CT and
        # MRI are mixed. Any other name makes nnU-Net z-score every case.
        "channel_names": {"0": "image"},
        "labels": labels,
        "numTraining": len(info.labeled) + len(info.unlabeled),
        "numTest": len(info.test),
        "file_ending": ".nii.gz",
        "overwrite_image_reader_writer": "SimpleITKIO",
        "unisemi": block,
    }


def convert_from_config(
    config: dict | str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    *,
    data_root: str | os.PathLike | None = None,
    dataset_id: int | None = None,
    dataset_name: str | None = None,
    labeled_fraction: float | None = None,
    labeled_counts: dict[str, int] | None = None,
    selection: str | None = None,
    seed: int | None = None,
    num_processes: int = 1,
    write_preprocessed_splits: bool = True,
    verbose: bool = True,
) -> Path:
    """Build one unified nnU-Net raw dataset from a task config (dict, or a YAML/JSON file); returns its folder.

    Relative source paths resolve against `data_root` (default: the config file's folder, or the cwd for a dict).
    Without `output_dir` the dataset goes to ``$nnUNet_raw/DatasetNNN_<Name>``. Nothing is written until every
    case converted: the dataset is built in a temporary folder next to the target and moved into place.
    """
    start = time.time()
    if not isinstance(config, dict):
        config_path = Path(config)
        config = load_config(config_path)
        base = Path(data_root) if data_root is not None else config_path.parent
    else:
        base = Path(data_root) if data_root is not None else Path.cwd()
    dataset_id = dataset_id if dataset_id is not None else config.get("dataset_id")
    dataset_name = dataset_name or str(config.get("dataset_name", "UniSeMi"))
    if output_dir is None:
        if dataset_id is None:
            raise ConversionError("config: no dataset_id (give one in the config, with -d, or an output folder -o)")
        raw = _nnunet_raw_dir()
        folder_name = dataset_folder_name(int(dataset_id), dataset_name)
        output_dir = raw / folder_name
        clashes = [p for p in raw.glob(f"Dataset{int(dataset_id):03d}_*") if p.name != folder_name]
        if clashes:
            raise ConversionError(f"{clashes[0]}: another dataset already uses id {int(dataset_id):03d}")
    output_dir = Path(output_dir).absolute()
    if output_dir.exists() and not overwrite:
        raise ConversionError(f"{output_dir}: output dataset already exists (use --overwrite to replace it)")

    plan = plan_conversion(config, base, labeled_fraction, labeled_counts, selection, seed)
    ignore_value = plan.info.ignore_label
    if verbose:
        for t in plan.info.tasks:
            n_lab = len(plan.info.labeled_cases_of_task(t.id))
            n_all = sum(1 for j in plan.jobs if j.task_id == t.id and j.role != "test")
            n_test = sum(1 for j in plan.jobs if j.task_id == t.id and j.role == "test")
            print(f"task {t.id} {t.name} ({t.modality}): {n_all} training cases ({n_lab} labeled), {n_test} test")

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    try:
        for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
            (tmp_dir / sub).mkdir()
        work = [(job, tmp_dir, ignore_value) for job in plan.jobs]
        if num_processes > 1:
            with ProcessPoolExecutor(max_workers=num_processes) as pool:
                results = list(pool.map(_write_case_star, work))
        else:
            results = [_write_case_star(w) for w in work]
        empty = [r["case"] for r, j in zip(results, plan.jobs, strict=True) if j.role != "unlabeled"
                 and r["foreground_voxels"] == 0]  # fmt: skip
        if empty and verbose:
            print(f"warning: {len(empty)} labeled/test cases have an empty target: {empty[:5]}", file=sys.stderr)
        dataset_json = build_dataset_json(plan, dataset_name, str(config.get("description", "")))
        UnifiedDatasetInfo.from_dataset_json(dataset_json)  # the contract's own validation, before anything is moved
        (tmp_dir / "dataset.json").write_text(json.dumps(dataset_json, indent=2), encoding="utf-8")
        splits = plan.info.semi_supervised_splits()
        (tmp_dir / "splits_final.json").write_text(json.dumps(splits, indent=2), encoding="utf-8")
        if output_dir.exists():  # only reachable with overwrite
            trash = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old-", dir=output_dir.parent))
            os.replace(output_dir, trash / output_dir.name)
            os.replace(tmp_dir, output_dir)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp_dir, output_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise

    preprocessed = os.environ.get("nnUNet_preprocessed")
    if write_preprocessed_splits and preprocessed:
        target = Path(preprocessed) / output_dir.name
        target.mkdir(parents=True, exist_ok=True)
        (target / "splits_final.json").write_text(json.dumps(splits, indent=2), encoding="utf-8")
    if verbose:
        print(
            f"wrote {output_dir}: {len(plan.info.labeled)} labeled, {len(plan.info.unlabeled)} unlabeled, "
            f"{len(plan.info.test)} test cases in {time.time() - start:.1f} s"
        )
    return output_dir


# ---------------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------------
def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--dataset-id", type=int, default=None, help="nnU-Net dataset id (NNN)")
    parser.add_argument("-n", "--dataset-name", default=None, help="dataset name (DatasetNNN_<name>)")
    parser.add_argument("-o", "--output", default=None, help="output folder (default: $nnUNet_raw/DatasetNNN_<name>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output dataset")
    parser.add_argument("--labeled-fraction", type=float, default=None, help="label budget per task (default 0.1)")
    parser.add_argument("--selection", choices=SELECTION_MODES, default=None, help="seeded (default) or first N")
    parser.add_argument("--seed", type=int, default=None, help="seed of test / labeled selection (default 0)")
    parser.add_argument("-np", "--num-processes", type=int, default=1, help="parallel case conversions")


def add_single_task_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by the single-source converters (msd, pancreas_ct, left_atrium)."""
    _add_output_arguments(parser)
    parser.add_argument("--labeled-count", type=int, default=None, help="number of labeled cases (overrides fraction)")
    parser.add_argument("--test-list", default=None, help="official test list file (one case id per line)")
    parser.add_argument("--test-fraction", type=float, default=None, help="seeded test split fraction")
    parser.add_argument("--test-count", type=int, default=None, help="seeded test split size")
    parser.add_argument("--ct-window", nargs="+", default=None, help="LO HI in HU, a preset (abdomen, lung) or none")
    parser.add_argument("--spacing", type=float, nargs="+", default=None, help="voxel spacing (h5 layouts)")
    parser.add_argument("--cases", nargs="+", default=None, help="only these source case ids")


def _run_cli(action: Callable[[], Path]) -> int:
    try:
        action()
    except ConversionError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


def run_single_task_cli(args: argparse.Namespace, task_from_args: Callable[[], dict]) -> int:
    """Build a one-task config from the parsed arguments and run it through the merge code."""

    def action() -> Path:
        task = task_from_args()
        for key in ("test_list", "test_fraction", "test_count", "labeled_count", "cases"):
            if getattr(args, key) is not None:
                task[key] = getattr(args, key)
        if args.spacing is not None:
            task["spacing"] = args.spacing[0] if len(args.spacing) == 1 else args.spacing
        if args.ct_window is not None:
            window = args.ct_window
            task["ct_window"] = window[0] if len(window) == 1 else [float(v) for v in window]
        config = {"dataset_name": args.dataset_name or task["name"].replace("_", ""), "tasks": [task]}
        if args.dataset_id is not None:
            config["dataset_id"] = args.dataset_id
        return convert_from_config(
            config,
            args.output,
            args.overwrite,
            data_root=Path.cwd(),
            labeled_fraction=args.labeled_fraction,
            selection=args.selection,
            seed=args.seed,
            num_processes=args.num_processes,
        )

    return _run_cli(action)


def _parse_labeled_counts(items: Sequence[str] | None) -> dict[str, int]:
    counts = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise ConversionError(f"--labeled-count expects TASK=N, got '{item}'")
        counts[name.strip()] = int(value)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """nnUNetv2_unisemi_convert CONFIG [-d N] [-o DIR] [--labeled-fraction 0.1|0.2] [--labeled-count TASK=N ...]"""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="task config (.yaml/.yml or .json)")
    parser.add_argument(
        "--data-root", "--shared", dest="data_root", default=None,
        help="folder that relative source paths in the config start from (default: the config file's folder)",
    )  # fmt: skip
    _add_output_arguments(parser)
    parser.add_argument(
        "--labeled-count",
        action="append",
        default=None,
        metavar="TASK=N",
        help="labeled cases of one task (repeatable; overrides the fraction for that task)",
    )
    args = parser.parse_args(argv)
    return _run_cli(
        lambda: convert_from_config(
            args.config,
            args.output,
            args.overwrite,
            data_root=args.data_root,
            dataset_id=args.dataset_id,
            dataset_name=args.dataset_name,
            labeled_fraction=args.labeled_fraction,
            labeled_counts=_parse_labeled_counts(args.labeled_count),
            selection=args.selection,
            seed=args.seed,
            num_processes=args.num_processes,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
