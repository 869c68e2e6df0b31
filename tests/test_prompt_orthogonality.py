"""Orthogonal prompt kernels: the squared cosine between task prompts' kernel directions."""

import math

import torch
import torch.nn.functional as F

from nnunetv2_unisemi.prompt_orthogonality import kernel_alignment


def test_kernel_alignment_is_the_mean_squared_cosine_over_task_pairs_and_scales():
    torch.manual_seed(0)
    scales = [torch.randn(3, 8), torch.randn(3, 4)]
    expected = []
    for d in scales:
        pairs = [F.cosine_similarity(d[k], d[m], dim=0) ** 2 for k, m in ((0, 1), (0, 2), (1, 2))]
        expected.append(torch.stack(pairs).mean())
    torch.testing.assert_close(kernel_alignment(scales), torch.stack(expected).mean())
    e = torch.eye(4)
    assert kernel_alignment([e[:3]]).item() == 0  # orthogonal kernels
    assert math.isclose(kernel_alignment([torch.stack((e[0], -2 * e[0]))]).item(), 1.0, rel_tol=1e-6)  # opposed too
    assert kernel_alignment([torch.randn(1, 4)]).item() == 0  # one task


def test_descending_kernel_alignment_turns_two_kernels_apart():
    d = torch.tensor([[1.0, 0.2, 0.0], [1.0, -0.1, 0.3]], requires_grad=True)
    before = kernel_alignment([d]).item()
    optimizer = torch.optim.SGD([d], lr=0.1)
    for _ in range(20):
        optimizer.zero_grad()
        kernel_alignment([d]).backward()
        optimizer.step()
    assert kernel_alignment([d]).item() < 0.5 * before
