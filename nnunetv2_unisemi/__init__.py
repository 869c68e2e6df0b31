"""nnunetv2_unisemi: UniSeMi (unified semi-supervised multi-task segmentation) on top of nnU-Net v2."""

__version__ = "0.1.0"
