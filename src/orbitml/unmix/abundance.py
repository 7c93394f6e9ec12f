"""Abundance estimation for all pixels at once: FCLS, NNLS and UCLS.

The linear mixing model is ``x = a @ E`` for a pixel spectrum ``x`` (n_bands,), endmembers ``E``
(p, n_bands) and abundances ``a`` (p,).  All three solvers work on the whole image together:

1. the data are reduced once to ``p`` numbers per pixel through a QR factorisation of ``E.T``
   (``||x - a E||^2 = ||c - R a||^2 + const`` with ``c = Q.T x``), so nothing later touches the
   bands again;
2. UCLS is one matrix product; NNLS and FCLS start from the unconstrained (NNLS) or sum-to-one
   (FCLS) solution projected onto the feasible set, then run a *batched primal active-set method*
   (Lawson & Hanson's method, with the sum-to-one equality for FCLS): pixels that share a working
   set are solved together with one small pseudo-inverse, blocked steps keep every iterate
   feasible, and the most violated Karush-Kuhn-Tucker condition enters the working set.  The loop
   ends when every pixel meets the KKT conditions, so the result is the exact optimum (to rounding),
   not an approximation from a penalty or a fixed number of iterations.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.unmix._checks import as_pixels, check_endmembers, check_finite_pixels

__all__ = ["fcls", "nnls", "ucls", "kkt_violation", "AbundanceEstimator"]

_CHUNK = 2048  # rows per block: the float64 copy of a block stays in cache


def _reduce(X: np.ndarray, E: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """QR reduction: returns ``c`` (n, p), the triangular ``R`` (p, p) and the scale used."""
    scale = float(np.linalg.norm(E, 2))
    Q, R = np.linalg.qr(E.T / scale)  # E.T = scale * Q R
    c = np.empty((X.shape[0], E.shape[0]))
    Qs = Q / scale
    for s in range(0, X.shape[0], _CHUNK):
        np.matmul(X[s:s + _CHUNK].astype(np.float64, copy=False), Qs, out=c[s:s + _CHUNK])
    if not np.isfinite(c).all():  # NaN/inf anywhere in X reaches c: cheaper than scanning X
        check_finite_pixels(X)
        raise OrbitmlInputError("the spectra hold values too large to unmix (overflow)")
    return c, R, scale


class _Patterns:
    """Pseudo-inverses of ``R[:, P]`` for each working set ``P`` (cached by bit code)."""

    def __init__(self, R: np.ndarray, sum_to_one: bool):
        self.R = R
        self.p = R.shape[1]
        self.sum_to_one = sum_to_one
        self.cache: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
        self.weights = (1 << np.arange(self.p)).astype(np.int64)

    def get(self, code: int):
        hit = self.cache.get(code)
        if hit is None:
            cols = np.flatnonzero((code >> np.arange(self.p)) & 1)
            # padded to (p, p) / (p,): rows of variables held at zero stay zero
            pinv = np.zeros((self.p, self.p))
            h = np.zeros(self.p)
            s = 1.0
            if cols.size:
                pinv[cols] = np.linalg.pinv(self.R[:, cols])  # (k, p)
                h[cols] = pinv[cols] @ pinv[cols].T @ np.ones(cols.size)  # (R_P^T R_P)^-1 1
                s = float(h.sum())
            hit = (pinv.T.copy(), h, s)
            self.cache[code] = hit
        return hit

    def solve_one(self, c: np.ndarray, code: int) -> np.ndarray:
        """Minimiser for every row of ``c`` with the same free set ``code``."""
        pinvT, h, s = self.get(code)
        a = c @ pinvT
        if self.sum_to_one:
            a -= ((a.sum(axis=1) - 1.0) / s)[:, None] * h
        return a

    def solve(self, c: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Minimiser over the free variables (others held at zero) for every row of ``c``."""
        z = np.empty_like(c)
        codes = free.astype(np.int64) @ self.weights
        if self.p <= 16:
            codes = codes.astype(np.uint16)
        order = np.argsort(codes, kind="stable")
        sc = codes[order]
        starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
        ends = np.r_[starts[1:], sc.size]
        if starts.size == 1:
            return self.solve_one(c, int(sc[0]))
        for s0, s1 in zip(starts, ends, strict=True):
            rows = order[s0:s1]
            z[rows] = self.solve_one(c[rows], int(sc[s0]))
        return z


def _project_simplex(V: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row onto the probability simplex (sort-based)."""
    n, p = V.shape
    U = -np.sort(-V, axis=1)
    css = np.cumsum(U, axis=1) - 1.0
    k = np.arange(1, p + 1)
    cond = U - css / k > 0
    rho = p - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(n), rho] / (rho + 1)
    return np.maximum(V - theta[:, None], 0.0)


def _dual_violation(g: np.ndarray, free: np.ndarray, sum_to_one: bool) -> np.ndarray:
    """Per pixel and variable: how much an inactive variable would lower the objective (>0 = violated)."""
    if sum_to_one:
        nfree = free.sum(axis=1)
        nu = np.where(free, g, 0.0).sum(axis=1) / np.maximum(nfree, 1)
        viol = nu[:, None] - g
    else:
        viol = -g
    viol[free] = -np.inf
    return viol


def _active_set(c: np.ndarray, R: np.ndarray, sum_to_one: bool, tol: float, max_iter: int) -> np.ndarray:
    """Batched primal active-set method (all arrays are per pixel; no per-pixel Python loop)."""
    n, p = c.shape
    pats = _Patterns(R, sum_to_one)
    G = R.T @ R
    z = pats.solve_one(c, (1 << p) - 1)
    A = z
    todo = np.flatnonzero((z < 0).any(axis=1))
    if todo.size == 0:
        return A
    # feasible start: the unconstrained answer clipped at zero (and rescaled onto the simplex)
    x = np.maximum(z[todo], 0.0)
    if sum_to_one:
        tot = x.sum(axis=1, keepdims=True)
        x = np.where(tot > 0, x / np.where(tot > 0, tot, 1.0), 1.0 / p)
    free = x > 0
    idx = todo
    cs = c[todo]
    bvec = cs @ R  # gradient of 0.5 ||c - R a||^2 is a @ G - bvec
    ctol = tol * np.maximum(1.0, np.linalg.norm(cs, axis=1))
    last_added = np.full(idx.size, -1)
    banned = np.full(idx.size, -1)  # a variable that could not move when it entered (rounding level)
    for _ in range(max_iter):
        m = idx.size
        rows = np.arange(m)
        z = pats.solve(cs, free)
        zneg = (z < 0) & free
        blocked = zneg.any(axis=1)
        # step from x towards z; a blocked pixel stops where its first free variable reaches zero
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(zneg, x / (x - z), np.inf)
        hit = np.argmin(ratio, axis=1)
        alpha = np.where(blocked, np.clip(ratio[rows, hit], 0.0, 1.0), 1.0)
        x += alpha[:, None] * (z - x)
        hb = rows[blocked]
        x[hb, hit[blocked]] = 0.0
        free[hb] &= x[hb] > 0
        x[~free] = 0.0
        if sum_to_one and hb.size:  # remove the rounding drift of the step
            x[hb] /= x[hb].sum(axis=1, keepdims=True)
        # the variable that just entered blocks at once: its gain was at rounding level (the classic
        # Lawson-Hanson loop); keep it out for this pixel
        stuck = blocked & (hit == last_added) & (alpha <= 0)
        banned = np.where(stuck, hit, np.where(blocked & (alpha > 0), -1, banned))
        last_added[blocked] = -1
        # optimality check for the unblocked pixels: the most violated multiplier enters
        viol = _dual_violation(x @ G - bvec, free, sum_to_one)
        hb = np.flatnonzero(banned >= 0)
        viol[hb, banned[hb]] = -np.inf
        j = np.argmax(viol, axis=1)
        enter = ~blocked & (viol[rows, j] > ctol)
        done = ~blocked & ~enter
        free[rows[enter], j[enter]] = True
        last_added = np.where(enter, j, last_added)
        if done.any():
            A[idx[done]] = x[done]
            keep = ~done
            if not keep.any():
                return A
            idx, cs, bvec, ctol, x, free = idx[keep], cs[keep], bvec[keep], ctol[keep], x[keep], free[keep]
            last_added, banned = last_added[keep], banned[keep]
    warnings.warn(f"active-set solver stopped after {max_iter} iterations with {idx.size} pixels not "
                  "converged; their abundances are feasible but may not be optimal", RuntimeWarning,
                  stacklevel=3)
    A[idx] = x
    return A


def _prepare(X: Any, E: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    X, index = as_pixels(X, check_finite=False)  # finiteness is checked on the reduced data
    E = check_endmembers(E, X.shape[1])
    if E.shape[0] > X.shape[1]:
        raise OrbitmlInputError(f"{E.shape[0]} endmembers is more than the {X.shape[1]} bands of the data")
    return X, index, E


def ucls(X: Any, E: Any) -> np.ndarray:
    """Unconstrained least-squares abundances ``(n_pixels, p)`` for spectra X and endmembers E (p, bands)."""
    X, _, E = _prepare(X, E)
    c, R, _ = _reduce(X, E)
    return c @ np.linalg.pinv(R).T


def nnls(X: Any, E: Any, *, tol: float = 1e-12, max_iter: int | None = None) -> np.ndarray:
    """Non-negative least-squares abundances ``(n_pixels, p)``, exact (batched active-set)."""
    X, _, E = _prepare(X, E)
    c, R, _ = _reduce(X, E)
    return _active_set(c, R, False, tol, max_iter or 20 * E.shape[0] + 50)


def fcls(X: Any, E: Any, *, tol: float = 1e-12, max_iter: int | None = None) -> np.ndarray:
    """Fully constrained (non-negative, sum-to-one) abundances ``(n_pixels, p)``, exact (batched active-set)."""
    X, _, E = _prepare(X, E)
    c, R, _ = _reduce(X, E)
    return _active_set(c, R, True, tol, max_iter or 20 * E.shape[0] + 50)


def kkt_violation(X: Any, E: Any, A: np.ndarray, method: str = "fcls") -> dict[str, float]:
    """Largest violation of each optimality condition, for checking a solution independently.

    Conditions are computed from the plain normal-equation gradient ``g = (A E - X) E.T``, divided by
    ``||E||_2^2`` so that the numbers do not depend on the units of the data:
    ``primal`` (most negative abundance), ``sum`` (|sum - 1|, FCLS), ``stationarity`` (spread of g
    over each pixel's non-zero abundances for FCLS, or |g| there for NNLS) and ``dual`` (how far g on
    the zero abundances falls below that level).
    """
    X = np.asarray(X, dtype=np.float64)
    E = np.asarray(E, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    g = (A @ E - X) @ E.T / np.linalg.norm(E, 2) ** 2
    pos = A > 0
    out = {"primal": float(max(0.0, -A.min()))}
    if method == "fcls":
        out["sum"] = float(np.abs(A.sum(axis=1) - 1).max())
        gpos = np.where(pos, g, np.nan)
        nu = np.nanmean(gpos, axis=1)
        out["stationarity"] = float(np.nanmax(np.abs(gpos - nu[:, None])))
        dual = np.where(pos, 0.0, nu[:, None] - g)
    elif method == "nnls":
        out["stationarity"] = float(np.abs(np.where(pos, g, 0.0)).max())
        dual = np.where(pos, 0.0, -g)
    else:
        out["stationarity"] = float(np.abs(g).max())
        dual = np.zeros(1)
    out["dual"] = float(max(0.0, dual.max()))
    return out


class AbundanceEstimator:
    """Scikit-learn-style wrapper: ``AbundanceEstimator(method).fit(E).transform(X)``.

    ``fit`` stores the endmembers (``endmembers_``, shape (p, n_bands)); ``transform`` returns the
    abundances ``(n_pixels, p)``; for a scene input it returns an abundance scene (NaN outside the
    valid mask) via :func:`orbitml.scene.from_pixels`.
    """

    _METHODS = {"fcls": fcls, "nnls": nnls, "ucls": ucls}

    def __init__(self, method: str = "fcls", tol: float = 1e-12):
        self.method = method
        self.tol = tol

    def fit(self, E: Any, y: Any = None) -> AbundanceEstimator:
        if self.method not in self._METHODS:
            raise OrbitmlInputError(f"method must be one of {sorted(self._METHODS)}, got {self.method!r}")
        self.endmembers_ = check_endmembers(E, np.asarray(E).shape[-1])
        self.n_endmembers_ = self.endmembers_.shape[0]
        return self

    def transform(self, X: Any) -> Any:
        fn = self._METHODS[self.method]
        kwargs = {} if self.method == "ucls" else {"tol": self.tol}
        Xp, index = as_pixels(X)
        A = fn(Xp, self.endmembers_, **kwargs)
        if index is None:
            return A
        from orbitml.scene import from_pixels

        names = [f"endmember_{i + 1}" for i in range(A.shape[1])]
        return from_pixels(A, index, X, band_names=names, attrs={"units": "abundance fraction"})
