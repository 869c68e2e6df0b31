"""Evaluate a folder of predictions against a unified dataset's reference labels, per case and per task.

A case belongs to task k = ``case_to_task[case]`` (dataset.json's "unisemi" block). Its reference target is
``ref == k`` and its prediction target is ``pred == k``: a prediction may be a single-task mask (value k) or a
multi-label map with several tasks' values, and only the case's own task counts. Spacing comes from the reference
image header. Outputs (in ``output_dir``): ``metrics_per_case.json`` / ``.csv``, ``summary.json`` and
``summary.md`` (the paper's table: rows = tasks + "Average", columns Dice % | Jaccard % | ASD mm | 95HD mm).
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunetv2_unisemi.evaluation.metrics import DISTANCE_METRICS, OVERLAP_METRICS, compute_binary_metrics
from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo

METRICS = OVERLAP_METRICS + DISTANCE_METRICS
CSV_COLUMNS = (
    "case", "task_id", "task", *METRICS, "pred_empty", "ref_empty", "pred_voxels", "ref_voxels", "spacing",
)  # fmt: skip
METRIC_DEFINITIONS = {
    "dice": "2|P∩R|/(|P|+|R|)",
    "jaccard": "|P∩R|/|P∪R|",
    "asd": "mean distance from prediction surface voxels to the reference surface, one-directional (medpy asd)",
    "hd95": "95th percentile of the pooled surface distances of both directions, in distance_unit (medpy hd95)",
    "assd": "mean of the pooled surface distances of both directions, in distance_unit (medpy 0.5 assd)",
    "empty_policy": "both empty: dice=jaccard=1, distances 0; one empty: dice=jaccard=0, distances NaN, "
    "excluded from distance means and counted in n_distance_undefined",
}


# --- reading ------------------------------------------------------------------------------------------------------
def read_label(path: str | os.PathLike) -> tuple[np.ndarray, tuple[float, ...], sitk.Image]:
    """Label array (numpy axis order z,y,x), spacing in the same axis order, and the SimpleITK image."""
    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), tuple(float(s) for s in image.GetSpacing()[::-1]), image


def _check_same_grid(pred_img: sitk.Image, ref_img: sitk.Image, pred_file: Path, ref_file: Path) -> None:
    if pred_img.GetSize() != ref_img.GetSize():
        raise ValueError(
            f"shape mismatch: prediction {pred_file} has size {pred_img.GetSize()} (x,y,z) but reference "
            f"{ref_file} has {ref_img.GetSize()}"
        )
    if not np.allclose(pred_img.GetSpacing(), ref_img.GetSpacing(), rtol=1e-4, atol=1e-6):
        raise ValueError(
            f"spacing mismatch: prediction {pred_file} has spacing {pred_img.GetSpacing()} (x,y,z) but reference "
            f"{ref_file} has {ref_img.GetSpacing()}"
        )
    # Same voxel grid but another placement is usually a flipped export; the metrics are still voxel-wise.
    if not (
        np.allclose(pred_img.GetOrigin(), ref_img.GetOrigin(), atol=1e-3)
        and np.allclose(pred_img.GetDirection(), ref_img.GetDirection(), atol=1e-4)
    ):
        warnings.warn(f"{pred_file} and {ref_file} differ in origin or direction; comparing voxel-wise", stacklevel=2)


# --- one case -----------------------------------------------------------------------------------------------------
def evaluate_case(
    ref_file: str | os.PathLike,
    pred_file: str | os.PathLike,
    case: str,
    task_id: int,
    task_name: str,
    ignore_label: int | None = None,
    overlay_file: str | os.PathLike | None = None,
    image_file: str | os.PathLike | None = None,
    voxel_distances: bool = False,
) -> dict:
    """Metrics of one case for its task (see module docstring); optionally writes an overlay PNG.

    ``voxel_distances`` ignores the spacing (distances in voxels), as the SSL codes that call medpy without
    ``voxelspacing`` do; use it only to reproduce their numbers.
    """
    ref_file, pred_file = Path(ref_file), Path(pred_file)
    ref, spacing, ref_img = read_label(ref_file)
    pred, _, pred_img = read_label(pred_file)
    _check_same_grid(pred_img, ref_img, pred_file, ref_file)
    if ignore_label is not None and np.any(ref == ignore_label):
        raise ValueError(
            f"reference {ref_file} contains the ignore label {ignore_label}: it is an unlabeled case and cannot be "
            "evaluated"
        )
    ref_mask, pred_mask = ref == task_id, pred == task_id
    metrics = compute_binary_metrics(pred_mask, ref_mask, None if voxel_distances else spacing)
    record = {"case": case, "task_id": int(task_id), "task": task_name, **metrics.as_dict(), "spacing": list(spacing)}
    if overlay_file is not None:
        from nnunetv2_unisemi.evaluation.overlays import write_case_overlay  # matplotlib only when asked for

        title = f"{case} | {task_name} | Dice {metrics.dice:.3f}"
        write_case_overlay(ref_img, pred_img, task_id, overlay_file, image_file, title)
    return record


def _evaluate_case_star(kwargs: dict) -> dict:
    return evaluate_case(**kwargs)


# --- summary ------------------------------------------------------------------------------------------------------
def _mean_std(values: list[float]) -> dict:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    # Population std (numpy's default), over the cases where the metric is defined.
    return {"mean": float(np.mean(finite)), "std": float(np.std(finite)), "n": len(finite)}


def summarize(records: list[dict], info: UnifiedDatasetInfo, distance_unit: str = "mm") -> dict:
    """Per-task mean/std over cases, and the "Average" row = mean over tasks of the per-task means."""
    per_task = {}
    for task in info.tasks:
        rows = [r for r in records if r["task_id"] == task.id]
        if not rows:
            continue
        entry = {"task_id": task.id, "n_cases": len(rows)}
        for metric in METRICS:
            entry[metric] = _mean_std([r[metric] for r in rows])
        entry["n_pred_empty"] = sum(r["pred_empty"] for r in rows)
        entry["n_ref_empty"] = sum(r["ref_empty"] for r in rows)
        entry["n_distance_undefined"] = sum(math.isnan(r["hd95"]) for r in rows)
        per_task[task.name] = entry
    average = {"n_tasks": len(per_task), "n_cases": sum(t["n_cases"] for t in per_task.values())}
    for metric in METRICS:
        means = [t[metric]["mean"] for t in per_task.values() if not math.isnan(t[metric]["mean"])]
        average[metric] = {"mean": float(np.mean(means)) if means else math.nan, "n_tasks": len(means)}
    average["n_distance_undefined"] = sum(t["n_distance_undefined"] for t in per_task.values())
    return {"definitions": METRIC_DEFINITIONS, "distance_unit": distance_unit, "tasks": per_task, "average": average}


def format_summary_table(summary: dict, style: str = "markdown", include_assd: bool = False) -> str:
    """The paper's layout: rows = tasks + Average, Dice % | Jaccard % | ASD mm | 95HD mm as mean±std over cases.

    ``style`` is "markdown" (a pipe table) or "text" (aligned columns). The Average row is the mean over tasks of
    the per-task means and has no std. Cases whose distances are undefined (one mask empty) are counted in the
    last column.
    """
    unit = "vox" if summary.get("distance_unit") == "voxel" else "mm"
    metrics = [("dice", "Dice %", 100.0), ("jaccard", "Jaccard %", 100.0), ("asd", f"ASD {unit}", 1.0)]
    metrics.append(("hd95", f"95HD {unit}", 1.0))
    if include_assd:
        metrics.append(("assd", f"ASSD {unit}", 1.0))
    header = ["Task", "n", *[m[1] for m in metrics], "no dist."]
    rows = []
    for name, entry in summary["tasks"].items():
        cells = [name, str(entry["n_cases"])]
        for key, _, scale in metrics:
            mean, std = entry[key]["mean"], entry[key]["std"]
            cells.append("n/a" if math.isnan(mean) else f"{mean * scale:.2f} ± {std * scale:.2f}")
        cells.append(str(entry["n_distance_undefined"]))
        rows.append(cells)
    average = summary["average"]
    cells = ["Average", str(average["n_cases"])]
    for key, _, scale in metrics:
        mean = average[key]["mean"]
        cells.append("n/a" if math.isnan(mean) else f"{mean * scale:.2f}")
    cells.append(str(average["n_distance_undefined"]))
    rows.append(cells)

    if style == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    if style == "text":
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
        return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *[fmt(r) for r in rows]])
    raise ValueError(f"unknown table style '{style}' (use 'markdown' or 'text')")


# --- writing ------------------------------------------------------------------------------------------------------
def _json_safe(obj):
    """NaN is not JSON; write null so that every JSON reader accepts the files."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _refuse_to_overwrite_nnunet_summary(path: Path) -> None:
    """nnU-Net's validation folders hold its own summary.json ("foreground_mean"); never clobber it."""
    if not path.is_file():
        return
    try:
        with open(path, encoding="utf-8") as f:
            existing = json.load(f)
    except (OSError, ValueError):
        return
    if isinstance(existing, dict) and "foreground_mean" in existing:
        raise FileExistsError(f"{path} is nnU-Net's own evaluation summary; choose another output folder (-o)")


def write_outputs(records: list[dict], summary: dict, output_dir: str | os.PathLike) -> dict[str, Path]:
    output_dir = Path(output_dir)
    _refuse_to_overwrite_nnunet_summary(output_dir / "summary.json")
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "per_case_json": output_dir / "metrics_per_case.json",
        "per_case_csv": output_dir / "metrics_per_case.csv",
        "summary_json": output_dir / "summary.json",
        "summary_md": output_dir / "summary.md",
    }
    with open(paths["per_case_json"], "w", encoding="utf-8") as f:
        json.dump(_json_safe(records), f, indent=2, allow_nan=False)
    with open(paths["per_case_csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in records:
            # NaN is written as "nan", which pandas and numpy read back as NaN.
            writer.writerow({**r, "spacing": "x".join(f"{s:g}" for s in r["spacing"])})
    with open(paths["summary_json"], "w", encoding="utf-8") as f:
        json.dump(_json_safe(summary), f, indent=2, allow_nan=False)
    with open(paths["summary_md"], "w", encoding="utf-8") as f:
        f.write(format_summary_table(summary, "markdown") + "\n")
    return paths


# --- folder -------------------------------------------------------------------------------------------------------
def _load_dataset_json(dataset_json: dict | str | os.PathLike | None, ref_dir: Path) -> dict:
    if isinstance(dataset_json, dict):
        return dataset_json
    path = Path(dataset_json) if dataset_json is not None else ref_dir.parent / "dataset.json"
    if path.is_dir():
        path = path / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(f"dataset.json not found at {path} (pass it with -dj)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def evaluate_folder(
    ref_dir: str | os.PathLike,
    pred_dir: str | os.PathLike,
    dataset_json: dict | str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    task: str | int | None = None,
    num_processes: int = 1,
    overlays: bool = False,
    image_dir: str | os.PathLike | None = None,
    allow_missing: bool = False,
    voxel_distances: bool = False,
    verbose: bool = True,
) -> dict:
    """Evaluate every reference case (of ``task`` if given) and write the outputs; returns the summary dict.

    ``dataset_json`` defaults to ``ref_dir/../dataset.json``, ``output_dir`` to ``pred_dir``, ``image_dir`` (for
    overlays) to ``ref_dir/../imagesTs``. A missing prediction is an error unless ``allow_missing``. Distances are
    in mm from the reference header, or in voxels with ``voxel_distances`` (to reproduce SSL scripts that pass no
    spacing to medpy). The summary also holds the per-case records under "cases" and the written file paths under
    "files".
    """
    ref_dir, pred_dir = Path(ref_dir), Path(pred_dir)
    output_dir = Path(output_dir) if output_dir is not None else pred_dir
    if not ref_dir.is_dir():
        raise FileNotFoundError(f"reference folder {ref_dir} does not exist")
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"prediction folder {pred_dir} does not exist")
    _refuse_to_overwrite_nnunet_summary(output_dir / "summary.json")  # before any work, not after it
    dj = _load_dataset_json(dataset_json, ref_dir)
    info = UnifiedDatasetInfo.from_dataset_json(dj)
    file_ending = dj.get("file_ending", ".nii.gz")
    only_task = info.task_by_name_or_id(task) if task is not None else None
    task_names = {t.id: t.name for t in info.tasks}
    image_dir = Path(image_dir) if image_dir is not None else ref_dir.parent / "imagesTs"

    jobs, missing = [], []
    for ref_file in sorted(ref_dir.glob(f"*{file_ending}")):
        case = ref_file.name[: -len(file_ending)]
        if case not in info.case_to_task:
            raise KeyError(f"reference case '{case}' ({ref_file}) is not in dataset.json's unisemi.case_to_task")
        task_id = info.case_to_task[case]
        if only_task is not None and task_id != only_task.id:
            continue
        pred_file = pred_dir / f"{case}{file_ending}"
        if not pred_file.is_file():
            missing.append(pred_file)
            continue
        job = {
            "ref_file": ref_file, "pred_file": pred_file, "case": case, "task_id": task_id,
            "task_name": task_names[task_id], "ignore_label": info.ignore_label, "voxel_distances": voxel_distances,
        }  # fmt: skip
        if overlays:
            job["overlay_file"] = output_dir / "overlays" / f"{case}.png"
            job["image_file"] = image_dir / f"{case}_0000{file_ending}"
        jobs.append(job)
    if missing and not allow_missing:
        raise FileNotFoundError(
            f"{len(missing)} prediction(s) missing, e.g. {missing[0]} (reference cases without prediction: "
            f"{', '.join(p.name for p in missing[:5])}{' ...' if len(missing) > 5 else ''})"
        )
    if not jobs:
        raise FileNotFoundError(
            f"nothing to evaluate: no reference files *{file_ending} in {ref_dir}"
            + (f" for task {only_task.name}" if only_task else "")
            + (" with a prediction" if missing else "")
        )

    if num_processes > 1 and len(jobs) > 1:
        # spawn, like nnU-Net: forking a process that holds torch/threads can deadlock.
        with multiprocessing.get_context("spawn").Pool(min(num_processes, len(jobs))) as pool:
            records = pool.map(_evaluate_case_star, jobs)
    else:
        records = [evaluate_case(**job) for job in jobs]

    summary = summarize(records, info, "voxel" if voxel_distances else "mm")
    summary["n_missing_predictions"] = len(missing)
    files = write_outputs(records, summary, output_dir)
    if verbose:
        print(format_summary_table(summary, "text"))
        print(f"\nper-case metrics: {files['per_case_csv']}\nsummary: {files['summary_json']}, {files['summary_md']}")
        if missing:
            print(f"WARNING: {len(missing)} reference case(s) had no prediction and were skipped")
    summary["cases"] = records
    summary["files"] = {k: str(v) for k, v in files.items()}
    return summary
