"""UniSeMi with the paper's Eq. 1 controller input: [GAP(bottleneck features), one-hot prompt] (as DoDNet).

The default head generates its kernels from the prompt alone. With the pooled context, the two hippocampus prompts of
the benchmark kept one mask: the context weights act as a bias shared by all prompts and can also tell the few
training images apart (docs/BENCHMARKS.md, "Why two prompts gave one mask"). Kept to reproduce that comparison.
"""

from __future__ import annotations

from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi


class nnUNetTrainerUniSeMi_ContextHead(nnUNetTrainerUniSeMi):
    head_context = True
