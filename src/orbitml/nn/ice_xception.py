"""Chunk classifiers for the ice workflow: the small Xception of Gergácz & Kereszturi, or any timm model.

:class:`IceXception` follows the small Xception used in the paper (the Keras "image classification
from scratch" network): a 3 x 3 stride-2 convolution stem, then blocks of two depthwise-separable
3 x 3 convolutions, each followed by batch normalisation before its ReLU, a 3 x 3 stride-2 max-pool
and a 1 x 1 stride-2 residual projection; a last separable convolution, global average pooling,
dropout 0.5 and one output unit (a logit; ``sigmoid`` of it is the ice probability; trained with
binary cross-entropy and Adam).  ``pool="max"`` replaces the global average by a global maximum
(a patch of a few pixels then dominates the chunk's score instead of being averaged away; an
option, not the paper's).  The paper's widths are ``stem=128, blocks=(256, 512, 728),
head=1024`` (:data:`PAPER_WIDTHS`); tests and demos use narrower ones.

:func:`build_model` makes either that network or ``timm.create_model(name, pretrained=False,
in_chans=1, num_classes=1)`` (no weights are ever downloaded).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["IceXception", "PAPER_WIDTHS", "build_model", "describe_model"]

PAPER_WIDTHS: dict[str, Any] = {"stem": 128, "blocks": (256, 512, 728), "head": 1024}


class SeparableConv(nn.Module):
    """Depthwise 3 x 3 then pointwise 1 x 1 convolution (no bias; a BN follows)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), SeparableConv(cin, cout), nn.BatchNorm2d(cout),
            nn.ReLU(), SeparableConv(cout, cout), nn.BatchNorm2d(cout),
            nn.MaxPool2d(3, stride=2, padding=1))
        self.residual = nn.Conv2d(cin, cout, 1, stride=2)

    def forward(self, x):
        return self.body(x) + self.residual(x)


class IceXception(nn.Module):
    """``(N, in_chans, H, W)`` -> ``(N, 1)`` logits."""

    def __init__(self, in_chans: int = 1, stem: int = 128, blocks: tuple[int, ...] = (256, 512, 728),
                 head: int = 1024, dropout: float = 0.5, pool: str = "avg"):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be avg or max, got {pool!r}")
        self.stem = nn.Sequential(nn.Conv2d(in_chans, stem, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(stem), nn.ReLU())
        layers, c = [], stem
        for w in blocks:
            layers.append(XceptionBlock(c, w))
            c = w
        self.blocks = nn.Sequential(*layers)
        gpool = nn.AdaptiveAvgPool2d(1) if pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.head = nn.Sequential(SeparableConv(c, head), nn.BatchNorm2d(head), nn.ReLU(),
                                  gpool, nn.Flatten(), nn.Dropout(dropout), nn.Linear(head, 1))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def build_model(architecture: str = "ice_xception", **kwargs: Any) -> nn.Module:
    """The named chunk classifier: ``ice_xception`` (kwargs: stem, blocks, head, dropout) or a timm name."""
    if architecture == "ice_xception":
        kw = {**PAPER_WIDTHS, **kwargs}
        kw["blocks"] = tuple(kw["blocks"])
        return IceXception(in_chans=1, **kw)
    import timm

    from orbitml.errors import OrbitmlInputError

    try:
        return timm.create_model(architecture, pretrained=False, in_chans=1, num_classes=1, **kwargs)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise OrbitmlInputError(f"cannot build model {architecture!r}: {str(exc).splitlines()[0]}") from None


def describe_model(net: nn.Module) -> dict[str, int]:
    n = int(sum(p.numel() for p in net.parameters()))
    trainable = int(sum(p.numel() for p in net.parameters() if p.requires_grad))
    return {"n_parameters": n, "n_trainable": trainable}


def _lightning_module():
    import lightning as L
    from torch.nn import functional as F

    class _IceLightning(L.LightningModule):
        """BCE on logits (the sigmoid output's cross-entropy, computed stably), Adam."""

        def __init__(self, net: nn.Module, lr: float = 1e-3):
            super().__init__()
            self.net = net
            self.lr = lr
            self.train_losses: list[float] = []

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.binary_cross_entropy_with_logits(self.net(x)[:, 0], y)
            self.train_losses.append(float(loss.detach()))
            self.log("train_loss", loss, on_epoch=True, on_step=False, batch_size=len(x))
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            logit = self.net(x)[:, 0]
            loss = F.binary_cross_entropy_with_logits(logit, y)
            acc = ((logit > 0).float() == y).float().mean()
            self.log("val_loss", loss, prog_bar=True, batch_size=len(x))
            self.log("val_acc", acc, batch_size=len(x))
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.net.parameters(), lr=self.lr)

    return _IceLightning


def lightning_module(net: nn.Module, lr: float = 1e-3):
    """A LightningModule training ``net`` with BCE + Adam."""
    return _lightning_module()(net, lr)


@torch.inference_mode()
def predict_proba(net: nn.Module, x, device: str = "cpu", batch_size: int = 64):
    """Sigmoid probabilities ``(N,)`` for inputs ``(N, 1, h, w)`` (numpy or tensor)."""
    import numpy as np

    net.eval()
    t = torch.as_tensor(x)
    out = []
    for i in range(0, len(t), batch_size):
        out.append(torch.sigmoid(net(t[i:i + batch_size].to(device))[:, 0]).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)
