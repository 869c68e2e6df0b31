"""Evaluate benchmark models on their own training cases: the unlabeled ones, against the labels the benchmark withheld.

Do the unlabeled data teach the shared model anything? On the held-out test cases the answer has been "nothing
measurable" (docs/BENCHMARKS.md). This asks the narrower question first: does a model trained with unlabeled cases
segment *those cases* better than a model that never saw them? If not even there, the unlabeled term is inert at this
budget; if it does, it helps only transductively (it fits the cases it sees) and does not carry over to new cases.

The benchmark's datasets keep the real labels of every source case, so they are recovered by converting the same
source data again with every training case labeled (`convert_from_config`, labeled_fraction 1; the test choice does
not depend on the label budget, which is checked) into `<root>/withheld_labels/` (nnUNet_preprocessed is not
written). Then, per run `METHOD:SEED` of `run_benchmark.py`, the cases of
`--split` (unlabeled or labeled) are predicted with each task's prompt or per-task model, exactly as the test cases
are (`run_benchmark.predict`), into `seed<s>/pred_<split>/<method>/`, and evaluated into
`seed<s>/eval_<split>/<method>/` (the same files as `eval/`). Steps are logged under `<root>/logs/` and timed in
`<root>/ledger_<split>.json`; the images and labels of the split are linked from `<dataset>/<split>_inputs/` and
`<dataset>/<split>_labels/`. The benchmark's own predictions, evaluations, ledger and tables are left alone.
Compare two methods per case with `compare_methods.py --split unlabeled`.

    python benchmarks/evaluate_training_cases.py --runs supervised:5 \
        unisemi_orthogonal_prompts_per_task_batch_task_sum_teacher_unlabeled_light_synthetic:1 \
        -- --root benchmark_runs/v7 --budgets 10 --iterations 1800

Everything after `--` is `run_benchmark.py`'s own options (--root, --budgets, --iterations, --data, --tta, ...), so
the dataset and trainer names resolve exactly as in the run that trained the models.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_benchmark as rb  # noqa: E402

TRUTH_FOLDER = "withheld_labels"


def parse_run(text: str) -> tuple[str, int]:
    method, _, seed = text.rpartition(":")
    if method not in rb.METHODS or not seed.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected METHOD:SEED with METHOD one of run_benchmark's methods")
    return method, int(seed)


def check_truth(dataset_json: dict, truth_json: dict, truth_dir: Path) -> None:
    """The fully labeled conversion must hold the benchmark dataset's cases with the same tasks and test cases."""
    u, t = dataset_json["unisemi"], truth_json["unisemi"]
    if [x["name"] for x in u["tasks"]] != [x["name"] for x in t["tasks"]]:
        raise ValueError(f"{truth_dir / 'dataset.json'}: tasks {[x['name'] for x in t['tasks']]} differ from the "
                         f"benchmark dataset's {[x['name'] for x in u['tasks']]}")
    if sorted(u["test"]) != sorted(t["test"]):
        raise ValueError(f"{truth_dir / 'dataset.json'}: other test cases than the benchmark dataset's (another "
                         "--data-seed or --test-count?)")
    missing = sorted((set(u["labeled"]) | set(u["unlabeled"])) - set(t["labeled"]))
    if missing:
        raise ValueError(f"{truth_dir / 'dataset.json'}: {len(missing)} training cases of the benchmark dataset are "
                         f"not labeled there, e.g. {missing[:3]}")


def ensure_truth(runner: rb.Runner, args, budget: int, dataset_json: dict) -> Path:
    """`<root>/withheld_labels/<dataset>`: the same tasks and test cases with every training case labeled."""
    from dataset_conversion.merge_tasks import convert_from_config  # noqa: PLC0415

    config = rb.dataset_config(args, 100, 0)
    truth_dir = runner.root / TRUTH_FOLDER / f"Dataset{rb.dataset_ids(args)[budget]:03d}_all_labeled"
    if not (truth_dir / "dataset.json").is_file():
        runner.timed(f"{TRUTH_FOLDER}/convert", lambda: convert_from_config(
            config, output_dir=truth_dir, data_root=args.data, labeled_fraction=1.0, num_processes=args.processes,
            write_preprocessed_splits=False, verbose=False),
            f"convert_from_config(labeled_fraction=1.0) -> {truth_dir}")
    check_truth(dataset_json, json.loads((truth_dir / "dataset.json").read_text()), truth_dir)
    return truth_dir


def reference_folder(runner: rb.Runner, name: str, dataset_json: dict, truth_dir: Path, split: str) -> Path:
    """Links to the real labels of the split's cases: the reference folder of evaluate_folder."""
    folder = runner.root / name / f"{split}_labels"
    folder.mkdir(parents=True, exist_ok=True)
    ending = dataset_json["file_ending"]
    for cases in rb.cases_by_task(dataset_json, split).values():
        for case in cases:
            link = folder / f"{case}{ending}"
            if not link.exists():
                link.symlink_to(truth_dir / "labelsTr" / f"{case}{ending}")
    return folder


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    own, rest = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="options after -- are run_benchmark.py's (--root, --budgets, --iterations)")
    p.add_argument("--runs", type=parse_run, nargs="+", required=True, help="METHOD:SEED of trained runs")
    p.add_argument("--split", choices=("unlabeled", "labeled"), default="unlabeled")
    args = p.parse_args(own)
    bench = rb.parse_args(rest)
    if len(bench.budgets) != 1:
        raise SystemExit("give one label budget after -- (e.g. --budgets 10)")
    budget = bench.budgets[0]
    runner = rb.Runner(bench)
    runner.ledger = rb.Ledger(runner.root / f"ledger_{args.split}.json")
    name = f"Dataset{rb.dataset_ids(bench)[budget]:03d}_{rb.dataset_config(bench, budget, 0)['dataset_name']}"
    raw = runner.raw / name
    if not (raw / "dataset.json").is_file():
        raise SystemExit(f"{raw / 'dataset.json'}: no benchmark dataset; train the runs with run_benchmark.py first")
    dataset_json = json.loads((raw / "dataset.json").read_text())
    truth_dir = ensure_truth(runner, bench, budget, dataset_json)
    reference = reference_folder(runner, name, dataset_json, truth_dir, args.split)
    inputs = rb.make_inputs(runner, name, dataset_json, args.split)
    from nnunetv2_unisemi.evaluation.evaluate import evaluate_folder  # noqa: PLC0415

    lines = [f"{args.split} training cases of {name}, {bench.iterations} iterations: Dice % (mean over cases)", "",
             "| run | " + " | ".join(rb.cases_by_task(dataset_json, args.split)) + " | average | average on the test "
             "cases |", "|---|" + "---:|" * (len(dataset_json["unisemi"]["tasks"]) + 2)]
    for method, seed in args.runs:
        trained = rb.seed_dir(runner, bench, name, seed) / "results" / name / \
            f"{rb.trainer_name(method, bench.iterations)}__nnUNetPlans__{rb.CONFIGURATION}"
        if not trained.is_dir():
            raise SystemExit(f"{trained}: {method} seed {seed} is not trained")
        pred = rb.predict(runner, bench, name, rb.dataset_ids(bench)[budget], seed, method, inputs, dataset_json,
                          args.split)
        out = rb.seed_dir(runner, bench, name, seed) / f"eval_{args.split}" / method
        summary = evaluate_folder(reference, pred, dataset_json=raw / "dataset.json", output_dir=out,
                                  num_processes=1, verbose=False)
        test_file = rb.seed_dir(runner, bench, name, seed) / "eval" / method / "summary.json"
        test = json.loads(test_file.read_text())["average"]["dice"]["mean"] if test_file.is_file() else None
        cells = [f"{100 * t['dice']['mean']:.2f}" for t in summary["tasks"].values()]
        lines.append(f"| {method} seed {seed} | " + " | ".join(cells) +
                     f" | {100 * summary['average']['dice']['mean']:.2f} | "
                     f"{'n/a' if test is None else f'{100 * test:.2f}'} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
