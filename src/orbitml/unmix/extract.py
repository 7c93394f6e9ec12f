"""Endmember extraction: VCA, AVCA, ATGP and N-FINDR.

Every method returns endmembers as *original pixel spectra* (rows of the input, not projections
or averages) together with their pixel indices, so an endmember can be traced back to a place in
the scene.  Inputs are ``(n_pixels, n_bands)`` arrays or scenes (valid pixels only; indices are
then flat ``y * width + x`` indices).  Constant bands are ignored by the geometry (they carry no
information) but kept in the returned spectra.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.unmix._checks import as_pixels, check_p, constant_bands

__all__ = ["vca", "avca", "atgp", "nfindr", "simplex_volume", "VCAInfo", "EndmemberExtractor"]


def _prep(X: Any, p: Any, min_p: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    Xo, index = as_pixels(X)
    p = check_p(p, Xo, min_p=min_p)
    Xd = np.asarray(Xo, dtype=np.float64)
    const = constant_bands(Xd)
    if const.all():
        raise OrbitmlInputError("every band is constant: no spectral contrast to find endmembers in")
    Xd = Xd[:, ~const]
    if p > Xd.shape[1]:
        raise OrbitmlInputError(f"p={p} endmembers is more than the {Xd.shape[1]} non-constant bands")
    return Xo, Xd, index, p


def _result(Xo: np.ndarray, rows: np.ndarray, index: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    rows = np.asarray(rows, dtype=np.int64)
    return np.array(Xo[rows], dtype=np.float64), (rows if index is None else np.asarray(index)[rows])


class _Moments:
    """Mean and band correlation matrix of the pixels, computed once (one pass over the data)."""

    def __init__(self, Xd: np.ndarray):
        self.n = Xd.shape[0]
        self.mu = Xd.mean(axis=0)
        self.R = Xd.T @ Xd / self.n  # symmetric rank-k product (BLAS syrk)
        self.C = self.R - np.outer(self.mu, self.mu)

    def top(self, M: np.ndarray, d: int) -> np.ndarray:
        w, V = np.linalg.eigh(M)
        return V[:, np.argsort(w)[::-1][:d]]


def _pca(Xd: np.ndarray, d: int, mom: _Moments | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and top-``d`` principal directions (n_bands, d) of the pixel cloud."""
    mom = mom or _Moments(Xd)
    return mom.mu, mom.top(mom.C, d)


# ---------------------------------------------------------------------------------------------- VCA
@dataclass
class VCAInfo:
    """What VCA decided: the SNR estimate (dB, may be +-inf), the threshold and the projection."""

    snr_db: float
    threshold_db: float
    projection: str  # "projective" (high SNR) or "subspace" (low SNR)


def _vca_prepare(Xd: np.ndarray, p: int, snr_db: float | None = None,
                 mom: _Moments | None = None) -> tuple[np.ndarray, VCAInfo]:
    """Project the pixels for VCA; returns ``y`` (p, n) and the decision record."""
    n, b = Xd.shape
    mom = mom or _Moments(Xd)
    mu = mom.mu
    Ud = mom.top(mom.C, p)
    threshold = 15.0 + 10.0 * math.log10(p)
    if snr_db is None:
        py = float(np.trace(mom.R))  # mean power per pixel
        # power captured by the p-dim affine subspace: mean power + variance along Ud
        px = float(np.trace(Ud.T @ mom.C @ Ud)) + float(mu @ mu)
        noise = py - px
        signal = px - p / b * py
        if signal <= 0:
            snr_db = -math.inf  # undefined: the p-subspace holds no more than its share of noise
        elif noise <= py * 1e-12:
            snr_db = math.inf  # noise-free (to rounding): the SNR estimate is infinite
        else:
            snr_db = 10.0 * math.log10(signal / noise)
    if snr_db >= threshold:
        Up = mom.top(mom.R, p)
        x = Xd @ Up  # (n, p)
        u = x.mean(axis=0)
        den = x @ u
        if np.all(den > np.finfo(float).eps * np.abs(den).max()):
            return (x / den[:, None]).T, VCAInfo(snr_db, threshold, "projective")
        # data not in a half-space through the origin (e.g. offsets, negative values):
        # the projective scaling is undefined, use the subspace projection instead
    x = Xd @ Ud[:, : p - 1] - mu @ Ud[:, : p - 1]
    c = float(np.sqrt((x * x).sum(axis=1)).max())
    y = np.vstack([x.T, np.full((1, n), c)])
    return y, VCAInfo(snr_db, threshold, "subspace")


def _vca_pick(y: np.ndarray, p: int, rng: np.random.Generator) -> np.ndarray:
    A = np.zeros((p, p))
    A[-1, 0] = 1.0
    rows = np.zeros(p, dtype=np.int64)
    for i in range(p):
        w = rng.standard_normal(p)
        f = w - A @ (np.linalg.pinv(A) @ w)
        nf = np.linalg.norm(f)
        f = f / nf if nf > 0 else w / np.linalg.norm(w)
        v = f @ y
        rows[i] = int(np.argmax(np.abs(v)))
        A[:, i] = y[:, rows[i]]
    return rows


def vca(X: Any, p: int, *, random_state: Any = None, snr_db: float | None = None,
        return_info: bool = False):
    """Vertex Component Analysis (Nascimento & Dias 2005).

    Returns ``(endmembers (p, n_bands), pixel_indices (p,))`` (and a :class:`VCAInfo` when
    ``return_info``).  The SNR is estimated unless given; at or above ``15 + 10 log10(p)`` dB the
    data are projected projectively onto the p-dimensional signal subspace, below it onto the
    (p-1)-dimensional affine subspace.  Noise-free data (SNR infinite) take the projective branch;
    an undefined SNR estimate takes the subspace branch.
    """
    Xo, Xd, index, p = _prep(X, p, min_p=2)
    y, info = _vca_prepare(Xd, p, snr_db)
    rows = _vca_pick(y, p, np.random.default_rng(random_state))
    E, idx = _result(Xo, rows, index)
    return (E, idx, info) if return_info else (E, idx)


def simplex_volume(points: np.ndarray) -> float:
    """Volume of the simplex spanned by ``k`` points given in ``k-1`` dimensions (k, k-1)."""
    k = points.shape[0]
    M = (points[1:] - points[0]).T
    return float(abs(np.linalg.det(M)) / math.factorial(k - 1)) if k > 1 else 0.0


def avca(X: Any, p: int | str | None = "auto", *, n_restarts: int = 10, random_state: Any = None,
         far: float = 1e-3, count_rule: str = "hysime"):
    """Adaptive VCA: ``p`` from :func:`orbitml.unmix.estimate_count` when ``"auto"``; several seeded
    VCA restarts on one projection; the simplex of largest volume (in the (p-1)-D principal subspace)
    wins.  Returns ``(endmembers, pixel_indices, info)`` where ``info`` holds the count estimate, the
    volumes of every restart and the VCA decision.
    """
    from orbitml.unmix.count import estimate_count

    count = None
    if p is None or p == "auto":
        count = estimate_count(X, far=far, rule=count_rule)
        p = count.p
    if int(n_restarts) < 1:
        raise OrbitmlInputError(f"n_restarts must be >= 1, got {n_restarts}")
    Xo, Xd, index, p = _prep(X, p, min_p=2)
    mom = _Moments(Xd)
    y, vinfo = _vca_prepare(Xd, p, mom=mom)
    mu, V = _pca(Xd, p - 1, mom)
    Z = Xd @ V - mu @ V
    rng = np.random.default_rng(random_state)  # restarts draw from one seeded stream
    best, best_vol, vols = None, -1.0, []
    for _ in range(int(n_restarts)):
        rows = _vca_pick(y, p, rng)
        vol = simplex_volume(Z[rows]) if len(set(rows.tolist())) == p else 0.0
        vols.append(vol)
        if vol > best_vol:
            best, best_vol = rows, vol
    E, idx = _result(Xo, best, index)
    info = {"p": p, "count": None if count is None else count.as_dict(), "volumes": vols,
            "best_volume": best_vol, "snr_db": vinfo.snr_db, "threshold_db": vinfo.threshold_db,
            "projection": vinfo.projection}
    return E, idx, info


# --------------------------------------------------------------------------------------------- ATGP
def _atgp_rows(Xd: np.ndarray, p: int) -> np.ndarray:
    """ATGP on float64 data: each target maximises the residual norm orthogonal to the previous ones."""
    resid = np.einsum("ij,ij->i", Xd, Xd)
    rows = np.zeros(p, dtype=np.int64)
    Q = np.zeros((Xd.shape[1], 0))
    for i in range(p):
        rows[i] = int(np.argmax(resid))
        t = Xd[rows[i]]
        q = t - Q @ (Q.T @ t)
        q = q - Q @ (Q.T @ q)  # re-orthogonalise (Gram-Schmidt twice is enough)
        nq = np.linalg.norm(q)
        if nq <= 1e-12 * np.linalg.norm(t):
            break  # the data span fewer than p directions
        q /= nq
        resid = np.maximum(resid - (Xd @ q) ** 2, 0.0)
        resid[rows[: i + 1]] = -1.0
        Q = np.column_stack([Q, q])
    else:
        return rows
    raise OrbitmlInputError(f"the data span only {i} independent spectral directions; cannot find p={p} "
                            "endmembers")


def atgp(X: Any, p: int):
    """Automatic Target Generation Process: ``(endmembers (p, n_bands), pixel_indices (p,))``."""
    Xo, Xd, index, p = _prep(X, p)
    return _result(Xo, _atgp_rows(Xd, p), index)


# ------------------------------------------------------------------------------------------ N-FINDR
def nfindr(X: Any, p: int, *, init: str = "atgp", max_sweeps: int = 20, random_state: Any = None,
           return_info: bool = False):
    """N-FINDR (Winter 1999) with rank-one determinant updates.

    The pixels are reduced to ``p-1`` principal components; the simplex matrix is
    ``M = [1 ... 1; z_1 ... z_p]``.  Replacing vertex ``j`` by pixel ``z`` multiplies ``det M`` by
    ``(M^-1 [1; z])_j`` (Cramer's rule), so one sweep over all vertices costs ``O(p^2 n)`` instead of
    a determinant per pixel and vertex.  ``init`` is ``"atgp"`` (deterministic) or ``"random"``
    (seeded by ``random_state``).  Returns ``(endmembers, pixel_indices)`` (+ info dict).
    """
    Xo, Xd, index, p = _prep(X, p, min_p=2)
    n = Xd.shape[0]
    mu, V = _pca(Xd, p - 1)
    Z1 = np.vstack([np.ones(n), (Xd @ V - mu @ V).T])  # (p, n)
    if init == "atgp":
        rows = _atgp_rows(Xd, p)
    elif init == "random":
        rows = np.random.default_rng(random_state).choice(n, size=p, replace=False)
    else:
        raise OrbitmlInputError(f"init must be 'atgp' or 'random', got {init!r}")
    M = Z1[:, rows].copy()
    det = np.linalg.det(M)
    if abs(det) < 1e-300:  # degenerate start: fall back to a seeded random start that is not
        rng = np.random.default_rng(random_state)
        for _ in range(100):
            rows = rng.choice(n, size=p, replace=False)
            M = Z1[:, rows].copy()
            det = np.linalg.det(M)
            if abs(det) > 1e-300:
                break
        else:
            raise OrbitmlInputError("the pixels span fewer than p-1 dimensions: no simplex of p vertices exists")
    sweeps = 0
    for _ in range(max_sweeps):
        sweeps += 1
        changed = False
        for j in range(p):
            Minv_j = np.linalg.solve(M.T, np.eye(p)[:, j])  # row j of M^-1
            ratio = np.abs(Minv_j @ Z1)
            k = int(np.argmax(ratio))
            if ratio[k] > 1.0 + 1e-9 and k not in rows:
                rows[j] = k
                M[:, j] = Z1[:, k]
                changed = True
        if not changed:
            break
    vol = abs(np.linalg.det(M)) / math.factorial(p - 1)
    E, idx = _result(Xo, rows, index)
    if return_info:
        return E, idx, {"sweeps": sweeps, "volume": float(vol)}
    return E, idx


class EndmemberExtractor:
    """Scikit-learn-style estimator over the four methods.

    ``EndmemberExtractor(method="vca", p=6, random_state=0).fit(X)`` sets ``endmembers_``
    (p, n_bands), ``indices_`` (pixel indices), ``n_endmembers_`` and ``info_``.  ``p="auto"``
    estimates the count (all four methods).
    """

    METHODS = ("vca", "avca", "atgp", "nfindr")

    def __init__(self, method: str = "avca", p: int | str = "auto", random_state: Any = None,
                 n_restarts: int = 10, far: float = 1e-3):
        self.method = method
        self.p = p
        self.random_state = random_state
        self.n_restarts = n_restarts
        self.far = far

    def fit(self, X: Any, y: Any = None) -> EndmemberExtractor:
        from orbitml.unmix.count import estimate_count

        if self.method not in self.METHODS:
            raise OrbitmlInputError(f"method must be one of {', '.join(self.METHODS)}, got {self.method!r}")
        p, info = self.p, {}
        if self.method == "avca":
            E, idx, info = avca(X, p, n_restarts=self.n_restarts, random_state=self.random_state, far=self.far)
        else:
            if p is None or p == "auto":
                count = estimate_count(X, far=self.far)
                p, info = count.p, {"count": count.as_dict()}
            if self.method == "vca":
                E, idx, vinfo = vca(X, p, random_state=self.random_state, return_info=True)
                info.update(snr_db=vinfo.snr_db, threshold_db=vinfo.threshold_db, projection=vinfo.projection)
            elif self.method == "atgp":
                E, idx = atgp(X, p)
            else:
                E, idx, ninfo = nfindr(X, p, random_state=self.random_state, return_info=True)
                info.update(ninfo)
        self.endmembers_, self.indices_, self.info_ = E, idx, info
        self.n_endmembers_ = E.shape[0]
        return self
