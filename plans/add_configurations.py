"""Add UniSeMi's extra configurations to an nnU-Net plans file (nnU-Net's documented way: configurations that
inherit from 3d_fullres, so they reuse its preprocessed data; no extra preprocessing is needed).

- ``3d_cpu``: a small network (features 16..128) and patch for CPU demos, tests and benchmarks.
- ``3d_paper``: the paper's setting, a 96^3 patch; batch 4 labeled patches + 4 unlabeled patches (mixed into 2)
  per step, i.e. the paper's batch of 8 split between labeled and unlabeled data.

The network topology for a new patch size (number of stages, pooling strides, conv kernels) comes from nnU-Net's
own planner function ``get_pool_and_conv_props``, so it follows the same rules as nnU-Net's planning.

    nnUNetv2_unisemi_add_plans -d 990            # after nnUNetv2_plan_and_preprocess -d 990 -c 3d_fullres
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path

from nnunetv2.experiment_planning.experiment_planners.network_topology import get_pool_and_conv_props
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

PRESETS = {
    # capped to 3d_fullres's patch: demo images are smaller than 48x64x64
    "3d_cpu": {"patch_size": (48, 64, 64), "batch_size": 2, "base_features": 16, "max_features": 128, "cap": True},
    "3d_paper": {"patch_size": (96, 96, 96), "batch_size": 4, "base_features": 32, "max_features": 320, "cap": False},
}


def derived_configuration(parent: dict, patch_size, batch_size: int, base_features: int, max_features: int,
                          parent_name: str = "3d_fullres") -> dict:
    """A configuration inheriting from `parent_name` with its own patch, batch size and network topology."""
    spacing = parent["spacing"]
    _, strides, kernels, patch, _ = get_pool_and_conv_props(spacing, list(patch_size), 4, 999999)
    n_stages = len(strides)
    architecture = copy.deepcopy(parent["architecture"])
    kwargs = architecture["arch_kwargs"]
    kwargs["n_stages"] = n_stages
    kwargs["features_per_stage"] = [min(base_features * 2**i, max_features) for i in range(n_stages)]
    kwargs["kernel_sizes"] = [list(k) for k in kernels]
    kwargs["strides"] = [list(s) for s in strides]
    for key in ("n_conv_per_stage", "n_blocks_per_stage"):
        if key in kwargs:
            kwargs[key] = [kwargs[key][0]] * n_stages
    if "n_conv_per_stage_decoder" in kwargs:
        kwargs["n_conv_per_stage_decoder"] = [kwargs["n_conv_per_stage_decoder"][0]] * (n_stages - 1)
    return {"inherits_from": parent_name, "patch_size": [int(p) for p in patch], "batch_size": int(batch_size),
            "architecture": architecture}


def add_configurations(plans_file: str | os.PathLike, names=tuple(PRESETS), patch_size=None, batch_size=None,
                       overwrite: bool = True) -> dict:
    plans_file = Path(plans_file)
    if not plans_file.is_file():
        raise FileNotFoundError(f"{plans_file} does not exist: run nnUNetv2_plan_and_preprocess for this dataset first")
    plans = json.loads(plans_file.read_text(encoding="utf-8"))
    if "3d_fullres" not in plans["configurations"]:
        raise ValueError(f"{plans_file} has no 3d_fullres configuration to inherit from")
    parent = plans["configurations"]["3d_fullres"]
    for name in names:
        if name not in PRESETS:
            raise ValueError(f"unknown configuration preset '{name}', choose from {sorted(PRESETS)}")
        if name in plans["configurations"] and not overwrite:
            continue
        preset = dict(PRESETS[name])
        if patch_size is not None:
            preset["patch_size"] = patch_size
        elif preset["cap"]:
            preset["patch_size"] = [min(a, b) for a, b in zip(preset["patch_size"], parent["patch_size"])]
        del preset["cap"]
        if batch_size is not None:
            preset["batch_size"] = batch_size
        plans["configurations"][name] = derived_configuration(parent, **preset)
    tmp = plans_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(plans, indent=4), encoding="utf-8")
    os.replace(tmp, plans_file)  # never leave a half-written plans file
    return plans


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", required=True, help="dataset id or name")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-c", nargs="+", default=list(PRESETS), choices=list(PRESETS), help="configurations to add")
    parser.add_argument("--patch_size", nargs="+", type=int, default=None, help="override the preset patch size")
    parser.add_argument("--batch_size", type=int, default=None, help="override the preset batch size")
    args = parser.parse_args(argv)
    from nnunetv2.paths import nnUNet_preprocessed

    if not nnUNet_preprocessed.is_set():
        parser.error("nnUNet_preprocessed is not set")
    dataset = maybe_convert_to_dataset_name(args.d)
    plans_file = Path(nnUNet_preprocessed.get()) / dataset / f"{args.p}.json"
    plans = add_configurations(plans_file, args.c, args.patch_size, args.batch_size)
    for name in args.c:
        cfg = plans["configurations"][name]
        feats = cfg["architecture"]["arch_kwargs"]["features_per_stage"]
        print(f"{dataset}: added {name}: patch {cfg['patch_size']}, batch {cfg['batch_size']}, features {feats}")


if __name__ == "__main__":
    main()
