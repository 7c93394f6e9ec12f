"""The 3-D CNN: parameter budget, exact receptive field, fully convolutional pass == per-pixel patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orbitml.nn.minmap_cnn import MinmapCNN, dice_focal_loss


def _randomise_bn(net: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics, so a train/eval mix-up would show."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)


def test_parameter_count_is_the_papers_budget():
    net = MinmapCNN(15, 6)  # default width at R = 15, six classes
    n = sum(p.numel() for p in net.parameters())
    assert abs(n - 1.25e6) <= 0.10 * 1.25e6, n


@pytest.mark.parametrize("patch", [11, 13, 27])
def test_receptive_field_is_exactly_the_patch(patch):
    torch.manual_seed(0)
    net = MinmapCNN(3, 3, patch=patch, width=8, c3=2, head=8).eval()
    _randomise_bn(net)
    h = patch // 2
    x = torch.randn(1, 3, patch + 2, patch + 2)  # output is 3 x 3; centre output (1, 1) sees rows 1..patch
    with torch.no_grad():
        base = net(x)[0][0, :, 1, 1]
        inside = x.clone()
        inside[0, :, 1 + 2 * h, 1:2 + 2 * h] += 5.0  # the last row of the centre output's field
        outside = x.clone()
        outside[0, :, 0, :] += 5.0  # the row just above it
        outside[0, :, :, -1] += 5.0  # and the column just right of it
        assert not torch.equal(net(inside)[0][0, :, 1, 1], base)
        assert torch.equal(net(outside)[0][0, :, 1, 1], base)
    assert net(torch.randn(2, 3, patch, patch))[0].shape == (2, 3, 1, 1)


def test_fully_convolutional_equals_per_pixel_patches():
    torch.manual_seed(1)
    R, K, P = 4, 3, 15
    net = MinmapCNN(R, K, patch=P, width=12, c3=3, head=8)
    _randomise_bn(net, 1)
    net.eval()
    H, W = 9, 11
    x = torch.randn(1, R, H + P - 1, W + P - 1)
    with torch.no_grad():
        logits, ab = net(x)
        patches = torch.stack([x[0, :, i:i + P, j:j + P] for i in range(H) for j in range(W)])
        pl, pa = net(patches)
    assert logits.shape == (1, K, H, W)
    np.testing.assert_allclose(logits[0].reshape(K, -1).T.numpy(), pl[:, :, 0, 0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ab[0].reshape(K, -1).T.numpy(), pa[:, :, 0, 0].numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ab.sum(1).numpy(), 1.0, atol=1e-6)  # softmax head: abundances sum to one
    # in train mode BatchNorm uses batch statistics, and the two passes differ
    net.train()
    with torch.no_grad():
        assert not torch.allclose(net(x)[0][0].reshape(K, -1).T, net(patches)[0][:, :, 0, 0], atol=1e-3)


def test_dice_focal_loss_orders_predictions():
    y = torch.tensor([0, 1, 2, 1])
    good = torch.nn.functional.one_hot(y, 3).float() * 8
    bad = torch.roll(good, 1, dims=1)
    assert dice_focal_loss(good, y) < 0.01 < 1.0 < dice_focal_loss(bad, y)
