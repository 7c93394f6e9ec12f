"""A small fully-convolutional network for tests, benchmarks and demos of the tiling engine.

``TinyConvNet`` maps ``(N, C, h, w)`` to ``(N, K, h, w)`` with 3x3 convolutions (reflection
padding, so a tile's border is treated like the image border) and ReLU in between.  Its receptive
field has a half-width of ``depth`` pixels: :attr:`halo`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TinyConvNet"]


class TinyConvNet(nn.Module):
    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 8, depth: int = 2, seed: int = 0):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        gen = torch.Generator().manual_seed(seed)
        layers: list[nn.Module] = []
        ch = in_channels
        for k in range(depth):
            last = k == depth - 1
            conv = nn.Conv2d(ch, out_channels if last else width, 3, padding=1, padding_mode="reflect")
            with torch.no_grad():  # seeded initialisation, independent of the global RNG
                fan_in = ch * 9
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) / fan_in**0.5)
                conv.bias.zero_()
            layers.append(conv)
            if not last:
                layers.append(nn.ReLU())
            ch = width
        self.net = nn.Sequential(*layers)
        self.halo = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
