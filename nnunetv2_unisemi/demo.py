"""nnUNetv2_unisemi_demo: the whole UniSeMi workflow on a generated 3-task data set, on the CPU, no download.

Steps (each is the command a user runs on real data; the demo prints them):
  1. write synthetic sources in three public layouts (MSD NIfTI, UA-MT h5, pancreas h5)
  2. nnUNetv2_unisemi_convert      -> one nnU-Net dataset with task channels and labeled/unlabeled lists
  3. nnUNetv2_plan_and_preprocess  + nnUNetv2_unisemi_add_plans (small CPU configuration)
  4. nnUNetv2_train ... -tr nnUNetTrainerUniSeMi_Demo -device cpu
  5. nnUNetv2_predict_unisemi -task all (one backbone pass for every task) and -task <one task>
  6. nnUNetv2_evaluate_unisemi    -> Dice / Jaccard / ASD / 95HD per task + PNG overlays
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from nnunetv2_unisemi.trainer_dir import register_trainer_dir

DEMO_TRAINER = "nnUNetTrainerUniSeMi_Demo"
CONFIG = "3d_cpu"


def step(number: int, total: int, text: str) -> None:
    print(f"\n[{number}/{total}] {text}", flush=True)


def run(cmd: list[str], env: dict, quiet: bool = False) -> None:
    print("  $ " + " ".join(cmd), flush=True)
    executable = Path(sys.executable).parent / cmd[0]
    full = [str(executable) if executable.exists() else cmd[0], *cmd[1:]]
    proc = subprocess.run(full, env=env, stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT,
                          text=True, encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        if quiet and proc.stdout:
            print(proc.stdout[-4000:])
        raise SystemExit(f"demo step failed: {' '.join(cmd)} (exit code {proc.returncode})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", default="unisemi_demo_output", help="working folder (default ./unisemi_demo_output)")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing demo folder first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-device", default="cpu", choices=["cpu", "cuda", "mps"])
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(errors="backslashreplace")  # the results table has a '±'; never crash on an ASCII console

    from dataset_conversion.merge_tasks import convert_from_config
    from dataset_conversion.synthetic import make_demo_sources
    from nnunetv2_unisemi.evaluation.evaluate import evaluate_folder, format_summary_table

    work = Path(args.o).resolve()
    if work.exists():
        if not args.overwrite:
            raise SystemExit(f"{work} exists: pass --overwrite to replace it, or -o another folder")
        shutil.rmtree(work)
    start = time.time()
    # the demo keeps its nnU-Net folders to itself, whatever the user's environment says
    env = dict(os.environ, nnUNet_raw=str(work / "nnUNet_raw"), nnUNet_preprocessed=str(work / "nnUNet_preprocessed"),
               nnUNet_results=str(work / "nnUNet_results"), nnUNet_n_proc_DA=os.environ.get("nnUNet_n_proc_DA", "2"),
               nnUNet_def_n_proc=os.environ.get("nnUNet_def_n_proc", "2"))
    os.environ.update({k: env[k] for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")})
    register_trainer_dir()
    env["nnUNet_extTrainer"] = os.environ["nnUNet_extTrainer"]
    total = 6

    step(1, total, "writing synthetic source data sets (spleen-like CT in MSD layout, left-atrium-like MRI in "
                   "UA-MT h5 layout, pancreas-like CT in h5 layout)")
    config = make_demo_sources(work / "sources", seed=args.seed)

    step(2, total, "converting them into ONE nnU-Net dataset with task channels (nnUNetv2_unisemi_convert)")
    raw = convert_from_config(config, overwrite=True)
    dataset = raw.name
    dataset_id = str(config["dataset_id"])

    step(3, total, "planning and preprocessing with nnU-Net, adding the small CPU configuration")
    run(["nnUNetv2_plan_and_preprocess", "-d", dataset_id, "-c", "3d_fullres", "-np", "2",
         "--verify_dataset_integrity"], env, quiet=True)
    run(["nnUNetv2_unisemi_add_plans", "-d", dataset_id, "-c", CONFIG], env)

    step(4, total, f"training UniSeMi ({DEMO_TRAINER}: 8 epochs x 25 steps; labeled + synthetic task + "
                   "unlabeled self-consistency in one backbone pass per step)")
    run(["nnUNetv2_train", dataset_id, CONFIG, "0", "-tr", DEMO_TRAINER, "-device", args.device], env)

    step(5, total, "predicting the held-out test cases with task prompts")
    pred_all = work / "predictions_all_tasks"
    common = ["-d", dataset_id, "-c", CONFIG, "-tr", DEMO_TRAINER, "-device", args.device, "-npp", "1", "-nps", "1",
              "--disable_progress_bar"]
    run(["nnUNetv2_predict_unisemi", "-i", str(raw / "imagesTs"), "-o", str(pred_all), "-task", "all",
         "--separate_task_files", *common], env, quiet=True)
    first_task = config["tasks"][0]["name"]
    pred_one = work / f"predictions_{first_task}"
    run(["nnUNetv2_predict_unisemi", "-i", str(raw / "imagesTs"), "-o", str(pred_one), "-task", first_task,
         *common], env, quiet=True)

    step(6, total, "evaluating each test case with its own task's mask (Dice, Jaccard, ASD, 95HD) + overlays")
    own_task = work / "predictions_own_task"
    own_task.mkdir()
    from nnunetv2_unisemi.unified_dataset import UnifiedDatasetInfo

    info = UnifiedDatasetInfo.from_dataset_json(raw)
    for case in info.test:
        name = info.tasks[info.case_to_task[case] - 1].name
        shutil.copy(pred_all / name / f"{case}.nii.gz", own_task / f"{case}.nii.gz")
    summary = evaluate_folder(raw / "labelsTs", own_task, raw / "dataset.json", work / "evaluation", overlays=True,
                              image_dir=raw / "imagesTs", verbose=False)
    print("\n" + format_summary_table(summary, style="text"))

    model = work / "nnUNet_results" / dataset / f"{DEMO_TRAINER}__nnUNetPlans__{CONFIG}" / "fold_0"
    print(f"\nDemo finished in {(time.time() - start) / 60:.1f} min. Where things are:")
    print(f"  unified dataset      {raw}")
    print(f"  trained model        {model}  (training log, progress.png, progress_unisemi.png)")
    print(f"  predictions, all     {pred_all}/<task>/  (one backbone pass for every task)")
    print(f"  predictions, {first_task:<7} {pred_one}")
    print(f"  metrics              {work / 'evaluation'}/summary.md, metrics_per_case.csv")
    print(f"  overlays             {work / 'evaluation' / 'overlays'}")


if __name__ == "__main__":
    main()
