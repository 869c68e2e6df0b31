"""Shared set-up of the speed benchmarks: nnU-Net plans and a UniSeMi dataset.json built in memory.

The configuration is nnU-Net's default 3d_fullres topology for the requested patch (nnU-Net's own
get_pool_and_conv_props, features 32..320), the same for the plain and the UniSeMi network.
"""

from __future__ import annotations

import copy

PLANS_TEMPLATE = {
    "dataset_name": "Dataset999_SpeedBenchmark",
    "plans_name": "nnUNetPlans",
    "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
    "original_median_shape_after_transp": [128, 128, 128],
    "image_reader_writer": "SimpleITKIO",
    "transpose_forward": [0, 1, 2],
    "transpose_backward": [0, 1, 2],
    "experiment_planner_used": "ExperimentPlanner",
    "label_manager": "LabelManager",
    "foreground_intensity_properties_per_channel": {"0": {"mean": 0.0, "std": 1.0, "percentile_00_5": -3.0,
                                                          "percentile_99_5": 3.0}},
    "configurations": {
        "3d_fullres": {
            "data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 2, "patch_size": [48, 64, 64], "median_image_size_in_voxels": [128, 128, 128],
            "spacing": [1.0, 1.0, 1.0], "normalization_schemes": ["ZScoreNormalization"],
            "use_mask_for_norm": [False], "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
            "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                                   "force_separate_z": None},
            "architecture": {
                "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                "arch_kwargs": {"n_stages": 4, "features_per_stage": [32, 64, 128, 256],
                                "conv_op": "torch.nn.modules.conv.Conv3d",
                                "kernel_sizes": [[3, 3, 3]] * 4, "strides": [[1, 1, 1]] + [[2, 2, 2]] * 3,
                                "n_conv_per_stage": [2, 2, 2, 2], "n_conv_per_stage_decoder": [2, 2, 2],
                                "conv_bias": True, "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                                "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
                                "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
                                "nonlin_kwargs": {"inplace": True}},
                "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
            "batch_dice": False,
        }
    },
}


def make_plans(patch_size, batch_size: int) -> dict:
    """nnU-Net plans whose 3d_fullres has nnU-Net's default topology for `patch_size`."""
    from plans.add_configurations import derived_configuration

    plans = copy.deepcopy(PLANS_TEMPLATE)
    parent = plans["configurations"]["3d_fullres"]
    derived = derived_configuration(parent, patch_size, batch_size, 32, 320)
    parent.update({k: v for k, v in derived.items() if k != "inherits_from"})
    return plans


def make_dataset_json(num_tasks: int) -> dict:
    labels = {"background": 0, **{f"task{k}": k for k in range(1, num_tasks + 1)}, "ignore": num_tasks + 1}
    return {"channel_names": {"0": "image"}, "labels": labels, "numTraining": 0, "file_ending": ".nii.gz",
            "unisemi": {"tasks": [{"id": k, "name": f"task{k}", "modality": "CT"} for k in range(1, num_tasks + 1)],
                        "case_to_task": {}, "labeled": [], "unlabeled": [], "test": []}}
