"""Pack the CPU benchmark's preprocessed dataset for a GPU machine that can receive at most 64 MiB per call.

The device tool copies the working tree (plus up to 64 MiB of carried paths) to a bare GPU machine with no network.
The benchmark's preprocessed float32 arrays (154 MB for Dataset801) do not fit, so this writes each case's image
as 8-bit codes plus (offset, step) per case, and its segmentation as int8, into one lzma-compressed pickle:

- training cases: nnU-Net's preprocessed arrays (nnUNetPlans_3d_fullres/*.b2nd + .pkl), as the CPU runs read them;
- test cases: imagesTs run through nnU-Net's own preprocessor for the 3d_cpu configuration (what nnUNetv2_predict
  does before the sliding window), with the properties needed to export the prediction to the original geometry.

The 8-bit step is (max - min) / 255 of the z-scored image, i.e. a rounding error below step / 2 (the LA2018 h5
images themselves hold at most 256 distinct values). Both the training and the test data of the device run are
rounded the same way; the CPU runs use the unrounded arrays. `benchmarks/device_run.py` unpacks this on the device.

    python benchmarks/device_pack.py --dataset Dataset801_UniSeMiBench10 --out .devpack
"""

from __future__ import annotations

import argparse
import json
import lzma
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIGURATION = "3d_cpu"


def quantize(data: np.ndarray) -> dict:
    lo, hi = float(data.min()), float(data.max())
    step = (hi - lo) / 255 or 1.0
    return {"q": np.round((data - lo) / step).astype(np.uint8), "lo": lo, "step": step, "dtype": str(data.dtype)}


def dequantize(packed: dict) -> np.ndarray:
    return (packed["lo"] + packed["q"].astype(np.float32) * np.float32(packed["step"])).astype(packed["dtype"])


def pack_training_cases(folder: Path) -> dict:
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class  # noqa: PLC0415

    dataset_class = infer_dataset_class(str(folder))
    dataset = dataset_class(str(folder))
    cases = {}
    for key in dataset.identifiers:
        data, seg, _, properties = dataset.load_case(key)
        seg = np.asarray(seg)
        if seg.min() < -128 or seg.max() > 127:
            raise ValueError(f"{folder / key}: segmentation values outside int8")
        cases[key] = {"data": quantize(np.asarray(data)), "seg": seg.astype(np.int8), "properties": properties}
    return cases


def pack_test_cases(raw: Path, preprocessed: Path, dataset_json: dict) -> dict:
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager  # noqa: PLC0415

    plans_manager = PlansManager(str(preprocessed / "nnUNetPlans.json"))
    configuration_manager = plans_manager.get_configuration(CONFIGURATION)
    preprocessor = configuration_manager.preprocessor_class(verbose=False)
    ending = dataset_json["file_ending"]
    cases = {}
    for case in dataset_json["unisemi"]["test"]:
        image = raw / "imagesTs" / f"{case}_0000{ending}"
        if not image.is_file():
            raise FileNotFoundError(f"{image}: test image listed in dataset.json is missing")
        data, _, properties = preprocessor.run_case([str(image)], None, plans_manager, configuration_manager,
                                                    dataset_json)
        cases[case] = {"data": quantize(data), "properties": properties,
                       "task": dataset_json["unisemi"]["case_to_task"][case]}
    return cases


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=str(REPO / "benchmark_runs"), help="the CPU benchmark's working folder")
    p.add_argument("--dataset", default="Dataset801_UniSeMiBench10")
    p.add_argument("--out", default=str(REPO / ".devpack"))
    args = p.parse_args(argv)
    root, out = Path(args.root), Path(args.out)
    preprocessed = root / "nnUNet_preprocessed" / args.dataset
    raw = root / "nnUNet_raw" / args.dataset
    for f in (preprocessed / "nnUNetPlans.json", raw / "dataset.json"):
        if not f.is_file():
            sys.exit(f"{f} is missing: run benchmarks/run_benchmark.py for this dataset first")
    dataset_json = json.loads((raw / "dataset.json").read_text())
    meta = out / "preprocessed" / args.dataset
    meta.mkdir(parents=True, exist_ok=True)
    for name in ("dataset.json", "nnUNetPlans.json", "splits_final.json", "dataset_fingerprint.json"):
        shutil.copy2(preprocessed / name, meta / name)
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    data_identifier = plans["configurations"]["3d_fullres"]["data_identifier"]
    packed = {"train": pack_training_cases(preprocessed / data_identifier), "data_identifier": data_identifier,
              "test": pack_test_cases(raw, preprocessed, dataset_json)}
    blob = lzma.compress(pickle.dumps(packed, protocol=4), preset=6)
    (out / f"{args.dataset}.pkl.xz").write_bytes(blob)
    print(f"{len(packed['train'])} training and {len(packed['test'])} test cases -> "
          f"{out / (args.dataset + '.pkl.xz')} ({len(blob) / 2 ** 20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
