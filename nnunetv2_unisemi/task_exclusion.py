"""Cross-task exclusion on labeled samples: a labeled case's own target is background for every other task's prompt.

Why (docs/BENCHMARKS.md, "Why two prompts gave one mask"): each labeled case is annotated for one task only, and
the tasks' labeled cases are disjoint. Supervised only under its own prompt, a shared network can satisfy every
task by segmenting "the structure annotated in this image", which it can memorise for a few training cases. Two
tasks on the same images (the anterior and posterior hippocampus of the benchmark; pancreas and spleen on abdominal
CT in the paper) then get one mask at test time: 0.84 Dice on the training cases, the same mask under both prompts on
new cases. Asking the other prompts for background on the annotated structure takes that shortcut away in principle:
a prompt must tell its structure from the others' on the same image. Measured so far it is not a reliable fix: in 1
of 4 short runs of benchmarks/experiments/prompt_saddle_toy.py the prompts separated, and the network can still
memorise which training images belong to which task (nnUNetTrainerUniSeMi_SeparatePrompts uses it; off by default).

The unified label map gives every voxel at most one task, so the tasks' targets are disjoint structures and the
exclusion is true of the data (do not turn it on, `exclusion_loss_weight > 0`, for tasks that nest, e.g. an organ and
a tumour inside it, converted from different data sets). It costs K - 1 extra head applications per labeled
sample on the same backbone pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def own_then_other_prompts(task_ids: torch.Tensor, num_tasks: int) -> torch.Tensor:
    """(n, K) prompts per labeled sample: its own task first, then every other task in increasing order."""
    all_tasks = torch.arange(1, num_tasks + 1, device=task_ids.device)
    others = all_tasks[None].expand(len(task_ids), -1)
    others = others[others != task_ids[:, None]].reshape(len(task_ids), num_tasks - 1)
    return torch.cat((task_ids[:, None], others), dim=1)


def exclusion_loss(other_logits: Sequence[torch.Tensor], own_foreground: torch.Tensor) -> torch.Tensor:
    """Cross-entropy towards background on each sample's own foreground voxels, under each other task's prompt.

    other_logits: one (B, 2, *spatial) tensor per other prompt; own_foreground: (B, 1, *spatial) binary target of
    each sample under its own prompt. Voxels outside the own foreground say nothing about other tasks and add 0. The
    sum is divided by the number of voxels, so an excluded voxel weighs what one voxel weighs in nnU-Net's CE term.
    """
    if not other_logits:
        return own_foreground.new_zeros((), dtype=torch.float32)
    own = own_foreground[:, 0].bool()
    logits = torch.stack(tuple(other_logits)).float()  # (P, B, 2, ...): all other prompts in one op
    background = torch.zeros((logits.shape[0], *own.shape), dtype=torch.long, device=logits.device)
    ce = F.cross_entropy(logits.flatten(0, 1), background.flatten(0, 1), reduction="none")
    ce = ce.unflatten(0, logits.shape[:2])
    return (ce * own).sum() / (own.numel() * logits.shape[0])
