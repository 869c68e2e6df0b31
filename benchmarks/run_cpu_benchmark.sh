#!/usr/bin/env bash
# The CPU benchmark of docs/BENCHMARKS.md in priority order: the required part first (10% labels, 3 seeds of the
# per-task supervised baseline and UniSeMi), then the optional settings with one seed. Every step is skipped when
# its output exists, so rerunning this script resumes where it stopped.
#   nohup benchmarks/run_cpu_benchmark.sh > benchmark_runs/run.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
ITER=${ITER:-240}
python benchmarks/run_benchmark.py --budgets 10 --seeds 0 1 2 --methods supervised unisemi --iterations "$ITER" --keep-going
python benchmarks/run_benchmark.py --budgets 10 --seeds 0 --methods nounlabeled taskinfo --iterations "$ITER" --keep-going
python benchmarks/run_benchmark.py --budgets 20 --seeds 0 --methods supervised unisemi --iterations "$ITER" --keep-going
python benchmarks/run_benchmark.py --budgets 20 --seeds 0 --methods nounlabeled taskinfo --iterations "$ITER" --keep-going
python benchmarks/run_benchmark.py --budgets 10 20 --aggregate-only --iterations "$ITER"
