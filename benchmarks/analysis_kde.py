"""Kernel density of predicted foreground probabilities on labeled vs unlabeled training cases, per task (Fig. 5).

    python benchmarks/analysis_kde.py \
        -m $nnUNet_results/Dataset990_UniSeMiDemo/nnUNetTrainerUniSeMi_CPU__nnUNetPlans__3d_cpu -o kde_unisemi.png
    # a single-task comparison model: its fold is its task id
    python benchmarks/analysis_kde.py -m .../nnUNetTrainerBCP_CPU__nnUNetPlans__3d_cpu -f 3 -t 3 -o kde_bcp_3.png

Each case contributes the probability of its own task on its central patch (voxels above --min_prob). The voxel
counts per task and group are written next to the PNG as <output>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nnunetv2_unisemi.analysis.model_loading import (
    default_preprocessed_folder,
    iterate_preprocessed_cases,
    load_trained_model,
)
from nnunetv2_unisemi.analysis.probability_density import collect_probabilities, plot_labeled_unlabeled_density


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", required=True, help="trained model folder")
    parser.add_argument("-o", "--output", required=True, help="output PNG")
    parser.add_argument("-p", "--preprocessed", default=None, help="preprocessed folder (default: from the plans)")
    parser.add_argument("-f", "--fold", default="0")
    parser.add_argument("-chk", "--checkpoint", default="checkpoint_final.pth")
    parser.add_argument("-t", "--tasks", nargs="*", default=None, help="task names or ids (default: all)")
    parser.add_argument("--min_prob", type=float, default=0.01, help="leave out voxels at or below this probability")
    parser.add_argument("--max_voxels_per_case", type=int, default=20000)
    parser.add_argument("-device", default="cpu")
    args = parser.parse_args(argv)

    model = load_trained_model(args.model, args.fold if args.fold == "all" else int(args.fold), args.checkpoint,
                               args.device)
    info = model.info
    tasks = [info.task_by_name_or_id(t).id for t in args.tasks] if args.tasks else [t.id for t in info.tasks]
    cases = sorted(c for c in info.labeled + info.unlabeled if info.case_to_task[c] in tasks)
    preprocessed = args.preprocessed or default_preprocessed_folder(model)
    probabilities = collect_probabilities(model.network, iterate_preprocessed_cases(preprocessed, cases),
                                          info.case_to_task, model.configuration_manager.patch_size, args.min_prob,
                                          args.max_voxels_per_case, device=args.device)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    names = {t.id: t.name for t in info.tasks if t.id in tasks}
    counts = plot_labeled_unlabeled_density(probabilities, info.case_to_task, info.labeled, names, output,
                                            title=model.trainer_name)
    by_name = {names[t]: c for t, c in counts.items()}
    output.with_suffix(".json").write_text(json.dumps(by_name, indent=1), encoding="utf-8")
    print(f"density of {len(cases)} cases written to {output}")
    return output


if __name__ == "__main__":
    main()
