"""nnUNetv2_predict_unisemi: nnUNetv2_predict's flags (same names and meaning) plus -task."""

from __future__ import annotations

import argparse
import multiprocessing
import os

import torch

from nnunetv2_unisemi.inference.predictor import ALL, SYNTHETIC, UniSeMiPredictor, check_input_channels


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Predict with a UniSeMi model and a task prompt. All nnUNetv2_predict "
                                            "flags keep their names and meaning; -task selects the prompt(s).")
    p.add_argument("-i", required=True, help="input folder (files <case>_0000<ending>, as for nnUNetv2_predict)")
    p.add_argument("-o", required=True, help="output folder (created if missing)")
    p.add_argument("-d", required=True, help="dataset name or id")
    p.add_argument("-task", required=True,
                   help=f"task name or id (binary mask with value = task id), '{ALL}' (every task from one backbone "
                        f"pass: one multi-label map, or one file per task with --separate_task_files) or "
                        f"'{SYNTHETIC}' (the synthetic all-foreground prompt, written as a binary mask of value 1)")
    p.add_argument("--separate_task_files", action="store_true",
                   help=f"with -task {ALL}: write <output>/<task name>/<case> per task instead of one map")
    p.add_argument("-p", default="nnUNetPlans", help="plans identifier. Default: nnUNetPlans")
    p.add_argument("-tr", default="nnUNetTrainerUniSeMi", help="trainer class. Default: nnUNetTrainerUniSeMi")
    p.add_argument("-c", required=True, help="configuration, e.g. 3d_fullres or 3d_cpu")
    p.add_argument("-f", nargs="+", default=["0"], help="folds to use (ensembled). Default: 0, the semi-supervised "
                                                       "split's single fold")
    p.add_argument("-step_size", type=float, default=0.5, help="sliding window step size. Default: 0.5")
    p.add_argument("--disable_tta", action="store_true", help="disable mirroring test-time augmentation")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--save_probabilities", action="store_true", help="also export probabilities (.npz)")
    p.add_argument("--continue_prediction", action="store_true", help="do not overwrite existing outputs")
    p.add_argument("-chk", default="checkpoint_final.pth", help="checkpoint name. Default: checkpoint_final.pth")
    p.add_argument("-npp", type=int, default=3, help="processes for preprocessing. Default: 3")
    p.add_argument("-nps", type=int, default=3, help="processes for segmentation export. Default: 3")
    p.add_argument("-prev_stage_predictions", default=None, help="cascade: folder of previous stage predictions")
    p.add_argument("-num_parts", type=int, default=1, help="number of separate calls sharing the cases")
    p.add_argument("-part_id", type=int, default=0, help="which of the -num_parts calls this is")
    p.add_argument("-device", default="cuda", choices=["cuda", "cpu", "mps"], help="Default: cuda")
    p.add_argument("--disable_progress_bar", action="store_true")
    p.add_argument("--not_on_device", action="store_true", help="keep results arrays off the GPU")
    return p


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    if args.part_id >= args.num_parts:
        raise SystemExit(f"-part_id {args.part_id} must be smaller than -num_parts {args.num_parts}")
    if not os.path.isdir(args.i):
        raise SystemExit(f"input folder {args.i} does not exist")
    folds = [f if f == "all" else int(f) for f in args.f]
    model_folder = get_output_folder(args.d, args.tr, args.p, args.c)
    if not os.path.isdir(model_folder):
        raise SystemExit(f"no trained model in {model_folder} (check -d, -tr, -p, -c and nnUNet_results)")
    if args.device == "cpu":
        torch.set_num_threads(multiprocessing.cpu_count())
    device = torch.device(args.device)
    predictor = UniSeMiPredictor(tile_step_size=args.step_size, use_gaussian=True, use_mirroring=not args.disable_tta,
                                 perform_everything_on_device=not args.not_on_device, device=device,
                                 verbose=args.verbose, allow_tqdm=not args.disable_progress_bar,
                                 separate_task_files=args.separate_task_files)
    try:
        predictor.initialize_from_trained_model_folder(model_folder, folds, args.chk)
        selection = predictor.set_task(args.task)
        n_cases = check_input_channels(args.i, predictor.dataset_json)
    except (KeyError, ValueError, TypeError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e.args[0] if e.args else e}") from e
    names = ", ".join(predictor.task_names[t] for t in selection)
    print(f"{n_cases} case(s) from {args.i} -> {args.o}, prompt(s): {names}")
    os.makedirs(args.o, exist_ok=True)
    predictor.predict_from_files(args.i, args.o, save_probabilities=args.save_probabilities,
                                 overwrite=not args.continue_prediction, num_processes_preprocessing=args.npp,
                                 num_processes_segmentation_export=args.nps,
                                 folder_with_segs_from_prev_stage=args.prev_stage_predictions,
                                 num_parts=args.num_parts, part_id=args.part_id)


if __name__ == "__main__":
    main()
