"""Experiment: why did the two hippocampus prompts of the benchmark give one mask? A small, fast training loop on real
Task04 cases (whole images padded to one 40x56x40 patch, random mirroring, no nnU-Net data pipeline) that trains the
UniSeMi network (features 8-64) on two tasks, "anterior" and "posterior" (disjoint case sets, each labeled case marked
only with its own part, as in the benchmark), and reports every --eval-every steps, on held-out cases, each prompt's
Dice to its own part, the Dice between the two prompts' masks and the share of the anterior prompt's mask that lies
on the posterior part; and on the training cases, each prompt's Dice to the case's own part.

Variants: prompts_only (the paper's supervised term), exclusive (+ cross-task exclusion), synthetic (+ the synthetic
task), mixed_prompts (exclusive + CutMix of two tasks' labeled cases decoded under both task prompts, unknown voxels
ignored), full_labels (control: both parts on every case), single_anterior (one task: the per-task reference);
--unlabeled N --prompt-overlap-weight W [--overlap-rampup F] (+ soft Dice between the two prompts' masks on unlabeled
cases: the tasks are disjoint), --separate-prompts (per-prompt He kernels, no trained shared bias);
--head static_binary (independent static binary heads, a control), --context (controller input [GAP, prompt]),
--head-channels 8 (DoDNet's shared reduction to 8 channels before the dynamic kernels).
Results: docs/BENCHMARKS.md, "Why two prompts gave one mask". About 8 min per run on one core:

    python benchmarks/experiments/prompt_saddle_toy.py --steps 600 --variant exclusive --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from torch import nn

from nnunetv2_unisemi.network.unisemi_network import UniSeMiNetwork
from nnunetv2_unisemi.prompt_orthogonality import kernel_alignment
from nnunetv2_unisemi.task_mixing import sample_cutmix_masks, synthesize_task_batch
from nnunetv2_unisemi.training.variants.ssl_losses import sigmoid_rampup

PATCH = (40, 56, 40)
REPO = Path(__file__).resolve().parents[2]


def load_case(data: Path, case: str) -> tuple[np.ndarray, np.ndarray]:
    img = sitk.GetArrayFromImage(sitk.ReadImage(str(data / "imagesTr" / f"{case}.nii.gz"))).astype(np.float32)
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(data / "labelsTr" / f"{case}.nii.gz"))).astype(np.int64)
    img = (img - img.mean()) / max(img.std(), 1e-6)
    out_i = np.zeros(PATCH, np.float32)
    out_l = np.zeros(PATCH, np.int64)
    sl = tuple(slice(0, min(s, p)) for s, p in zip(img.shape, PATCH))
    out_i[sl] = img[sl]
    out_l[sl] = lab[sl]
    return out_i, out_l


def build(features, n_prompts: int, head_channels: int | None, hidden: int, context: bool,
          separate_prompts: bool = False) -> UniSeMiNetwork:
    n = len(features)
    unet = PlainConvUNet(1, n, features, nn.Conv3d, 3, [1] + [2] * (n - 1), 2, 2, [2] * (n - 1), True,
                         nn.InstanceNorm3d, {"eps": 1e-5, "affine": True}, None, None, nn.LeakyReLU,
                         {"inplace": True}, deep_supervision=False)
    from dynamic_network_architectures.initialization.weight_init import InitWeights_He
    unet.apply(InitWeights_He(1e-2))
    return UniSeMiNetwork(unet.encoder, unet.decoder, n_prompts, head_channels=head_channels,
                          head_hidden_layers=hidden, head_context=context, head_separate_prompts=separate_prompts)


class StaticBinaryHeads(nn.Module):
    """Control: a plain U-Net whose seg layer has 2 channels per prompt (independent static binary heads)."""

    def __init__(self, features, n_prompts: int):
        super().__init__()
        n = len(features)
        self.unet = PlainConvUNet(1, n, features, nn.Conv3d, 3, [1] + [2] * (n - 1), 2, 2 * n_prompts, [2] * (n - 1),
                                  True, nn.InstanceNorm3d, {"eps": 1e-5, "affine": True}, None, None, nn.LeakyReLU,
                                  {"inplace": True}, deep_supervision=False)
        from dynamic_network_architectures.initialization.weight_init import InitWeights_He
        self.unet.apply(InitWeights_He(1e-2))

    def forward(self, x, prompts):
        out = self.unet(x)
        pick = lambda t: torch.stack([out[i, 2 * (k - 1): 2 * k] for i, k in enumerate(t.tolist())])  # noqa: E731
        return pick(prompts) if prompts.ndim == 1 else [pick(prompts[:, j]) for j in range(prompts.shape[1])]


def mirror(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):
    for ax in (2, 3, 4):
        if rng.random() < 0.5:
            x, y = x.flip(ax), y.flip(ax)
    return x, y


def prompt_overlap(probs: list[torch.Tensor], smooth: float = 1e-5) -> torch.Tensor:
    """Soft Dice between two task prompts' foreground probabilities, per sample, averaged (tasks are disjoint)."""
    a, b = probs[0].flatten(1), probs[1].flatten(1)
    return (2 * (a * b).sum(1) / (a.sum(1) + b.sum(1) + smooth)).mean()


def task_kernel_directions(net) -> torch.Tensor:
    """(2, C): each task prompt's foreground-minus-background kernel on the decoder features (prompt-only heads)."""
    if isinstance(net, StaticBinaryHeads):
        w = net.unet.decoder.seg_layers[-1].weight.flatten(1)  # (2 * prompts, C)
        return torch.stack([w[2 * k + 1] - w[2 * k] for k in (0, 1)])
    return net.head.prompt_kernel_directions([1, 2])[0]  # the one scale this loop trains


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "Task04_Hippocampus"))
    p.add_argument("--variant", default="prompts_only",
                   choices=["prompts_only", "synthetic", "single_anterior", "full_labels", "exclusive",
                            "mixed_prompts"])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--labeled", type=int, default=8)
    p.add_argument("--test", type=int, default=8)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--features", type=int, nargs="+", default=[8, 16, 32, 64])
    p.add_argument("--head-channels", type=int, default=None,
                   help="shared 1x1x1 reduction before the dynamic kernels (DoDNet: 8); default none")
    p.add_argument("--hidden", type=int, default=0)
    p.add_argument("--no-mirror", action="store_true")
    p.add_argument("--head", default="dynamic", choices=["dynamic", "static_binary"])
    p.add_argument("--context", action="store_true", help="controller input [GAP, prompt] (Eq. 1 as written)")
    p.add_argument("--separate-prompts", action="store_true", help="per-prompt He kernels, controller bias frozen")
    p.add_argument("--unlabeled", type=int, default=0, help="unlabeled cases (after the test cases)")
    p.add_argument("--unlabeled-batch", type=int, default=2)
    p.add_argument("--prompt-overlap-weight", type=float, default=0.0,
                   help="weight of the soft Dice between the task prompts' masks on unlabeled images")
    p.add_argument("--overlap-rampup", type=float, default=0.0,
                   help="sigmoid ramp-up of that weight over this fraction of the steps (as the trainer's lambda)")
    p.add_argument("--kernel-orthogonality", type=float, default=0.0,
                   help="weight of cos^2 between the two task prompts' foreground-minus-background kernels")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data = Path(args.data)
    cases = sorted(f.name[:-7] for f in (data / "labelsTr").glob("*.nii.gz"))
    order = np.random.default_rng(1234).permutation(len(cases))
    cases = [cases[i] for i in order]
    ant, post = cases[: args.labeled], cases[args.labeled: 2 * args.labeled]
    test = cases[2 * args.labeled: 2 * args.labeled + args.test]
    unlabeled = cases[2 * args.labeled + args.test: 2 * args.labeled + args.test + args.unlabeled]
    load = {c: load_case(data, c) for c in ant + post + test + unlabeled}
    # tasks: 1 = anterior (Task04 label 1), 2 = posterior (label 2); prompt 3 = synthetic
    train = [(c, 1) for c in ant] + ([] if args.variant == "single_anterior" else [(c, 2) for c in post])
    net = build(args.features, 3, args.head_channels, args.hidden, args.context, args.separate_prompts) \
        if args.head == "dynamic" else \
        StaticBinaryHeads(args.features, 3)
    loss_fn = DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": False}, {},
                             weight_ce=1, weight_dice=1, ignore_label=None, dice_class=MemoryEfficientSoftDiceLoss)
    partial_loss_fn = DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": False}, {},
                                     weight_ce=1, weight_dice=1, ignore_label=2,
                                     dice_class=MemoryEfficientSoftDiceLoss)
    opt = torch.optim.SGD(net.parameters(), args.lr, weight_decay=3e-5, momentum=0.99, nesterov=True)
    history = []
    t0 = time.time()
    for step in range(args.steps + 1):
        if step % args.eval_every == 0:
            net.eval()
            with torch.no_grad():
                x = torch.from_numpy(np.stack([load[c][0] for c in test]))[:, None]
                outs = net(x, torch.tensor([[1, 2]] * len(test)))
                masks = [(o.argmax(1) == 1).numpy() for o in outs]
            refs = [np.stack([load[c][1] == k for c in test]) for k in (1, 2)]
            row = {"step": step, "s": round(time.time() - t0, 1),
                   "anterior_dice": round(np.mean([dice(m, r) for m, r in zip(masks[0], refs[0])]), 3),
                   "posterior_dice": round(np.mean([dice(m, r) for m, r in zip(masks[1], refs[1])]), 3),
                   "between_prompts": round(np.mean([dice(a, b) for a, b in zip(masks[0], masks[1])]), 3),
                   "ant_prompt_on_post": round(float((masks[0] & refs[1]).sum() / max(1, masks[0].sum())), 3)}
            with torch.no_grad():  # training cases: does the model segment each case's own labeled part?
                own = []
                for cases_t, t in ((ant, 1), (post, 2)):
                    x = torch.from_numpy(np.stack([load[c][0] for c in cases_t]))[:, None]
                    m = (net(x, torch.full((len(cases_t),), t)).argmax(1) == 1).numpy()
                    own.append(np.mean([dice(mi, load[c][1] == t) for mi, c in zip(m, cases_t)]))
            row["train_anterior_dice"], row["train_posterior_dice"] = round(own[0], 3), round(own[1], 3)
            history.append(row)
            print(json.dumps(row), flush=True)
            net.train()
        if step == args.steps:
            break
        for g in opt.param_groups:
            g["lr"] = args.lr * (1 - step / args.steps) ** 0.9
        picks = [train[i] for i in rng.integers(len(train), size=args.batch)]
        x = torch.from_numpy(np.stack([load[c][0] for c, _ in picks]))[:, None]
        # full_labels: the task-t sample also carries the other part (only for this experiment's control)
        y = torch.from_numpy(np.stack([load[c][1] for c, _ in picks]))[:, None].long()
        if args.variant != "full_labels":
            y = (y == torch.tensor([t for _, t in picks]).view(-1, 1, 1, 1, 1)).long()
        if not args.no_mirror:
            xs, ys = zip(*(mirror(x[i:i + 1], y[i:i + 1], rng) for i in range(len(picks))))
            x, y = torch.cat(xs), torch.cat(ys)
        prompts = torch.tensor([t for _, t in picks])
        targets = [y]
        if args.variant == "synthetic":
            pairs = [(i, j) for i in range(len(picks)) for j in range(len(picks)) if picks[i][1] != picks[j][1]]
            pairs = [pairs[k] for k in rng.permutation(len(pairs))[: args.batch // 2]]
            if pairs:
                m = sample_cutmix_masks(len(pairs), PATCH, "zero_centered", rng)
                sx, sy = synthesize_task_batch(x, targets, pairs, m)
                x = torch.cat((x, sx))
                targets = [torch.cat((targets[0], sy[0].long()))]
                prompts = torch.cat((prompts, torch.full((len(pairs),), 3)))
        if args.variant == "full_labels":
            out = net(x, torch.tensor([[1, 2]] * len(picks)))
            loss = loss_fn(out[0], (y == 1).long()) + loss_fn(out[1], (y == 2).long())
        elif args.variant == "mixed_prompts":
            # exclusive + CutMix of two labeled cases of different tasks, decoded under each source task's prompt:
            # the image holds both tasks' annotated parts, so only the prompt says which one to segment. Under
            # task t: its own case's region is fully known; in the other case's region only that case's own part is
            # known (background for t, exclusion); the rest is unknown (ignore = 2)
            pairs = [(i, j) for i in range(len(picks)) for j in range(len(picks)) if picks[i][1] < picks[j][1]]
            pairs = [pairs[k] for k in rng.permutation(len(pairs))[: args.batch // 2]]
            n = len(picks)
            both = torch.stack((prompts, 3 - prompts), 1)
            if pairs:
                i1 = torch.tensor([i for i, _ in pairs])
                i2 = torch.tensor([j for _, j in pairs])
                m = sample_cutmix_masks(len(pairs), PATCH, "zero_centered", rng)[:, None]
                sx = torch.where(m, x[i1], x[i2])
                y1, y2 = targets[0][i1], targets[0][i2]
                t_first = torch.where(m, y1, torch.where(y2 == 1, 0, 2))
                t_second = torch.where(m, torch.where(y1 == 1, 0, 2), y2)
                x = torch.cat((x, sx))
                both = torch.cat((both, torch.stack((prompts[i1], prompts[i2]), 1)))
            out = net(x, both)
            own = targets[0][:, 0].bool()
            ce = torch.nn.functional.cross_entropy(out[1][:n], torch.zeros_like(targets[0][:, 0]), reduction="none")
            loss = loss_fn(out[0][:n], targets[0]) + (ce * own).sum() / own.numel()
            if pairs:
                loss = loss + partial_loss_fn(out[0][n:], t_first) + partial_loss_fn(out[1][n:], t_second)
        elif args.variant == "exclusive":
            # also under the other task's prompt: the sample's own part is that task's background (rest unknown)
            out = net(x, torch.stack((prompts, 3 - prompts), 1))
            own = targets[0][:, 0].bool()
            ce = torch.nn.functional.cross_entropy(out[1], torch.zeros_like(targets[0][:, 0]), reduction="none")
            loss = loss_fn(out[0], targets[0]) + (ce * own).sum() / own.numel()  # nnU-Net's per-voxel CE weight
        else:
            loss = loss_fn(net(x, prompts), targets[0])
        if args.kernel_orthogonality > 0:
            loss = loss + args.kernel_orthogonality * kernel_alignment([task_kernel_directions(net)])
        if args.unlabeled and args.prompt_overlap_weight > 0:
            u = torch.from_numpy(np.stack([load[unlabeled[i]][0] for i in rng.integers(len(unlabeled),
                                                                                        size=args.unlabeled_batch)]))
            u = u[:, None]
            if not args.no_mirror:
                u = torch.cat([mirror(u[i:i + 1], u[i:i + 1], rng)[0] for i in range(len(u))])
            pu = [o.softmax(1)[:, 1] for o in net(u, torch.tensor([[1, 2]] * len(u)))]
            ramp = sigmoid_rampup(step, args.overlap_rampup * args.steps)
            loss = loss + args.prompt_overlap_weight * ramp * prompt_overlap(pu)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
        opt.step()
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "history": history}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
