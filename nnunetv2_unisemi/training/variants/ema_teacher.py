"""Exponential-moving-average (mean) teacher of a student network (Tarvainen & Valpola 2017; UA-MT, BCP).

The teacher is a frozen deep copy of the student: no parameter requires grad, and it is only changed by
`update` (theta_t <- a theta_t + (1 - a) theta_s) and `copy_from`. Buffers are copied from the student.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def unwrap(network: nn.Module) -> nn.Module:
    """The plain module behind DDP and torch.compile wrappers."""
    network = getattr(network, "module", network)
    return getattr(network, "_orig_mod", network)


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
