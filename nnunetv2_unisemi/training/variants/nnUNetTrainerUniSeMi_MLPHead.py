"""UniSeMi with DoDNet's dynamic head: three generated 1x1x1 layers with ReLU in between (8 hidden channels).

This was the default until the benchmark showed its failure mode, and is kept to reproduce those runs. The paper's
Eq. 2 is one dynamic convolution on the decoder features, the default now. In the real-data benchmark the trained
three-layer heads encoded foreground as "every hidden unit off": foreground voxels then get the final bias alone
(a probability capped at sigmoid(bias), the same in every image) and send no gradient past it, and both hippocampus
tasks were learned in 2 of 6 runs at 600 iterations, against 3 of 3 with the one-layer head (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi


class nnUNetTrainerUniSeMi_MLPHead(nnUNetTrainerUniSeMi):
    head_hidden_layers = 2
