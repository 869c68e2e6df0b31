"""``nnUNetv2_evaluate_unisemi``: per-case, per-task Dice / Jaccard / ASD / 95HD of a prediction folder."""

from __future__ import annotations

import argparse
import sys

from nnunetv2_unisemi.evaluation.evaluate import evaluate_folder


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnUNetv2_evaluate_unisemi",
        description="Evaluate UniSeMi predictions per case and task with the SSL literature's metrics "
        "(Dice, Jaccard, ASD = one-directional prediction->reference mean surface distance, 95HD = 95th percentile "
        "of the pooled surface distances, ASSD; medpy definitions, mm from the reference header). Writes "
        "metrics_per_case.json/.csv, summary.json and summary.md (paper layout).",
    )
    p.add_argument("-ref", required=True, help="folder of reference label files, e.g. <dataset>/labelsTs")
    p.add_argument("-pred", required=True, help="folder of predictions (<case><file_ending>)")
    p.add_argument("-dj", default=None, help="dataset.json of the unified dataset (default: -ref's parent folder)")
    p.add_argument("-o", default=None, help="output folder (default: the -pred folder)")
    p.add_argument("-task", default=None, help="evaluate only this task (name or id); default: every task")
    p.add_argument("-np", type=int, default=1, help="number of processes (default 1)")
    p.add_argument("--overlays", action="store_true", help="write PNG overlays to <output>/overlays/<case>.png")
    p.add_argument("-img", default=None, help="image folder for overlays (default: -ref's sibling imagesTs)")
    p.add_argument("--chill", action="store_true", help="skip reference cases without a prediction instead of failing")
    p.add_argument(
        "--voxel_distances",
        action="store_true",
        help="ASD/95HD/ASSD in voxels instead of mm (spacing ignored), only to reproduce SSL scripts that call medpy "
        "without voxelspacing",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.stdout.reconfigure(errors="backslashreplace")  # the table has a '±'; never crash on an ASCII console
    try:
        evaluate_folder(
            args.ref,
            args.pred,
            dataset_json=args.dj,
            output_dir=args.o,
            task=args.task,
            num_processes=args.np,
            overlays=args.overlays,
            image_dir=args.img,
            allow_missing=args.chill,
            voxel_distances=args.voxel_distances,
        )
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as e:
        # Input problems (missing file, unknown task, grid mismatch) deserve a message, not a traceback.
        raise SystemExit(f"nnUNetv2_evaluate_unisemi: error: {e.args[0] if e.args else e}") from e


if __name__ == "__main__":
    main()
