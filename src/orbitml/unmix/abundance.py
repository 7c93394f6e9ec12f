"""Abundance estimation for all pixels at once: FCLS, NNLS and UCLS, for any number of endmembers.

The linear mixing model is ``x = a @ E`` for a pixel spectrum ``x`` (n_bands,), endmembers ``E``
(p, n_bands) and abundances ``a`` (p,).  Two exact solvers, chosen by ``algorithm="auto"``:

* **grouped** (a few endmembers, ``p <= GROUPED_MAX_P``): the data are reduced once through a QR
  factorisation of ``E.T`` (``||x - a E||^2 = ||c - R a||^2 + const``); a *batched primal active-set
  method* (Lawson & Hanson, with the sum-to-one equality for FCLS) then solves all pixels that share a
  working set together with one small pseudo-inverse.  Working sets are keyed by their bit pattern
  (an int64 up to 62 endmembers, packed bytes beyond), and the face problem is solved in the plane
  ``sum(a) = 1`` itself, so collinear endmembers (``[e, 2e, 3e]``) still give a true minimiser;
* **per-pixel** (libraries: hundreds to thousands of endmembers, more than bands): the same method per
  pixel in compiled code (:mod:`orbitml.unmix._lawson`) on the Gram form, pixels in parallel, by
  blocks of ``block`` pixels so that memory stays ``O(block x p)`` besides the output.

Both end when every pixel meets the Karush-Kuhn-Tucker conditions, so the result is the exact optimum
(to rounding), not an approximation from a penalty or a fixed number of iterations.
``ucls`` returns the minimum-norm least-squares solution (or a ridge solution) when it is not unique.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.unmix._checks import as_pixels, check_endmembers, check_finite_pixels

__all__ = ["fcls", "nnls", "ucls", "kkt_violation", "AbundanceEstimator", "gram_solve"]

_CHUNK = 2048  # rows per block: the float64 copy of a block stays in cache


def _reduce(X: np.ndarray, E: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """QR reduction: returns ``c`` (n, p), the triangular ``R`` (p, p) and the scale used."""
    scale = float(np.linalg.norm(E, 2))
    Q, R = np.linalg.qr(E.T / scale)  # E.T = scale * Q R
    c = np.empty((X.shape[0], Q.shape[1]))
    Qs = Q / scale
    for s in range(0, X.shape[0], _CHUNK):
        np.matmul(X[s:s + _CHUNK].astype(np.float64, copy=False), Qs, out=c[s:s + _CHUNK])
    if not np.isfinite(c).all():  # NaN/inf anywhere in X reaches c: cheaper than scanning X
        check_finite_pixels(X)
        raise OrbitmlInputError("the spectra hold values too large to unmix (overflow)")
    return c, R, scale


def _pattern_keys(free: np.ndarray) -> np.ndarray:
    """One sortable key per row of the boolean working-set matrix, for any number of variables.

    Up to 62 variables the key is the bit mask as an int64; beyond, the rows are packed to bytes
    (``np.packbits``) and compared as raw byte strings, so no machine integer can overflow.
    """
    p = free.shape[1]
    if p <= 62:
        return free.astype(np.int64) @ (np.int64(1) << np.arange(p, dtype=np.int64))
    packed = np.ascontiguousarray(np.packbits(free, axis=1))
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel()


class _Patterns:
    """Affine solution maps ``a = c @ M + d`` of the face problem for each working set (cached by pattern)."""

    def __init__(self, R: np.ndarray, sum_to_one: bool):
        self.R = R
        self.p = R.shape[1]
        self.sum_to_one = sum_to_one
        self.cache: dict[Any, tuple[np.ndarray, np.ndarray]] = {}

    def _build(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Minimiser over the free columns (min-norm where the face problem is rank deficient).

        FCLS: ``a = a0 + Z y`` with ``a0 = 1/k`` and ``Z`` an orthonormal basis of the plane
        ``sum(a) = 0``, so the equality holds exactly and ``y = pinv(R_P Z) (c - R_P a0)`` is a true
        minimiser even when the endmembers of the face are collinear (e.g. ``[e, 2e, 3e]``).
        """
        r = self.R.shape[0]
        M = np.zeros((r, self.p))
        d = np.zeros(self.p)
        k = cols.size
        if k == 0:
            return M, d
        RP = self.R[:, cols]
        if not self.sum_to_one:
            M[:, cols] = np.linalg.pinv(RP).T
            return M, d
        a0 = np.full(k, 1.0 / k)
        if k == 1:
            d[cols] = 1.0
            return M, d
        Q, _ = np.linalg.qr(np.ones((k, 1)), mode="complete")
        Z = Q[:, 1:]
        ZB = Z @ np.linalg.pinv(RP @ Z)  # (k, r)
        M[:, cols] = ZB.T
        d[cols] = a0 - ZB @ (RP @ a0)
        return M, d

    def get(self, key: Any, row: np.ndarray | None = None):
        key = key.tobytes() if isinstance(key, np.void) else int(key)
        hit = self.cache.get(key)
        if hit is None:
            hit = self._build(np.flatnonzero(row))
            self.cache[key] = hit
        return hit

    def solve_one(self, c: np.ndarray, free_row: np.ndarray) -> np.ndarray:
        """Minimiser for every row of ``c`` with the same free set ``free_row`` (boolean, p)."""
        M, d = self.get(_pattern_keys(free_row[None, :])[0], free_row)
        return c @ M + d

    def solve(self, c: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Minimiser over the free variables (others held at zero) for every row of ``c``."""
        z = np.empty((c.shape[0], self.p))
        keys = _pattern_keys(free)
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        ends = np.r_[starts[1:], sk.size]
        for s0, s1 in zip(starts, ends, strict=True):
            rows = order[s0:s1]
            M, d = self.get(sk[s0], free[rows[0]])
            z[rows] = c[rows] @ M + d
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
    p = R.shape[1]
    pats = _Patterns(R, sum_to_one)
    G = R.T @ R
    z = pats.solve_one(c, np.ones(p, dtype=bool))
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


GROUPED_MAX_P = 8  # up to this many endmembers pixels share working sets often enough for the grouped solver
BLOCK_PIXELS = 8192  # pixels per block of the per-pixel solver: memory is O(block x p), not O(n x p)


def _prepare(X: Any, E: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    X, index = as_pixels(X, check_finite=False)  # finiteness is checked on the reduced data
    E = check_endmembers(E, X.shape[1])
    return X, index, E


def _check_algorithm(algorithm: str, p: int) -> str:
    if algorithm not in ("auto", "grouped", "per-pixel"):
        raise OrbitmlInputError(f"algorithm must be 'auto', 'grouped' or 'per-pixel', got {algorithm!r}")
    if algorithm == "auto":
        from orbitml.unmix._lawson import HAVE_NUMBA

        return "grouped" if p <= GROUPED_MAX_P or not HAVE_NUMBA else "per-pixel"
    return algorithm


def gram_solve(X: np.ndarray, E: np.ndarray, sum_to_one: bool, tol: float, max_iter: int, *,
               linear: np.ndarray | float = 0.0, block: int = BLOCK_PIXELS) -> np.ndarray:
    """Exact ``argmin 0.5||x - aE||^2 + linear . a`` (a >= 0 [, sum 1]) per pixel, by pixel blocks.

    ``linear`` (a number or a (p,) vector in the data's units) turns NNLS into the non-negative lasso
    (``linear = lambda``).  The per-pixel Lawson-Hanson kernel of :mod:`orbitml.unmix._lawson`.
    """
    from orbitml.unmix._lawson import solve_block

    scale = float(np.linalg.norm(E, 2))
    Es = E / scale
    G = Es @ Es.T
    lin = np.broadcast_to(np.asarray(linear, dtype=np.float64) / scale**2, (E.shape[0],))
    if sum_to_one:  # equal to the true objective on sum(a) = 1, positive definite on affinely independent sets
        G = G + 1.0
    kmax = min(E.shape[0], E.shape[1] + 1) + 1
    A = np.empty((X.shape[0], E.shape[0]))
    bad = 0
    for s0 in range(0, X.shape[0], block):
        Xb = X[s0:s0 + block].astype(np.float64, copy=False)
        B = (Xb / scale) @ Es.T - lin
        if not np.isfinite(B).all():
            check_finite_pixels(X)
            raise OrbitmlInputError("the spectra hold values too large to unmix (overflow)")
        ctol = tol * np.maximum(1.0, np.linalg.norm(Xb, axis=1) / scale)
        if sum_to_one:
            B += 1.0
        A[s0:s0 + block], iters = solve_block(G, B, sum_to_one, ctol, max_iter, kmax)
        bad += int((iters < 0).sum())
    if bad:
        warnings.warn(f"active-set solver stopped after {max_iter} iterations with {bad} pixels not converged; "
                      "their abundances are feasible but may not be optimal", RuntimeWarning, stacklevel=3)
    return A


def _constrained(X: Any, E: Any, sum_to_one: bool, tol: float, max_iter: int | None, algorithm: str,
                 block: int) -> np.ndarray:
    X, _, E = _prepare(X, E)
    p = E.shape[0]
    algo = _check_algorithm(algorithm, p)
    if algo == "per-pixel":
        return gram_solve(X, E, sum_to_one, tol, max_iter or 3 * p + 100, block=block)
    step = X.shape[0] if p <= 64 else max(1, block)  # the grouped solver keeps O(n x p) iterates
    if step >= X.shape[0]:
        c, R, _ = _reduce(X, E)
        return _active_set(c, R, sum_to_one, tol, max_iter or 20 * p + 50)
    out = np.empty((X.shape[0], p))
    for s0 in range(0, X.shape[0], step):
        c, R, _ = _reduce(X[s0:s0 + step], E)
        out[s0:s0 + c.shape[0]] = _active_set(c, R, sum_to_one, tol, max_iter or 20 * p + 50)
    return out


def ucls(X: Any, E: Any, *, ridge: float = 0.0) -> np.ndarray:
    """Unconstrained least-squares abundances ``(n_pixels, p)`` for spectra X and endmembers E (p, bands).

    With more endmembers than bands (or collinear endmembers) the least-squares problem has many
    solutions: the **minimum-norm** one is returned (pseudo-inverse).  ``ridge > 0`` returns the
    Tikhonov solution ``argmin ||x - aE||^2 + ridge ||a||^2`` instead (in the data's units), which is
    unique and stable for nearly collinear libraries.
    """
    X, _, E = _prepare(X, E)
    ridge = _check_penalty(ridge, "ridge")
    c, R, scale = _reduce(X, E)
    if ridge == 0.0:
        return c @ np.linalg.pinv(R).T
    U, sv, Vt = np.linalg.svd(R, full_matrices=False)
    filt = sv / (sv**2 + ridge / scale**2)
    return (c @ U) * filt @ Vt


def _check_penalty(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise OrbitmlInputError(f"{what} must be a number >= 0, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise OrbitmlInputError(f"{what} must be a finite number >= 0, got {value!r}")
    return v


def nnls(X: Any, E: Any, *, tol: float = 1e-12, max_iter: int | None = None, algorithm: str = "auto",
         block: int = BLOCK_PIXELS) -> np.ndarray:
    """Non-negative least-squares abundances ``(n_pixels, p)``, exact (batched active-set).

    Any number of endmembers, also more than bands.  ``algorithm``: ``"grouped"`` (pixels that share
    a working set are solved together; fastest for a few endmembers), ``"per-pixel"`` (compiled
    Lawson-Hanson per pixel, by blocks of ``block`` pixels; for libraries) or ``"auto"``.
    """
    return _constrained(X, E, False, tol, max_iter, algorithm, block)


def fcls(X: Any, E: Any, *, tol: float = 1e-12, max_iter: int | None = None, algorithm: str = "auto",
         block: int = BLOCK_PIXELS) -> np.ndarray:
    """Fully constrained (non-negative, sum-to-one) abundances ``(n_pixels, p)``, exact (batched active-set).

    Any number of endmembers; see :func:`nnls` for ``algorithm`` and ``block``.
    """
    return _constrained(X, E, True, tol, max_iter, algorithm, block)


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
