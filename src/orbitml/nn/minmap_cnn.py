"""Residual 3-D CNN for library-trained mineral mapping, fully convolutional in space.

Input: a ``(N, R, H, W)`` stack of ``R`` projected spectral dimensions.  Every spatial convolution
is a 3 x 3 *valid* convolution (no spatial padding), there is no spatial pooling or flattening, and
both heads are 1 x 1 convolutions, so the receptive field is exactly ``patch x patch`` and

* a ``(N, R, patch, patch)`` patch gives a ``(N, K, 1, 1)`` output: the result for its centre pixel;
* a ``(1, R, H + patch - 1, W + patch - 1)`` input gives ``(1, K, H, W)``: the result of every
  ``patch x patch`` neighbourhood at once, without extracting one patch per pixel.

Layout for ``patch = 27`` (13 valid 3 x 3 convolutions, each shrinking the map by 2):

1. 3-D stem: ``Conv3d(1, c3, (3, 3, 3))`` padded along the spectral axis only;
2. two residual 3-D blocks (two ``Conv3d(c3, c3, (3, 3, 3))`` each; the skip is the centre crop);
3. spectral collapse: ``Conv3d(c3, width, (R, 1, 1))`` turns the spectral axis into channels;
4. residual 2-D blocks of two ``Conv2d(width, width, 3)`` (the skip is the centre crop), plus one
   single convolution when the count of remaining convolutions is odd;
5. heads (1 x 1 convolutions): class logits (K) and abundances (K, softmax: >= 0, sum to one).

With ``width=120``, ``c3=32`` and ``R=15`` it has about 1.25 M parameters.  BatchNorm makes the
patch and the fully convolutional results equal only in eval mode (batch statistics differ).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

__all__ = ["MinmapCNN", "dice_focal_loss", "n_spatial_convs"]


def n_spatial_convs(patch: int) -> int:
    """Number of valid 3 x 3 convolutions whose receptive field is ``patch`` (odd, >= 11)."""
    if patch < 11 or patch % 2 == 0:
        raise ValueError(f"patch must be an odd number >= 11, got {patch}")
    return (patch - 1) // 2


def _crop(x: torch.Tensor, k: int) -> torch.Tensor:
    return x[..., k:-k, k:-k] if k else x


class _Block3d(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.c1 = nn.Conv3d(c, c, (3, 3, 3), padding=(1, 0, 0), bias=False)
        self.b1 = nn.BatchNorm3d(c)
        self.c2 = nn.Conv3d(c, c, (3, 3, 3), padding=(1, 0, 0), bias=False)
        self.b2 = nn.BatchNorm3d(c)

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + _crop(x, 2))


class _Block2d(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, bias=False)
        self.b1 = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 3, bias=False)
        self.b2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + _crop(x, 2))


class MinmapCNN(nn.Module):
    """Two-head residual 3-D CNN; see the module docstring.

    ``forward(x)`` returns ``(logits, abundances)``, each ``(N, K, H - patch + 1, W - patch + 1)``.
    """

    def __init__(self, n_dims: int, n_classes: int, *, patch: int = 27, width: int = 120, c3: int = 32,
                 head: int = 128):
        super().__init__()
        n = n_spatial_convs(patch)
        if n_dims < 1 or n_classes < 2:
            raise ValueError(f"need n_dims >= 1 and n_classes >= 2, got {n_dims}, {n_classes}")
        self.n_dims, self.n_classes, self.patch = int(n_dims), int(n_classes), int(patch)
        self.stem = nn.Sequential(nn.Conv3d(1, c3, (3, 3, 3), padding=(1, 0, 0), bias=False),
                                  nn.BatchNorm3d(c3), nn.ReLU(inplace=True))
        self.blocks3d = nn.Sequential(_Block3d(c3), _Block3d(c3))
        self.collapse = nn.Sequential(nn.Conv3d(c3, width, (n_dims, 1, 1), bias=False),
                                      nn.BatchNorm3d(width), nn.ReLU(inplace=True))
        rest = n - 5  # convolutions left for the 2-D stage
        single: list[nn.Module] = []
        if rest % 2:
            single = [nn.Conv2d(width, width, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        self.blocks2d = nn.Sequential(*single, *[_Block2d(width) for _ in range(rest // 2)])
        self.class_head = nn.Sequential(nn.Conv2d(width, head, 1), nn.ReLU(inplace=True),
                                        nn.Conv2d(head, n_classes, 1))
        self.abundance_head = nn.Sequential(nn.Conv2d(width, head, 1), nn.ReLU(inplace=True),
                                            nn.Conv2d(head, n_classes, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != self.n_dims:
            raise ValueError(f"expected (N, {self.n_dims}, H, W), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < self.patch:
            raise ValueError(f"input {tuple(x.shape[-2:])} is smaller than the {self.patch}-pixel receptive field")
        y = self.stem(x.unsqueeze(1))
        y = self.blocks3d(y)
        y = self.collapse(y).squeeze(2)
        y = self.blocks2d(y)
        return self.class_head(y), torch.softmax(self.abundance_head(y), dim=1)


def dice_focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
                    dice_weight: float = 1.0, eps: float = 1.0) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) plus soft Dice loss (1 - mean per-class Dice) for ``(N, K)`` logits."""
    logp = F.log_softmax(logits, dim=1)
    lp_t = logp.gather(1, target[:, None]).squeeze(1)
    focal = (-(1.0 - lp_t.exp()) ** gamma * lp_t).mean()
    prob = logp.exp()
    onehot = F.one_hot(target, logits.shape[1]).to(prob.dtype)
    inter = (prob * onehot).sum(0)
    dice = (2 * inter + eps) / (prob.sum(0) + onehot.sum(0) + eps)
    return focal + dice_weight * (1.0 - dice.mean())
