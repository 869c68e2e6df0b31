"""Exponential-moving-average (mean) teacher of a student network (Tarvainen & Valpola 2017; UA-MT, BCP).

The teacher is a frozen deep copy of the student: no parameter requires grad, and it is only changed by
`update` (theta_t <- a theta_t + (1 - a) theta_s) and `copy_from`. Buffers are copied from the student.
`EMATeacherCheckpointMixin` gives an nnU-Net trainer one, created after the network and kept in its checkpoints.
"""

from __future__ import annotations

import copy
import os
import tempfile

import torch
from torch import nn

TEACHER_KEY = "ema_teacher_weights"


def unwrap(network: nn.Module) -> nn.Module:
    """The plain module behind DDP and torch.compile wrappers."""
    network = getattr(network, "module", network)
    return getattr(network, "_orig_mod", network)


def warmup_decay(step: int, decay: float) -> float:
    """UA-MT's EMA decay after `step` steps: min(1 - 1 / (step + 1), decay), so the early teacher follows the student
    closely instead of keeping its random initialisation."""
    return min(1.0 - 1.0 / (step + 1), decay)


class EMATeacher:
    def __init__(self, student: nn.Module):
        self.network = copy.deepcopy(unwrap(student))
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.network.eval()

    @torch.no_grad()
    def update(self, student: nn.Module, decay: float) -> None:
        student = unwrap(student)
        for t, s in zip(self.network.parameters(), student.parameters()):
            t.mul_(decay).add_(s.detach(), alpha=1 - decay)
        for t, s in zip(self.network.buffers(), student.buffers()):
            t.copy_(s)

    @torch.no_grad()
    def copy_from(self, student: nn.Module) -> None:
        self.network.load_state_dict(unwrap(student).state_dict())

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def state_dict(self) -> dict:
        return self.network.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state)


class EMATeacherCheckpointMixin:
    """For nnU-Net trainers with an EMA teacher: `self.teacher` is created after the network and saved in every
    checkpoint (`ema_teacher_weights`, plus `ssl_step`, the training steps done) and restored on load.
    `network_weights` holds the student, which nnU-Net's predictor uses, unless `export_teacher` is True (then
    `network_weights` is the teacher and the student goes to `student_weights`, from where training resumes)."""

    teacher: EMATeacher | None = None
    ssl_step = 0
    export_teacher = False

    def initialize(self):
        if not self.was_initialized:
            super().initialize()
            self.teacher = EMATeacher(self.network)

    def save_checkpoint(self, filename: str) -> None:
        super().save_checkpoint(filename)
        if self.local_rank != 0 or self.disable_checkpointing or not os.path.isfile(filename):
            return
        checkpoint = torch.load(filename, map_location="cpu", weights_only=False)
        checkpoint[TEACHER_KEY] = self.teacher.state_dict()
        checkpoint["ssl_step"] = self.ssl_step
        if self.export_teacher:  # nnU-Net's predictor reads network_weights
            checkpoint["student_weights"] = checkpoint["network_weights"]
            checkpoint["network_weights"] = self.teacher.state_dict()
        torch.save(checkpoint, filename)

    def load_checkpoint(self, filename_or_checkpoint: dict | str) -> None:
        if isinstance(filename_or_checkpoint, dict):  # nnU-Net 2.8's load_checkpoint only reads files
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "checkpoint.pth")
                torch.save(filename_or_checkpoint, path)
                return self.load_checkpoint(path)
        filename = str(filename_or_checkpoint)
        checkpoint = torch.load(filename, map_location=self.device, weights_only=False)
        if "student_weights" in checkpoint:  # saved with export_teacher: restore the student for training
            checkpoint["network_weights"] = checkpoint["student_weights"]
            with tempfile.TemporaryDirectory() as tmp:
                filename = os.path.join(tmp, "checkpoint.pth")
                torch.save(checkpoint, filename)
                super().load_checkpoint(filename)
        else:
            super().load_checkpoint(filename)
        if TEACHER_KEY in checkpoint:
            self.teacher.load_state_dict(checkpoint[TEACHER_KEY])
        else:
            self.print_to_log_file("checkpoint without EMA teacher: the teacher restarts from the student")
            self.teacher.copy_from(self.network)
        self.ssl_step = int(checkpoint.get("ssl_step", self.current_epoch * self.num_iterations_per_epoch))
