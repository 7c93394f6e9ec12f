"""The minmap model: band projection (stored in the weights) + the fully convolutional 3-D CNN.

Projection: spectra on the model's bands ``x`` (B,) become ``z = x @ W + b`` (R,).  ``W`` comes from
the basis (the pseudo-inverse of ``R`` AVCA endmembers of the scene, or its first ``R`` principal
components) divided by the per-dimension spread of the augmented library spectra, so the network
sees standardised inputs.  ``R`` is fixed in the manifest or chosen by :func:`choose_dims`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from orbitml.errors import OrbitmlInputError
from orbitml.nn.minmap_cnn import MinmapCNN

__all__ = ["ARCHITECTURE", "MinmapModel", "choose_dims", "fit_projection", "build_model", "model_from_weights"]

ARCHITECTURE = "minmap-cnn-v1"


class MinmapModel(nn.Module):
    """Projection buffers, class-mean library spectra (for the FCLS baseline) and the CNN."""

    def __init__(self, n_bands: int, n_dims: int, n_classes: int, patch: int = 27, width: int = 120, c3: int = 32,
                 head: int = 128):
        super().__init__()
        self.register_buffer("proj_weight", torch.zeros(n_bands, n_dims))
        self.register_buffer("proj_bias", torch.zeros(n_dims))
        self.register_buffer("class_means", torch.zeros(n_classes, n_bands))
        self.net = MinmapCNN(n_dims, n_classes, patch=patch, width=width, c3=c3, head=head)

    @property
    def patch(self) -> int:
        return self.net.patch

    def project(self, X: np.ndarray) -> np.ndarray:
        """``(..., B)`` spectra -> ``(..., R)`` float32 network inputs."""
        W = self.proj_weight.cpu().numpy().astype(np.float64)
        return (np.asarray(X, dtype=np.float64) @ W + self.proj_bias.cpu().numpy()).astype(np.float32)

    def forward(self, z: torch.Tensor):
        return self.net(z)


def choose_dims(Xs: np.ndarray, n_classes: int, cfg: Any, fallback: np.ndarray | None = None) -> tuple[int, dict]:
    """``R`` and the record of how it was chosen.

    ``auto``: the median of HFC, NWHFC and HySime (:func:`orbitml.unmix.estimate_count`) on the
    scene's pixels, raised to the number of classes and capped at ``max_dims``.  The median of the
    three is robust to the one estimator that fails on a given scene: HySime overcounts real
    scenes with structured noise (43 on a 156-band, three-material scene where HFC says 9 and
    NWHFC 8), HFC/NWHFC undercount mixtures whose mean energy lies in few directions.  At least
    ``K`` dimensions are kept because ``K`` classes span a ``(K-1)``-simplex plus its offset.
    When the scene has too few pixels for the noise regression (fewer pixels than bands) the
    estimates are made on the augmented library spectra (``fallback``) instead, and the record says so;
    when neither allows an estimate, ``R`` is the number of classes.
    """
    from orbitml.unmix import estimate_count

    nb = Xs.shape[1]
    if cfg.dims != "auto":
        R = int(cfg.dims)
        if not 1 <= R <= nb:
            raise OrbitmlInputError(f"projection.dims = {R} but the model uses {nb} bands")
        return R, {"rule": "given in the manifest", "dims": R}
    source = "scene pixels"
    try:
        est = estimate_count(Xs, far=cfg.far, rule="median")
        if est.hysime is None and fallback is not None:  # too few pixels for the noise regression: HFC only
            raise OrbitmlInputError(est.notes[0] if est.notes else "only HFC could be computed on the scene")
    except OrbitmlInputError as exc:
        if fallback is None:
            raise
        source = f"augmented library spectra (scene unusable for the count: {exc.reason})"
        try:
            est = estimate_count(fallback, far=cfg.far, rule="median")
        except OrbitmlInputError as exc2:
            R = int(min(n_classes, nb))
            return R, {"rule": "number of classes: no count estimate possible on the scene "
                               f"({exc.reason}) nor on the library spectra ({exc2.reason})",
                       "dims": R, "estimates": None, "far": cfg.far}
    R = int(min(max(est.p, n_classes), cfg.max_dims, nb))
    info = {"rule": f"median(HFC, NWHFC, HySime) on {source}, at least the number of classes ({n_classes}), "
                    f"at most max_dims ({cfg.max_dims})",
            "dims": R, "estimates": {"hfc": est.hfc, "nwhfc": est.nwhfc, "hysime": est.hysime, "median": est.p},
            "far": cfg.far, "n_pixels": est.n_pixels, "source": source}
    return R, info


def fit_projection(Xs: np.ndarray, pools: list[np.ndarray], R: int, basis: str, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(W (B, R), b (R,), info)`` for the basis ``avca`` or ``pca`` fitted on the scene pixels ``Xs``."""
    X = np.asarray(Xs, dtype=np.float64)
    if basis == "avca":
        from orbitml.unmix import avca

        if X.shape[0] < R:
            raise OrbitmlInputError(f"AVCA needs at least {R} valid scene pixels, found {X.shape[0]}")
        E, idx, vinfo = avca(X, p=R, random_state=seed)
        P = np.linalg.pinv(E)  # (B, R): least-squares coordinates in the endmember basis
        b0 = np.zeros(R)
        info = {"basis": "avca", "endmember_pixels": [int(i) for i in np.asarray(idx).ravel()],
                "snr_db": vinfo.get("snr_db") if isinstance(vinfo, dict) else None}
    elif basis == "pca":
        mu = X.mean(axis=0)
        _, _, Vt = np.linalg.svd(X - mu, full_matrices=False)
        if Vt.shape[0] < R:
            raise OrbitmlInputError(f"PCA of {X.shape[0]} scene pixels gives {Vt.shape[0]} components, "
                                    f"fewer than R={R}")
        P = Vt[:R].T
        b0 = -mu @ P
        info = {"basis": "pca"}
    else:
        raise OrbitmlInputError(f"unknown projection basis {basis!r}; use avca or pca")
    Z = np.vstack(pools).astype(np.float64) @ P + b0
    m, s = Z.mean(axis=0), Z.std(axis=0)
    s = np.where(s > 0, s, 1.0)
    W = P / s
    b = (b0 - m) / s
    info.update(dims=int(R), standardised_on="augmented library spectra")
    return W, b, info


def build_model(config: dict) -> MinmapModel:
    keys = ("n_bands", "n_dims", "n_classes", "patch", "width", "c3", "head")
    try:
        return MinmapModel(**{k: int(config[k]) for k in keys})
    except (KeyError, TypeError, ValueError) as exc:
        raise OrbitmlInputError(f"model card has a bad `config`: {exc}") from None


def model_from_weights(path) -> tuple[MinmapModel, dict]:
    from orbitml.nn.weights import load_state_into, load_weights

    state, card = load_weights(path, architecture=ARCHITECTURE)
    model = build_model(card.get("config") or {})
    load_state_into(model, state, path)
    return model, card
