#!/usr/bin/env bash
# The CPU benchmark of docs/BENCHMARKS.md in priority order: the required part first (10% labels, 3 seeds of the
# per-task supervised baseline and UniSeMi), then the optional settings with one seed. Every finished step is
# skipped, so rerunning resumes where it stopped. Two chains share the work through lock files (one per
# dataset/seed/method): chain A takes the units in order, chain B from the other end (useful when the machine is
# shared and to keep both cores busy during the single-threaded parts).
#   nohup benchmarks/run_cpu_benchmark.sh A > benchmark_runs/run_A.log 2>&1 &
#   nohup benchmarks/run_cpu_benchmark.sh B > benchmark_runs/run_B.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
ITER=${ITER:-240}
# one torch thread per chain: two chains on 2 cores, no oversubscription
export UNISEMI_BENCH_THREADS=${UNISEMI_BENCH_THREADS:-1}
B="python benchmarks/run_benchmark.py --iterations $ITER --keep-going"
if [ "${1:-A}" = A ]; then
  $B --budgets 10 --seeds 0 1 2 --methods supervised unisemi
  $B --budgets 10 --seeds 0 --methods nounlabeled taskinfo
  $B --budgets 20 --seeds 0 --methods supervised unisemi nounlabeled taskinfo
else
  $B --budgets 10 --seeds 2 1 0 --methods unisemi supervised
  $B --budgets 10 --seeds 0 --methods taskinfo nounlabeled
fi
python benchmarks/run_benchmark.py --budgets 10 20 --aggregate-only --iterations "$ITER"
