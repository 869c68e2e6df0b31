"""Average test Dice against training compute, from the benchmark's tables (results_iter<N>.json).

A per-task method trains K models of N iterations; a one-model method (UniSeMi and its variants, Uni-MT, Uni-BCP)
trains one model of N iterations for all K tasks, whose task-balanced labeled batch gives each task 1/K of its
labeled patches. This table puts every row of every iteration budget and machine side by side with its total
iterations and labeled patches per task, so methods can be compared at equal total compute as well as at equal
iterations per run:

    python benchmarks/compute_curve.py --roots cpu=benchmark_runs gpu=benchmark_runs/gpu

writes compute_curve.md into the first root and prints it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_benchmark import METHOD_LABELS, PER_TASK_METHODS, REPO  # noqa: E402


def curve_rows(roots: dict[str, Path], dataset: str, batch_size: int, methods=None, iterations=None) -> list[dict]:
    """One row per (machine, iterations per run, method) found in the roots' full-task-set tables, optionally only
    the given methods and iterations per run."""
    rows = []
    for machine, root in roots.items():
        for table in sorted(root.glob("results_iter*.json")):
            match = re.fullmatch(r"results_iter(\d+)\.json", table.name)  # results_iter<N>T<tasks>: a subset study
            if not match:
                continue
            per_run = int(match.group(1))
            if iterations and per_run not in iterations:
                continue
            for method, result in json.loads(table.read_text()).get(dataset, {}).items():
                if methods and method not in methods:
                    continue
                num_tasks = len(result["tasks"])
                models = num_tasks if method in PER_TASK_METHODS else 1
                dice = result["average"]["average"]["dice"]
                rows.append({"machine": machine, "method": method, "iterations_per_run": per_run,
                             "models": models, "total_iterations": models * per_run,
                             "labeled_patches_per_task": batch_size * per_run * models // num_tasks,
                             "dice_mean": dice["mean"], "dice_std": dice["std"], "seeds": dice["n"],
                             "task_dice": {t: v["dice"]["mean"] for t, v in result["tasks"].items()}})
    return sorted(rows, key=lambda r: (r["method"], r["total_iterations"], r["machine"]))


def markdown(rows: list[dict], dataset: str) -> str:
    tasks = list(rows[0]["task_dice"]) if rows else []
    lines = [f"Average test Dice % against training compute ({dataset}; mean ± std over seeds)", "",
             "| Method | machine | iterations per run | models | total iterations | labeled patches per task | "
             "seeds | average Dice % | " + " | ".join(tasks) + " |",
             "|---|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(tasks)]
    for r in rows:
        lines.append(f"| {METHOD_LABELS.get(r['method'], r['method'])} | {r['machine']} | {r['iterations_per_run']} | "
                     f"{r['models']} | {r['total_iterations']} | {r['labeled_patches_per_task']} | {r['seeds']} | "
                     f"{r['dice_mean']:.1f} ± {r['dice_std']:.1f} | "
                     + " | ".join(f"{r['task_dice'][t]:.1f}" for t in tasks) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--roots", nargs="+", default=[f"cpu={REPO / 'benchmark_runs'}"],
                   help="machine=folder pairs holding results_iter<N>.json (run_benchmark.py's --root)")
    p.add_argument("--dataset", default="Dataset801_UniSeMiBench10")
    p.add_argument("--methods", nargs="+", help="only these methods (run_benchmark.py's names)")
    p.add_argument("--iterations", type=int, nargs="+", help="only these iterations per run")
    p.add_argument("--batch-size", type=int, default=2, help="labeled patches per step (3d_cpu: 2)")
    args = p.parse_args(argv)
    roots = {}
    for pair in args.roots:
        machine, sep, folder = pair.partition("=")
        if not sep or not Path(folder).is_dir():
            p.error(f"--roots expects machine=folder with an existing folder, got {pair!r}")
        roots[machine] = Path(folder)
    rows = curve_rows(roots, args.dataset, args.batch_size, args.methods, args.iterations)
    if not rows:
        p.error(f"no results_iter<N>.json with {args.dataset} under {', '.join(map(str, roots.values()))}")
    text = markdown(rows, args.dataset)
    (next(iter(roots.values())) / "compute_curve.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
