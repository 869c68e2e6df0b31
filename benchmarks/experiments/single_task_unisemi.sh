#!/bin/bash
# Experiment: is UniSeMi's deficit on the left atrium the method, or sharing one model across three tasks?
# Trains a benchmark trainer on the left-atrium cases of Dataset801 alone (its 6 labeled + 54 unlabeled training
# cases; same preprocessing, patch, network and 600 iterations as the benchmark), predicts the 20 left-atrium test
# cases with the left-atrium prompt and evaluates them. Results: docs/BENCHMARKS.md, "One task alone".
#
#   bash benchmarks/experiments/single_task_unisemi.sh nnUNetTrainerUniSeMi [seed_tag]
#   bash benchmarks/experiments/single_task_unisemi.sh nnUNetTrainerUniSeMi_NoUnlabeled [seed_tag]
#
# Needs the benchmark's dataset (benchmark_runs/nnUNet_raw and nnUNet_preprocessed, made by run_benchmark.py). The
# left-atrium-only split is fold 4 of a copy of splits_final.json in benchmark_runs/diag_la/ (the benchmark's own
# splits file is not touched: its harness expects exactly folds 0-3); everything else there is a symlink.
set -euo pipefail
trainer=$1
tag=${2:-}
cd "$(dirname "$0")/../.."
root=$PWD/benchmark_runs
diag=$root/diag_la
pre=$diag/nnUNet_preprocessed/Dataset801_UniSeMiBench10
if [ ! -f "$pre/splits_final.json" ]; then
  mkdir -p "$pre"
  for f in "$root"/nnUNet_preprocessed/Dataset801_UniSeMiBench10/*; do
    [ "$(basename "$f")" = splits_final.json ] || ln -sf "$f" "$pre/$(basename "$f")"
  done
  python - "$root" "$pre" <<'EOF'
import json, sys
root, pre = sys.argv[1:]
splits = json.load(open(f"{root}/nnUNet_preprocessed/Dataset801_UniSeMiBench10/splits_final.json"))
u = json.load(open(f"{root}/nnUNet_raw/Dataset801_UniSeMiBench10/dataset.json"))["unisemi"]
labeled = sorted(c for c in u["labeled"] if u["case_to_task"][c] == 1)
unlabeled = sorted(c for c in u["unlabeled"] if u["case_to_task"].get(c) == 1)
splits = splits[:4] + [{"train": sorted(labeled + unlabeled), "val": labeled}]
json.dump(splits, open(f"{pre}/splits_final.json", "w"), indent=2)
EOF
fi
export nnUNet_raw=$root/nnUNet_raw nnUNet_preprocessed=$diag/nnUNet_preprocessed
export nnUNet_results=$diag/results$tag/$trainer nnUNet_extTrainer=$PWD/benchmarks/trainers
export nnUNet_n_proc_DA=1 nnUNet_compile=f OMP_NUM_THREADS=1 UNISEMI_BENCH_THREADS=1
nnUNetv2_train 801 3d_cpu 4 -tr "${trainer}_bench600" -device cpu
nnUNetv2_predict_unisemi -i "$root/Dataset801_UniSeMiBench10/test_inputs/left_atrium" -o "$diag/pred$tag/$trainer" \
  -d 801 -c 3d_cpu -tr "${trainer}_bench600" -device cpu -npp 1 -nps 1 --disable_progress_bar --disable_tta -f 4 \
  -task left_atrium
python -c "
from nnunetv2_unisemi.evaluation.evaluate import evaluate_folder
evaluate_folder('$nnUNet_raw/Dataset801_UniSeMiBench10/labelsTs', '$diag/pred$tag/$trainer', allow_missing=True,
                dataset_json='$nnUNet_raw/Dataset801_UniSeMiBench10/dataset.json', output_dir='$diag/eval$tag/$trainer',
                num_processes=1, verbose=False)
"
