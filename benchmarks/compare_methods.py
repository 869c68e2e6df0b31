"""Two methods of the benchmark compared over seeds run in several batches: is B above A by more than the seeds' spread?

A batch is a set of seeds trained together (one device call, one CPU session). The per-task models' mean moved
between batches of the same code and data by as much as the margin being tested (docs/BENCHMARKS.md, "One machine,
one batch"), so the comparison is made three ways:
- per batch: each method's average Dice (mean +- sample std over the batch's seeds), B - A and Welch's t-test;
- pooled over all batches: the same, per task and averaged, with Mann-Whitney's U beside Welch, and in how many
  pairs of one run of each method B is above A;
- batch-centred: each run minus the batch's mean of method A, then Welch (removes a shift shared by a batch);
and per case: each held-out case's Dice averaged over all seeds of a method, then B - A over the task's cases
(Wilcoxon's signed-rank test), with the median predicted / reference volume of each method.

    python benchmarks/compare_methods.py --a supervised \
        --b unisemi_orthogonal_prompts_per_task_batch_task_sum_teacher_unlabeled_light_synthetic \
        --batch A=benchmark_runs/gpu2:0,1,2 --batch B=benchmark_runs/gpu3:3,4,5,6 --batch C=benchmark_runs/gpu3:7,8,9
    python benchmarks/compare_methods.py --a supervised --b <method> --batch cpu=docs/runs/cpu:5:1   # seeds A : B

Reads `<root>/<dataset>/iter<N>/seed<s>/eval/<method>/{summary.json,metrics_per_case.csv}` as written by
`run_benchmark.py` and `device_collect.py` (with `--split unlabeled`: `eval_unlabeled/`, the models' own unlabeled
training cases, written by `evaluate_training_cases.py`); a seed without both files is an error that names the file.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats


@dataclass
class Batch:
    name: str
    root: Path
    seeds: list[int]  # of method A
    seeds_b: list[int] | None = None  # of method B when they differ (e.g. archived runs of different sessions)

    def seeds_of(self, b: bool) -> list[int]:
        return self.seeds_b if b and self.seeds_b is not None else self.seeds


@dataclass
class Run:
    batch: str
    seed: int
    dice: dict[str, float]  # task -> mean Dice % over its test cases, plus "average" over the tasks
    cases: dict[str, tuple[str, float, float]]  # case -> (task, Dice %, predicted / reference volume)


def parse_batch(text: str) -> Batch:
    """`NAME=ROOT:SEED,SEED,...` (both methods), or `NAME=ROOT:SEEDS_OF_A:SEEDS_OF_B`"""
    try:
        name, rest = text.split("=", 1)
        root, *seed_lists = rest.split(":")
        if not 1 <= len(seed_lists) <= 2:
            raise ValueError("one or two seed lists")
        seeds = [[int(s) for s in seed_list.split(",")] for seed_list in seed_lists]
        batch = Batch(name, Path(root), seeds[0], seeds[1] if len(seeds) == 2 else None)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=ROOT:SEED,SEED,... or "
                                         f"NAME=ROOT:SEEDS_OF_A:SEEDS_OF_B ({e})") from None
    if batch.name == "pooled":
        raise argparse.ArgumentTypeError("'pooled' is the name of the row over all batches; pick another")
    return batch


def load_run(batch: Batch, seed: int, method: str, dataset: str, iterations: int, split: str = "test") -> Run:
    evaluation = "eval" if split == "test" else f"eval_{split}"  # eval_<split>: evaluate_training_cases.py
    folder = batch.root / dataset / f"iter{iterations}" / f"seed{seed}" / evaluation / method
    summary_file, cases_file = folder / "summary.json", folder / "metrics_per_case.csv"
    for f in (summary_file, cases_file):
        if not f.is_file():
            raise FileNotFoundError(f"batch {batch.name}, seed {seed}, {method}: no {f}")
    summary = json.loads(summary_file.read_text())
    dice = {task: 100 * t["dice"]["mean"] for task, t in summary["tasks"].items()}
    dice["average"] = 100 * summary["average"]["dice"]["mean"]
    cases = {}
    with cases_file.open() as fh:
        for row in csv.DictReader(fh):
            ratio = int(row["pred_voxels"]) / int(row["ref_voxels"]) if int(row["ref_voxels"]) else float("nan")
            cases[row["case"]] = (row["task"], 100 * float(row["dice"]), ratio)
    return Run(batch.name, seed, dice, cases)


def _mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def _welch_p(b: list[float], a: list[float]) -> float:
    return float(stats.ttest_ind(b, a, equal_var=False).pvalue) if min(len(a), len(b)) > 1 else float("nan")


def compare(runs_a: list[Run], runs_b: list[Run], label_a: str, label_b: str) -> str:
    """The markdown report (see the module docstring)."""
    batches = list(dict.fromkeys(r.batch for r in runs_a + runs_b))
    tasks = [t for t in runs_a[0].dice if t != "average"]
    lines = [f"A = {label_a}, B = {label_b}; average Dice % over the tasks, mean ± std over seeds.", "",
             "| batch | seeds A | A | seeds B | B | B - A | Welch p |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name in [*batches, "pooled"]:
        a = [r.dice["average"] for r in runs_a if name in (r.batch, "pooled")]
        b = [r.dice["average"] for r in runs_b if name in (r.batch, "pooled")]
        if not a or not b:
            continue
        label = f"**{name}**" if name == "pooled" else name
        lines.append(f"| {label} | {len(a)} | {_mean_std(a)} | {len(b)} | {_mean_std(b)} | "
                     f"{statistics.mean(b) - statistics.mean(a):+.2f} | {_welch_p(b, a):.3f} |")
    centred_a, centred_b = [], []
    for name in batches:
        base = [r.dice["average"] for r in runs_a if r.batch == name]
        if base:
            centred_a += [r.dice["average"] - statistics.mean(base) for r in runs_a if r.batch == name]
            centred_b += [r.dice["average"] - statistics.mean(base) for r in runs_b if r.batch == name]
    pooled_a, pooled_b = [r.dice["average"] for r in runs_a], [r.dice["average"] for r in runs_b]
    wins = sum(b > a for a in pooled_a for b in pooled_b)
    lines += ["", f"B above A in {wins} of {len(pooled_a) * len(pooled_b)} pairs of one run of each (pooled).",
              "", f"Batch-centred (each run minus its batch's mean of A): B - A = "
              f"{statistics.mean(centred_b) - statistics.mean(centred_a):+.2f}, Welch p = "
              f"{_welch_p(centred_b, centred_a):.3f}.", "",
              "| task (pooled) | A | B | B - A | Welch p | Mann-Whitney p |", "|---|---:|---:|---:|---:|---:|"]
    for task in [*tasks, "average"]:
        a, b = [r.dice[task] for r in runs_a], [r.dice[task] for r in runs_b]
        mw = float(stats.mannwhitneyu(b, a).pvalue)
        lines.append(f"| {task} | {_mean_std(a)} | {_mean_std(b)} | {statistics.mean(b) - statistics.mean(a):+.2f} "
                     f"| {_welch_p(b, a):.3f} | {mw:.3f} |")
    lines += ["", "Per case (each case's Dice averaged over a method's seeds):", "",
              "| task | cases | B better | median B - A | Wilcoxon p | median volume ratio A | B |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for task in tasks:
        names = sorted(c for c, (t, _, _) in runs_a[0].cases.items() if t == task)
        per_case = {}
        for key, runs in (("a", runs_a), ("b", runs_b)):
            per_case[key] = np.array([[np.mean([r.cases[c][i] for r in runs]) for c in names] for i in (1, 2)])
        diff = per_case["b"][0] - per_case["a"][0]
        p = float(stats.wilcoxon(diff).pvalue) if np.any(diff != 0) else float("nan")
        lines.append(f"| {task} | {len(names)} | {int((diff > 0).sum())} | {np.median(diff):+.2f} | {p:.4f} | "
                     f"{np.nanmedian(per_case['a'][1]):.3f} | {np.nanmedian(per_case['b'][1]):.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, help="the reference method (a run_benchmark.py method name)")
    p.add_argument("--b", required=True, help="the method tested against it")
    p.add_argument("--batch", type=parse_batch, action="append", required=True, help="NAME=ROOT:SEED,SEED,...")
    p.add_argument("--dataset", default="Dataset801_UniSeMiBench10")
    p.add_argument("--iterations", type=int, default=1800)
    p.add_argument("--split", choices=("test", "unlabeled", "labeled"), default="test",
                   help="which cases: the held-out test cases (default), or the training cases evaluated by "
                        "evaluate_training_cases.py")
    p.add_argument("-o", "--output", help="also write the report to this markdown file")
    args = p.parse_args(argv)
    runs = {m: [load_run(b, s, m, args.dataset, args.iterations, args.split) for b in args.batch
                for s in b.seeds_of(m_is_b)]
            for m, m_is_b in ((args.a, False), (args.b, True))}
    reference = runs[args.a][0]
    for method, method_runs in runs.items():
        for run in method_runs:
            if set(run.cases) != set(reference.cases):
                raise ValueError(f"batch {run.batch}, seed {run.seed}, {method}: evaluated on other cases than "
                                 f"batch {reference.batch}, seed {reference.seed}, {args.a}")
    report = compare(runs[args.a], runs[args.b], args.a, args.b)
    print(report)
    if args.output:
        Path(args.output).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
