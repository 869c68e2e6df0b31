"""t-SNE of per-case bottleneck embeddings coloured by task (paper Fig. 7), one panel per trained model.

    python benchmarks/analysis_tsne.py \
        -m $nnUNet_results/Dataset990_UniSeMiDemo/nnUNetTrainerUniSeMi_CPU__nnUNetPlans__3d_cpu \
           $nnUNet_results/Dataset990_UniSeMiDemo/nnUNetTrainerUniBCP_CPU__nnUNetPlans__3d_cpu \
        -o tsne.png

Each model folder is nnU-Net's training output folder (plans.json, dataset.json, fold_<f>/). The cases are the
dataset's labeled and unlabeled training cases, read from the model configuration's preprocessed folder
($nnUNet_preprocessed/<dataset>/<data identifier>, or -p). The embeddings are also written to <output>.npz
(features per model, case ids, task ids).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nnunetv2_unisemi.analysis.embeddings import case_embeddings, plot_tsne, tsne_2d
from nnunetv2_unisemi.analysis.model_loading import (
    default_preprocessed_folder,
    iterate_preprocessed_cases,
    load_trained_model,
)


def select_cases(info, tasks: list[int] | None, max_cases_per_task: int | None) -> list[str]:
    cases = []
    for task in info.tasks:
        if tasks and task.id not in tasks:
            continue
        of_task = sorted(c for c in info.labeled + info.unlabeled if info.case_to_task[c] == task.id)
        cases += of_task[:max_cases_per_task] if max_cases_per_task else of_task
    return cases


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--models", nargs="+", required=True, help="trained model folders (one panel each)")
    parser.add_argument("-o", "--output", required=True, help="output PNG")
    parser.add_argument("-p", "--preprocessed", default=None, help="preprocessed folder (default: from the plans)")
    parser.add_argument("-f", "--fold", default="0", help="fold of every model (default 0)")
    parser.add_argument("-chk", "--checkpoint", default="checkpoint_final.pth")
    parser.add_argument("-t", "--tasks", nargs="*", default=None, help="task names or ids (default: all)")
    parser.add_argument("--mode", choices=("center", "tiles"), default="center",
                        help="embedding of the central patch or the mean over tiles covering the case")
    parser.add_argument("--max_cases_per_task", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-device", default="cpu")
    args = parser.parse_args(argv)

    fold = args.fold if args.fold == "all" else int(args.fold)
    panels, arrays = [], {}
    for folder in args.models:
        model = load_trained_model(folder, fold, args.checkpoint, args.device)
        info = model.info
        tasks = [info.task_by_name_or_id(t).id for t in args.tasks] if args.tasks else None
        cases = select_cases(info, tasks, args.max_cases_per_task)
        preprocessed = args.preprocessed or default_preprocessed_folder(model)
        features, ids, task_ids = case_embeddings(model.network, iterate_preprocessed_cases(preprocessed, cases),
                                                  info.case_to_task, model.configuration_manager.patch_size,
                                                  args.mode, args.device)
        coords = tsne_2d(features, args.seed)
        title = model.trainer_name
        panels.append((title, coords, task_ids))
        arrays[f"{title}_features"], arrays[f"{title}_tsne"] = features, coords
        arrays[f"{title}_cases"], arrays[f"{title}_tasks"] = np.asarray(ids), task_ids
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    plot_tsne(panels, {t.id: t.name for t in info.tasks}, output)
    np.savez(output.with_suffix(".npz"), **arrays)
    print(f"t-SNE of {len(panels)} model(s) written to {output}")
    return output


if __name__ == "__main__":
    main()
