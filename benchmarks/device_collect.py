"""Bring a GPU run of `benchmarks/device_run.py` into the benchmark's layout and evaluate it here.

The device returns the test segmentations as arrays (preds.tar), the training logs (logs.tar.xz) and summary.json.
This writes each segmentation as an image with the geometry of its reference label (labelsTs of the CPU benchmark's
raw dataset), evaluates every run with the project's evaluation (`evaluate_folder`, as run_benchmark.evaluate), and
lays the runs out as `<gpu root>/<dataset>/iter<N>/seed<s>/{pred,eval,results}` so that
`run_benchmark.py --root <gpu root> --aggregate-only` writes the same tables as for the CPU runs.

    python benchmarks/device_collect.py /work/.device/<call>/files --gpu-root benchmark_runs/gpu
    python benchmarks/run_benchmark.py --root benchmark_runs/gpu --aggregate-only --budgets 10 --iterations 1800
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_benchmark import CONFIGURATION, REPO, trainer_name  # noqa: E402


def write_predictions(segs: dict, labels: Path, out: Path, ending: str) -> None:
    import SimpleITK as sitk  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    for case, seg in segs.items():
        ref = sitk.ReadImage(str(labels / f"{case}{ending}"))
        if tuple(reversed(ref.GetSize())) != seg.shape:
            raise ValueError(f"{case}: device prediction has shape {seg.shape}, its label {ref.GetSize()[::-1]}")
        img = sitk.GetImageFromArray(seg.astype(np.uint8))
        img.CopyInformation(ref)
        sitk.WriteImage(img, str(out / f"{case}{ending}"), True)


def main(argv=None) -> int:
    from nnunetv2_unisemi.evaluation.evaluate import evaluate_folder  # noqa: PLC0415

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", help="folder with preds.tar, logs.tar.xz and summary.json from the device")
    p.add_argument("--gpu-root", default=str(REPO / "benchmark_runs" / "gpu"))
    p.add_argument("--cpu-root", default=str(REPO / "benchmark_runs"), help="the CPU benchmark (raw test labels)")
    p.add_argument("--dataset", default="Dataset801_UniSeMiBench10")
    args = p.parse_args(argv)
    files, gpu_root = Path(args.files), Path(args.gpu_root)
    raw = Path(args.cpu_root) / "nnUNet_raw" / args.dataset
    dataset_json = json.loads((raw / "dataset.json").read_text())
    summary = json.loads((files / "summary.json").read_text())
    dataset_root = gpu_root / args.dataset
    dataset_root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(files / "summary.json", gpu_root / f"device_summary_{summary.get('started', 'run')}.json")
    with tarfile.open(files / "logs.tar.xz") as tar:
        for member in tar.getmembers():
            if member.isfile() and not member.name.startswith("device_logs/"):
                # iter<N>/seed<s>/results/<dataset>/<trainer>/fold_k/...: the layout run_benchmark.aggregate reads
                target = dataset_root / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
    with tarfile.open(files / "preds.tar") as tar:
        for member in tar.getmembers():
            iteration, seed, method = member.name[: -len(".npz")].split("__")
            run = dataset_root / iteration / seed
            out = run / "eval" / method
            if (out / "summary.json").is_file():  # already collected (a warm machine returns earlier calls' runs too)
                continue
            segs = dict(np.load(io.BytesIO(tar.extractfile(member).read())))
            (run / "results" / args.dataset /
             f"{trainer_name(method, int(iteration[4:]))}__nnUNetPlans__{CONFIGURATION}").mkdir(parents=True,
                                                                                                exist_ok=True)
            pred = run / "pred" / method
            write_predictions(segs, raw / "labelsTs", pred, dataset_json["file_ending"])
            evaluate_folder(raw / "labelsTs", pred, dataset_json=raw / "dataset.json", output_dir=out,
                            num_processes=1, verbose=False)
            print(f"evaluated {iteration}/{seed}/{method}: {len(segs)} cases -> {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
