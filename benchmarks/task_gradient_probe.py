"""How large are the tasks' gradients in a UniSeMi step, does nnU-Net's clipping cut them, and do they pull the
shared backbone against each other?

A trained (or freshly initialised) UniSeMi model of the benchmark takes real training batches through its own
`train_step`; instead of the optimizer step, the probe measures:
- the norm of the whole step's gradient over all parameters (nnU-Net clips it at 12 before the SGD step),
- the norm of each prompt group's supervised loss gradient (task 1..K, synthetic K+1),
- the cosine between every two prompt groups' gradients on the backbone (encoder and decoder, not the head):
  negative = the tasks pull the shared features apart, about 0 = independent, positive = they help each other.

    python benchmarks/task_gradient_probe.py --root benchmark_runs/v7 --dataset 801 \
        --trainer nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_bench1800 \
        --checkpoint <results>/fold_0/checkpoint_final.pth --steps 10

A per-task baseline (`nnUNetTrainer_TaskBinary_bench<N>`, fold k = task k) has one task and no prompts: for it the
probe records the whole step's gradient norm, the value nnU-Net's own `clip_grad_norm_` returns, so the two can be
compared task by task (`--fold k`).

Nothing is written to the results folder: the trainer's output goes to a temporary nnUNet_results.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
CLIP_NORM = 12.0  # nnU-Net's clip_grad_norm_ threshold


def gradient(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, type=Path, help="benchmark root (nnUNet_raw, nnUNet_preprocessed)")
    parser.add_argument("--dataset", required=True, help="dataset id or name")
    parser.add_argument("--trainer", required=True)
    parser.add_argument("-c", "--configuration", default="3d_cpu")
    parser.add_argument("--fold", type=int, default=0, help="0 for UniSeMi trainers; task k for a per-task trainer")
    parser.add_argument("--checkpoint", default="init", help="checkpoint file, or 'init' for the initial network")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)

    root = args.root.resolve()
    os.environ.update(nnUNet_raw=str(root / "nnUNet_raw"), nnUNet_preprocessed=str(root / "nnUNet_preprocessed"),
                      nnUNet_results=tempfile.mkdtemp(prefix="gradient_probe_"),
                      nnUNet_extTrainer=str(HERE / "trainers"), nnUNet_n_proc_DA="0", nnUNet_compile="f")
    from nnunetv2.run.run_training import get_trainer_from_args  # noqa: PLC0415 (reads the environment)

    trainer = get_trainer_from_args(args.dataset, args.configuration, args.fold, args.trainer,
                                    device=torch.device("cpu"))
    trainer.initialize()
    if args.checkpoint != "init":
        if not Path(args.checkpoint).is_file():
            raise SystemExit(f"{args.checkpoint}: no such checkpoint")
        trainer.load_checkpoint(args.checkpoint)
    trainer.dataloader_train, trainer.dataloader_val = trainer.get_dataloaders()
    trainer.network.train()
    if not hasattr(trainer, "unisemi"):
        return probe_single_task(trainer, args)
    names = {t.id: t.name for t in trainer.unisemi.tasks} | {trainer.unisemi.synthetic_prompt: "synthetic"}

    group_losses: dict[int, torch.Tensor] = {}
    supervised_loss = trainer.supervised_loss

    def recording_supervised_loss(output, targets, prompts):
        group_losses.clear()
        group_losses.update(trainer.task_losses(output, targets, prompts))  # also under the batch-mean loss
        return supervised_loss(output, targets, prompts)

    params = [p for p in trainer.network.parameters() if p.requires_grad]
    backbone = [p for n, p in trainer.network.named_parameters() if p.requires_grad and not n.startswith("head.")]
    rows, cosines = [], []

    def measure_instead_of_step(loss: torch.Tensor) -> None:
        row = {"step": gradient(loss, params).norm().item()}
        row |= {names[p]: gradient(group_losses[p], params).norm().item() for p in sorted(group_losses)}
        on_backbone = {p: gradient(group_losses[p], backbone) for p in sorted(group_losses)}
        cosines.append({f"{names[a]} / {names[b]}": torch.nn.functional.cosine_similarity(
            on_backbone[a], on_backbone[b], dim=0).item() for a, b in itertools.combinations(on_backbone, 2)})
        rows.append(row)
        print("  ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)

    trainer.supervised_loss = recording_supervised_loss
    trainer.backward_and_step = measure_instead_of_step
    for _ in range(args.steps):
        trainer.train_step(next(trainer.dataloader_train))

    print(f"\n{args.steps} steps of {args.trainer} ({args.checkpoint}), medians:")
    print("gradient norm: " + ", ".join(f"{k} {np.median([r[k] for r in rows]):.2f}" for k in rows[0]))
    print(f"steps clipped (norm > {CLIP_NORM:g}): {sum(r['step'] > CLIP_NORM for r in rows)} of {len(rows)}")
    print("backbone gradient cosine: " + ", ".join(f"{k} {np.median([c[k] for c in cosines]):+.3f}"
                                                   for k in cosines[0]))


def probe_single_task(trainer, args: argparse.Namespace) -> None:
    """A per-task model's whole-step gradient norm: nnU-Net's own train_step, with clip_grad_norm_'s return value
    recorded and the optimizer step skipped."""
    norms: list[float] = []
    clip = torch.nn.utils.clip_grad_norm_

    def recording_clip(parameters, max_norm, *a, **k):
        norms.append(float(clip(parameters, max_norm, *a, **k)))
        return norms[-1]

    torch.nn.utils.clip_grad_norm_ = recording_clip
    trainer.optimizer.step = lambda *a, **k: None
    for _ in range(args.steps):
        trainer.train_step(next(trainer.dataloader_train))
        print(f"step {norms[-1]:.2f}", flush=True)
    torch.nn.utils.clip_grad_norm_ = clip
    print(f"\n{args.steps} steps of {args.trainer} fold {args.fold} ({args.checkpoint}), median gradient norm: "
          f"{np.median(norms):.2f}")
    print(f"steps clipped (norm > {CLIP_NORM:g}): {sum(n > CLIP_NORM for n in norms)} of {len(norms)}")


if __name__ == "__main__":
    sys.exit(main())
