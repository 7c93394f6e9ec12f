"""Networks, bins and losses for CTX -> CRISM band prediction (Stepcenkov, Wilhelm, Woehler 2022).

* :class:`Pan2SpecNet`: any segmentation_models_pytorch architecture and encoder by name, 1 (CTX)
  or 2 (CTX + DEM) input channels, reflection padding of the input (to a multiple of the encoder's
  output stride plus ``pad`` pixels a side, cropped afterwards).  Regression outputs ``N_S``
  channels; classification outputs ``N_S * N_B`` channels reshaped to ``(N, N_B, N_S, H, W)``.
* :class:`Bins`: ``N_B`` bins over ``[-r, r]``, equidistant or spacing-increasing (SID: edges
  ``+-((1 + r)^(k/K) - 1)``, ``K = N_B/2``, narrow near 0 and wider outwards); class weights
  ``w_i = 1 - exp(-i'^2)`` with ``i' = 2i/N_B - 1`` (i = 0..N_B-1; the formula gives the bin at
  ``i = N_B/2`` weight 0); decoding by argmax or by the probability-weighted sum of bin centres.
* Masked losses: MSE / L1 for regression, weighted cross-entropy (optionally ``0.1 CE + 0.9 L1`` of
  the argmax reconstruction, with a straight-through gradient through the expectation).
* :func:`confidence`: per-pixel peak probability and normalised entropy (mean over the bands).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from orbitml.errors import OrbitmlInputError

__all__ = ["Bins", "bin_edges", "class_weights", "Pan2SpecNet", "masked_regression_loss", "classification_loss",
           "confidence", "build_net"]


def bin_edges(n_bins: int, r: float, spacing: str = "equidistant") -> np.ndarray:
    """``n_bins + 1`` edges over ``[-r, r]``."""
    if n_bins < 2 or r <= 0:
        raise OrbitmlInputError(f"bins need n >= 2 and r > 0, got n={n_bins}, r={r}")
    if spacing == "equidistant":
        return np.linspace(-r, r, n_bins + 1)
    if spacing == "sid":
        if n_bins % 2:
            raise OrbitmlInputError(f"SID bins are symmetric about 0 and need an even number, got {n_bins}")
        k = n_bins // 2
        t = (1.0 + r) ** (np.arange(k + 1) / k) - 1.0
        return np.concatenate([-t[::-1], t[1:]])
    raise OrbitmlInputError(f"unknown bin spacing {spacing!r}; use equidistant or sid")


def class_weights(n_bins: int) -> np.ndarray:
    """Inverse-Gaussian class weights ``w_i = 1 - exp(-i'^2)``, ``i' = 2i/N_B - 1``."""
    i = np.arange(n_bins, dtype=float)
    ip = 2.0 * i / n_bins - 1.0
    return 1.0 - np.exp(-(ip**2))


class Bins:
    def __init__(self, n: int = 20, r: float = 6.0, spacing: str = "equidistant"):
        self.n, self.r, self.spacing = int(n), float(r), spacing
        self.edges = bin_edges(self.n, self.r, spacing)
        self.centres = 0.5 * (self.edges[:-1] + self.edges[1:])

    def to_card(self) -> dict[str, Any]:
        return {"n": self.n, "r": self.r, "spacing": self.spacing, "edges": self.edges.tolist(),
                "centres": self.centres.tolist()}

    def encode(self, values: torch.Tensor) -> torch.Tensor:
        """Bin index of each value; values beyond ``[-r, r]`` go to the outer bins."""
        inner = torch.as_tensor(self.edges[1:-1], dtype=values.dtype, device=values.device)
        return torch.bucketize(values.contiguous(), inner, right=True)

    def decode(self, probs: torch.Tensor, mode: str = "expectation") -> torch.Tensor:
        """``(N, N_B, N_S, H, W)`` probabilities -> ``(N, N_S, H, W)`` values."""
        c = torch.as_tensor(self.centres, dtype=probs.dtype, device=probs.device)
        if mode == "argmax":
            return c[probs.argmax(dim=1)]
        if mode == "expectation":
            return torch.einsum("nbshw,b->nshw", probs, c)
        raise OrbitmlInputError(f"unknown reconstruction {mode!r}; use argmax or expectation")


def confidence(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(peak probability, entropy / log N_B)``, each ``(N, H, W)``, averaged over the bands."""
    peak = probs.max(dim=1).values.mean(dim=1)
    ent = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1) / math.log(probs.shape[1])
    return peak, ent.mean(dim=1)


def masked_regression_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, kind: str = "mse"):
    """Mean of ``(pred - target)^2`` (or ``|.|``) over valid pixels and all bands."""
    diff = pred - target
    err = diff * diff if kind == "mse" else diff.abs()
    m = valid[:, None].to(err.dtype).expand_as(err)
    return (err * m).sum() / m.sum().clamp_min(1.0)


def classification_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, bins: Bins,
                        weights: torch.Tensor | None = None, l1_weight: float = 0.0) -> torch.Tensor:
    """Weighted CE over valid pixels (normalised by the weights of the valid targets), plus
    ``l1_weight`` x L1 of the argmax reconstruction (CE weight ``1 - l1_weight``)."""
    idx = bins.encode(target)
    ce = F.cross_entropy(logits, idx, weight=weights, reduction="none")  # (N, N_S, H, W)
    m = valid[:, None].to(ce.dtype).expand_as(ce)
    w = weights[idx] * m if weights is not None else m
    loss = (ce * m).sum() / w.sum().clamp_min(1e-6)
    if l1_weight > 0:
        probs = logits.softmax(dim=1)
        soft = bins.decode(probs, "expectation")
        hard = bins.decode(probs, "argmax")
        recon = soft + (hard - soft).detach()  # argmax value, gradient of the expectation
        loss = (1 - l1_weight) * loss + l1_weight * masked_regression_loss(recon, target, valid, "l1")
    return loss


@contextlib.contextmanager
def _offline_hub(active: bool):
    """Pretrained encoder weights only from the local cache: no download at run time."""
    if not active:
        yield
        return
    import huggingface_hub.constants as hfc

    old = hfc.HF_HUB_OFFLINE
    hfc.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hfc.HF_HUB_OFFLINE = old


class Pan2SpecNet(nn.Module):
    """smp model with reflection padding; see module docstring."""

    def __init__(self, architecture: str = "Unet", encoder: str = "efficientnet-b0", in_channels: int = 1,
                 n_bands: int = 3, task: str = "regression", n_bins: int = 20, encoder_depth: int = 5,
                 encoder_weights: str | None = None, pad: int = 8, model_kwargs: dict | None = None):
        super().__init__()
        import segmentation_models_pytorch as smp

        if task not in ("regression", "classification"):
            raise OrbitmlInputError(f"unknown task {task!r}; use regression or classification")
        self.task, self.n_bands, self.n_bins, self.pad = task, int(n_bands), int(n_bins), int(pad)
        classes = self.n_bands * (self.n_bins if task == "classification" else 1)
        kwargs = dict(model_kwargs or {})
        if encoder_depth != 5:
            kwargs["encoder_depth"] = int(encoder_depth)
        if encoder_weights is not None and encoder.startswith("tu-"):
            encoder_weights = True  # timm encoders name their pretrained tag in the encoder name
        try:
            with _offline_hub(encoder_weights is not None):
                self.net = smp.create_model(architecture, encoder_name=encoder, encoder_weights=encoder_weights,
                                            in_channels=int(in_channels), classes=classes, **kwargs)
        except KeyError as exc:
            raise OrbitmlInputError(f"unknown architecture or encoder: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise OrbitmlInputError(f"cannot build {architecture} with encoder {encoder}: {exc}") from None
        except OSError as exc:
            raise OrbitmlInputError(f"ImageNet weights for {encoder} are not available locally ({exc}); "
                                    "use encoder_weights: null") from None
        self.multiple = 2 ** int(encoder_depth)
        if architecture.lower() in ("pspnet",):
            self.multiple = max(self.multiple, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        m = self.multiple
        th = -(-(h + 2 * self.pad) // m) * m
        tw = -(-(w + 2 * self.pad) // m) * m
        top, left = (th - h) // 2, (tw - w) // 2
        pads = (left, tw - w - left, top, th - h - top)
        mode = "reflect" if max(pads) < min(h, w) else "replicate"
        y = self.net(F.pad(x, pads, mode=mode))[:, :, top: top + h, left: left + w]
        if self.task == "classification":
            y = y.reshape(n, self.n_bins, self.n_bands, h, w)
        return y


def build_net(card: dict[str, Any], encoder_weights: str | None = None) -> Pan2SpecNet:
    """The network a model card describes (weights not loaded)."""
    m = card["model"]
    return Pan2SpecNet(architecture=m["architecture"], encoder=m["encoder"], in_channels=int(card["in_channels"]),
                       n_bands=len(card["bands_nm"]), task=card["task"],
                       n_bins=int((card.get("bins") or {}).get("n", 20)), encoder_depth=int(m["encoder_depth"]),
                       encoder_weights=encoder_weights, pad=int(m.get("pad", 8)),
                       model_kwargs=m.get("model_kwargs") or {})
