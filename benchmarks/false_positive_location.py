"""Where are a model's false-positive voxels? Near the reference's surface (a mask a little too thick, a calibration
matter) or far from it (another structure taken for the target)? Written for the left atrium of the benchmark,
whose masks in the shared model were a median 1.35 times the reference's volume at 1800 iterations
(docs/BENCHMARKS.md, "A longer schedule"), to compare two models on the same held-out cases.

Per case: Dice, predicted / reference volume, the share of false-positive voxels farther than --far-mm from the
reference, their share outside the reference's extent along the first array axis (slices above or below the
structure), and the Dice after keeping the largest connected component (nnU-Net's own post-processing). With
--other, the masks of other prompts on the same cases (e.g. `nnUNetv2_predict_unisemi -task all
--separate_task_files`): their volume against the reference's and the share of the false positives they also cover
(do the target's false positives come from features the other tasks learned?). With --confidence t and
probabilities saved beside the masks (`--save_probabilities`: <case>.npz, channel = label value): the share of the
true- and false-positive voxels whose probability is >= t, i.e. how many of each a confidence mask on pseudo labels
would keep.

    python benchmarks/false_positive_location.py \
        --pred benchmark_runs/v7/Dataset801_UniSeMiBench10/iter1800/seed0/pred/<method> \
        --ref benchmark_runs/v7/nnUNet_raw/Dataset801_UniSeMiBench10/labelsTs --prefix left_atrium_
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from acvl_utils.morphology.morphology_helper import remove_all_but_largest_component
from scipy import ndimage

from nnunetv2_unisemi.evaluation.evaluate import _check_same_grid, read_label


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    # the evaluation's compute_binary_metrics gives the same Dice but also computes the surface distances (medpy)
    total = pred.sum() + ref.sum()
    return 2.0 * float((pred & ref).sum()) / float(total) if total else 1.0


def false_positive_location(pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...], far_mm: float,
                            other: np.ndarray | None = None, probability: np.ndarray | None = None,
                            confidence: float | None = None) -> dict:
    """Measures of one case's masks (binary arrays on the same grid, spacing in the arrays' axis order); `other`:
    the union of other prompts' masks on the same case; `probability`: the prediction's foreground probability,
    with `confidence` the level at which a voxel counts as confident."""
    if probability is not None and confidence is None:
        raise ValueError("probability needs a confidence level")
    if not ref.any():
        raise ValueError("the reference is empty: no surface to measure false positives from")
    false_positive = pred & ~ref
    distance = ndimage.distance_transform_edt(~ref, sampling=spacing)[false_positive]
    slices = np.flatnonzero(ref.any(axis=tuple(range(1, ref.ndim))))
    fp_slices = np.nonzero(false_positive)[0]
    n_fp = int(false_positive.sum())
    return {
        "dice": dice(pred, ref),
        "volume_ratio": float(pred.sum()) / float(ref.sum()),
        "fp_share_of_prediction": n_fp / float(pred.sum()) if pred.any() else 0.0,
        "fp_far_share": float((distance > far_mm).mean()) if n_fp else 0.0,
        "fp_outside_slices_share": float(((fp_slices < slices[0]) | (fp_slices > slices[-1])).mean()) if n_fp else 0.0,
        "dice_largest_component": dice(remove_all_but_largest_component(pred), ref),  # nnU-Net's post-processing
    } | ({} if other is None else {
        "other_volume_ratio": float(other.sum()) / float(ref.sum()),
        "fp_covered_by_other": float((false_positive & other).sum()) / n_fp if n_fp else 0.0,
    }) | ({} if probability is None else {
        "tp_confident_share": float((probability[pred & ref] >= confidence).mean()) if (pred & ref).any() else 0.0,
        "fp_confident_share": float((probability[false_positive] >= confidence).mean()) if n_fp else 0.0,
    })


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", required=True, type=Path, help="folder of predicted masks")
    parser.add_argument("--ref", required=True, type=Path, help="folder of reference masks (same file names)")
    parser.add_argument("--prefix", default="", help="only reference files whose name starts with this")
    parser.add_argument("--other", type=Path, nargs="*", default=[],
                        help="folders of other prompts' masks of the same cases (same file names)")
    parser.add_argument("--confidence", type=float, default=None,
                        help="with probabilities (<case>.npz) beside the predictions: share of TP / FP voxels >= this")
    parser.add_argument("--predicted-only", action="store_true",
                        help="measure only the cases with a prediction (default: a missing prediction is an error)")
    parser.add_argument("--far-mm", type=float, default=10.0, help="a false positive farther than this is 'far'")
    args = parser.parse_args(argv)

    refs = sorted(args.ref.glob(f"{args.prefix}*.nii.gz"))
    if args.predicted_only:
        refs = [r for r in refs if (args.pred / r.name).is_file()]
    if not refs:
        raise SystemExit(f"no reference files {args.prefix}*.nii.gz in {args.ref}")
    rows = []
    for ref_file in refs:
        pred_file = args.pred / ref_file.name
        if not pred_file.is_file():
            raise SystemExit(f"{pred_file}: the prediction of {ref_file.name} is missing")
        pred, _, pred_img = read_label(pred_file)
        ref, spacing, ref_img = read_label(ref_file)
        _check_same_grid(pred_img, ref_img, pred_file, ref_file)
        other = None
        for folder in args.other:
            other_file = folder / ref_file.name
            if not other_file.is_file():
                raise SystemExit(f"{other_file}: the other prompt's mask of {ref_file.name} is missing")
            mask, _, other_img = read_label(other_file)
            _check_same_grid(other_img, ref_img, other_file, ref_file)
            other = mask > 0 if other is None else other | (mask > 0)
        probability = None
        if args.confidence is not None:
            npz = args.pred / (ref_file.name[:-7] + ".npz")
            if not npz.is_file():
                raise SystemExit(f"{npz}: no probabilities (predict with --save_probabilities)")
            probability = np.load(npz)["probabilities"][int(ref.max())]
            if probability.shape != ref.shape:
                raise SystemExit(f"{npz}: probabilities of shape {probability.shape}, the reference is {ref.shape}")
        rows.append((ref_file.name[:-7], false_positive_location(pred > 0, ref > 0, spacing, args.far_mm, other,
                                                                 probability, args.confidence)))

    keys = list(rows[0][1])
    print("| case | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for case, row in rows:
        print(f"| {case} | " + " | ".join(f"{row[k]:.2f}" for k in keys) + " |")
    print("| **median** | " + " | ".join(f"{statistics.median(r[k] for _, r in rows):.2f}" for k in keys) + " |")
    print("| **mean** | " + " | ".join(f"{statistics.fmean(r[k] for _, r in rows):.3f}" for k in keys) + " |")


if __name__ == "__main__":
    sys.exit(main())
