"""Sparse unmixing against a spectral library: SUnSAL and CLSUnSAL (ADMM), vectorised over pixels.

* **SUnSAL** (Bioucas-Dias & Figueiredo 2010) solves, for every pixel ``x``,
  ``min_a 0.5 ||x - a E||^2 + lam ||a||_1``  subject to ``a >= 0`` (``positivity``) and optionally
  ``sum(a) = 1`` (``sum_to_one``).  With both constraints ``||a||_1 = 1`` is constant, so the penalty
  has no effect and the answer is FCLS (the SUnSAL paper's remark): use ``sum_to_one`` only to get
  FCLS by ADMM.
* **CLSUnSAL** (Iordache, Bioucas-Dias & Plaza 2014) solves for all pixels together
  ``min_A 0.5 ||X - A E||_F^2 + lam sum_j ||A[:, j]||_2``  subject to ``A >= 0``: the l2,1 norm over
  pixels makes whole library spectra zero for the whole scene (row sparsity, "collaborative").

Both use the splitting ``a = u``: the a-step is one linear solve with ``(E E' + mu I)`` shared by all
pixels (from one eigendecomposition of the library Gram matrix, so changing ``mu`` costs nothing and
a low-rank library costs ``O(p r)`` per pixel instead of ``O(p^2)``), the u-step the proximal map of
the penalty plus the constraint (soft threshold and clip; group shrinkage for CLSUnSAL), then the
dual update, over-relaxed (1.6).  SUnSAL keeps ``mu`` fixed (default ``1e-3 ||E||_2^2``): on 500
USGS spectra residual balancing (Boyd et al. 2011, 3.4.1) drove ``mu`` up to ~0.06 and left the
objective 1.2x above the optimum (median, 500 iterations) against 0.18x with ``mu = 1e-3`` fixed;
CLSUnSAL balances ``mu`` every 10 iterations.  A pixel stops when its primal residual
``||a - u||`` and dual residual ``mu ||u - u_prev||`` are both below ``tol`` (abundance units;
default 1e-5); the returned abundances are ``u``: feasible, and exactly zero where the penalty says so.

For SUnSAL with ``positivity=True`` and no sum-to-one, the problem is a non-negative lasso; it is also
solved *exactly* by the active-set method of :mod:`orbitml.unmix.abundance` (``solver="active-set"``).

Penalty: ``lam`` in the data's units.  ``lam=None`` applies the rule of :func:`lambda_rule`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.unmix._checks import as_pixels, check_endmembers, check_finite_pixels
from orbitml.unmix.abundance import BLOCK_PIXELS, _check_penalty, gram_solve

_RELAX = 1.6  # ADMM over-relaxation factor (1 = plain ADMM; 1.5-1.8 is the usual range)
_BALANCE = False  # residual balancing of mu (Boyd 3.4.1); off: on library problems it drives mu up and slows them

__all__ = ["sunsal", "clsunsal", "lambda_rule", "PenaltyRule", "SparseInfo"]


@dataclass
class PenaltyRule:
    """The penalty chosen by :func:`lambda_rule` and what it was computed from."""

    lam: float
    noise_sigma: np.ndarray  # per band
    method: str
    notes: list[str] = field(default_factory=list)


@dataclass
class SparseInfo:
    """Convergence facts of an ADMM run."""

    lam: float
    iterations: int
    converged: int  # pixels converged (SUnSAL) or 1/0 (CLSUnSAL)
    n_pixels: int
    mu: float
    primal_residual: float
    dual_residual: float
    notes: list[str] = field(default_factory=list)


def _noise_sigma(X: np.ndarray) -> tuple[np.ndarray, str]:
    """Per-band noise standard deviation: HySime's regression residual, else band differences."""
    from orbitml.unmix.count import estimate_noise

    n, b = X.shape
    if n > 2 * b:
        _, Rn = estimate_noise(X)
        return np.sqrt(np.diag(Rn)), "regression of each band on the others (HySime noise estimate)"
    # too few pixels for the regression: the second difference across bands of a smooth signal is noise
    d = X[:, 2:] - 2 * X[:, 1:-1] + X[:, :-2]
    s = float(np.median(np.abs(d - np.median(d))) * 1.4826 / np.sqrt(6.0))
    return np.full(b, s), "median absolute second band difference (too few pixels for the regression)"


def lambda_rule(X: Any, E: Any, collaborative: bool = False) -> PenaltyRule:
    """The default penalty: the MAP rule for white noise and exponential abundance priors.

    SUnSAL's objective is the negative log posterior of ``x = a E + w`` with noise ``w`` of variance
    ``sigma^2`` per band and independent exponential priors of mean ``beta`` on the abundances, times
    ``sigma^2``: ``lam = sigma^2 / beta``.  With ``p`` library spectra whose abundances sum to about
    one, the prior mean of one spectrum's abundance is ``beta = 1/p``, so ``lam = p sigma^2``, with
    ``sigma^2`` the mean of the per-band noise variances (HySime's regression estimate, or band second
    differences when there are too few pixels).  For CLSUnSAL the l2 norm of a row spans ``n`` pixels
    (``sqrt(n)`` times a per-pixel abundance), so ``lam = p sigma^2 sqrt(n)`` keeps the same weight
    per pixel.  (The lasso's universal threshold ``sigma ||e|| sqrt(2 ln p)`` was tried first: on
    scenes mixed from the USGS library it shrinks the true spectra away, SRE 3.5 dB against 22 dB.)
    """
    X, _ = as_pixels(X)
    X = np.asarray(X, dtype=np.float64)
    E = check_endmembers(E, X.shape[1])
    sigma, how = _noise_sigma(X)
    p = E.shape[0]
    var = float(np.mean(sigma**2))
    lam = p * var
    method = "MAP rule p sigma^2 (exponential priors of mean 1/p)"
    if collaborative:
        lam *= np.sqrt(X.shape[0])
        method = "MAP rule p sigma^2 sqrt(n) (exponential priors of mean 1/p, per pixel)"
    notes = [f"noise from the {how}: rms sigma {np.sqrt(var):.3g}"]
    return PenaltyRule(lam=float(lam), noise_sigma=sigma, method=method, notes=notes)


class _Resolvent:
    """Applies ``(G + mu I)^-1`` to the rows of a matrix, for any mu, from one eigendecomposition of G."""

    def __init__(self, G: np.ndarray):
        w, V = np.linalg.eigh(G)
        keep = w > w.max() * 1e-13  # the rest acts as exactly zero next to any mu used here
        self.w, self.V = w[keep], V[:, keep]
        self.full = 2 * self.w.size >= G.shape[0]
        self.mu = None

    def set_mu(self, mu: float) -> None:
        self.mu = mu
        if self.full:
            self.W = (self.V * (1.0 / (self.w + mu))) @ self.V.T + (np.eye(self.V.shape[0]) - self.V @ self.V.T) / mu
        else:
            self.coef = 1.0 / (self.w + mu) - 1.0 / mu
        ones = np.ones(self.V.shape[0])
        self.w1 = self.apply(ones[None, :])[0]  # (G + mu I)^-1 1

    def apply(self, Y: np.ndarray) -> np.ndarray:
        if self.full:
            return Y @ self.W
        return Y / self.mu + ((Y @ self.V) * self.coef) @ self.V.T


def _prep(X: Any, E: Any, lam: Any, collaborative: bool) -> tuple[np.ndarray, np.ndarray, float, list[str]]:
    X, _ = as_pixels(X, check_finite=False)
    E = check_endmembers(E, X.shape[1])
    notes: list[str] = []
    if lam is None:
        check_finite_pixels(X)
        rule = lambda_rule(X, E, collaborative)
        lam_v = rule.lam
        notes += [f"lambda {lam_v:.4g} by the {rule.method}"] + rule.notes
    else:
        lam_v = _check_penalty(lam, "lambda (the sparsity penalty)")
    return X, E, lam_v, notes


def _admm_block(B: np.ndarray, res: _Resolvent, lam_s: float, positivity: bool, sum_to_one: bool, mu0: float,
                tol: float, max_iter: int) -> tuple[np.ndarray, int, int, float, float, float]:
    """SUnSAL on one block of pixels (rows of B = x E' in scaled units)."""
    n, p = B.shape
    mu = mu0
    res.set_mu(mu)

    def a_step(rhs):
        a = res.apply(rhs)
        if sum_to_one:
            a -= np.outer((a.sum(axis=1) - 1.0) / res.w1.sum(), res.w1)
        return a

    a = a_step(B)
    u = np.maximum(a, 0.0) if positivity else a.copy()
    d = np.zeros_like(u)
    U = np.empty_like(u)
    active = np.arange(n)
    it = 0
    r_norm = s_norm = 0.0
    for it in range(1, max_iter + 1):
        Ba, ua, da = B[active], u[active], d[active]
        a = a_step(Ba + mu * (ua + da))
        ah = _RELAX * a + (1.0 - _RELAX) * ua  # over-relaxation (Boyd et al. 2011, 3.4.3)
        v = ah - da
        thr = lam_s / mu
        un = np.maximum(v - thr, 0.0) if positivity else np.sign(v) * np.maximum(np.abs(v) - thr, 0.0)
        da = da - (ah - un)
        r = np.linalg.norm(a - un, axis=1)
        s = mu * np.linalg.norm(un - ua, axis=1)
        u[active], d[active] = un, da
        done = (r <= tol) & (s <= tol)
        r_norm, s_norm = float(np.sqrt(np.mean(r**2))), float(np.sqrt(np.mean(s**2)))
        if done.all():
            active = active[:0]
            break
        active = active[~done]
        if _BALANCE and it % 10 == 0 and active.size:  # residual balancing; the scaled dual d scales with 1/mu
            rr, ss = float(np.sqrt(np.mean(r[~done] ** 2))), float(np.sqrt(np.mean(s[~done] ** 2)))
            f = 2.0 if rr > 10 * ss else 0.5 if ss > 10 * rr else 1.0
            if f != 1.0:
                mu *= f
                d /= f
                res.set_mu(mu)
    U[:] = u
    return U, it, n - active.size, mu, r_norm, s_norm


def sunsal(X: Any, E: Any, lam: float | None = None, *, positivity: bool = True, sum_to_one: bool = False,
           tol: float = 1e-5, max_iter: int = 5000, mu: float = 1e-3, solver: str = "auto",
           block: int = BLOCK_PIXELS, return_info: bool = False) -> Any:
    """SUnSAL abundances ``(n_pixels, p)``: l1-penalised, non-negative, optionally sum-to-one.

    ``lam`` in the data's units (``None``: :func:`lambda_rule`); ``mu`` is the initial ADMM penalty
    relative to ``||E||_2^2``.  ``solver``: ``"admm"`` (SUnSAL's algorithm), ``"active-set"`` (the
    non-negative lasso solved exactly; only with ``positivity`` and without ``sum_to_one``) or
    ``"auto"`` (active-set where it applies, else ADMM): ADMM converges slowly on strongly collinear
    libraries (on 150 USGS spectra, with mu 0.01 and residual balancing, it had not converged after
    5,000 iterations), the active-set
    solution is the same optimum to rounding.  ``return_info=True`` also returns a
    :class:`SparseInfo`.
    """
    X, E, lam_v, notes = _prep(X, E, lam, False)
    if solver not in ("auto", "admm", "active-set"):
        raise OrbitmlInputError(f"solver must be 'auto', 'admm' or 'active-set', got {solver!r}")
    if solver == "auto":
        solver = "active-set" if positivity and not sum_to_one else "admm"
    if sum_to_one and positivity and lam_v > 0:
        notes.append("with sum-to-one and non-negativity the l1 norm is constant (1): the penalty has no effect "
                     "and the result is FCLS")
    p = E.shape[0]
    if solver == "active-set":
        if not positivity or sum_to_one:
            raise OrbitmlInputError("solver='active-set' solves the non-negative lasso: positivity=True, "
                                    "sum_to_one=False")
        A = gram_solve(X, E, False, 1e-12, 3 * p + 100, linear=lam_v, block=block)
        info = SparseInfo(lam_v, 0, X.shape[0], X.shape[0], 0.0, 0.0, 0.0, notes + ["exact active-set solve"])
        return (A, info) if return_info else A
    scale = float(np.linalg.norm(E, 2))
    Es = E / scale
    res = _Resolvent(Es @ Es.T)
    A = np.empty((X.shape[0], p))
    its, conv, r_all, s_all, mu_end = 0, 0, 0.0, 0.0, mu
    for s0 in range(0, X.shape[0], block):
        B = (X[s0:s0 + block].astype(np.float64, copy=False) / scale) @ Es.T
        if not np.isfinite(B).all():
            check_finite_pixels(X)
            raise OrbitmlInputError("the spectra hold values too large to unmix (overflow)")
        U, it, c, mu_end, r, s = _admm_block(B, res, lam_v / scale**2, positivity, sum_to_one, mu, tol, max_iter)
        A[s0:s0 + block] = U
        its, conv, r_all, s_all = max(its, it), conv + c, max(r_all, r), max(s_all, s)
    if conv < X.shape[0]:
        warnings.warn(f"SUnSAL: {X.shape[0] - conv} of {X.shape[0]} pixels did not reach tol={tol:g} in {max_iter} "
                      "iterations", RuntimeWarning, stacklevel=2)
    info = SparseInfo(lam_v, its, conv, X.shape[0], mu_end, r_all, s_all, notes)
    return (A, info) if return_info else A


def clsunsal(X: Any, E: Any, lam: float | None = None, *, tol: float = 1e-5, max_iter: int = 5000,
             mu: float = 0.01, return_info: bool = False) -> Any:
    """CLSUnSAL abundances ``(n_pixels, p)``: non-negative, row-sparse over all pixels (l2,1 penalty).

    All pixels are solved together (the penalty couples them), so memory is a few ``(n, p)`` arrays;
    for a large scene select the spectra on a pixel sample and unmix the rest with the pruned
    library (the CLI does so).  ``lam`` in the data's units (``None``: :func:`lambda_rule`).
    """
    X, E, lam_v, notes = _prep(X, E, lam, True)
    scale = float(np.linalg.norm(E, 2))
    Es = E / scale
    res = _Resolvent(Es @ Es.T)
    B = (X.astype(np.float64, copy=False) / scale) @ Es.T
    if not np.isfinite(B).all():
        check_finite_pixels(X)
        raise OrbitmlInputError("the spectra hold values too large to unmix (overflow)")
    n = X.shape[0]
    lam_s = lam_v / scale**2
    res.set_mu(mu)
    a = res.apply(B)
    u = np.maximum(a, 0.0)
    d = np.zeros_like(u)
    tol_all = tol * np.sqrt(n)
    r = s = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        a = res.apply(B + mu * (u + d))
        ah = _RELAX * a + (1.0 - _RELAX) * u
        v = np.maximum(ah - d, 0.0)
        norms = np.linalg.norm(v, axis=0)
        shrink = np.maximum(0.0, 1.0 - (lam_s / mu) / np.where(norms > 0, norms, 1.0))
        un = v * shrink[None, :]
        d -= ah - un
        r = float(np.linalg.norm(a - un))
        s = float(mu * np.linalg.norm(un - u))
        u = un
        if r <= tol_all and s <= tol_all:
            break
        if it % 10 == 0:
            f = 2.0 if r > 10 * s else 0.5 if s > 10 * r else 1.0
            if f != 1.0:
                mu *= f
                d /= f
                res.set_mu(mu)
    converged = r <= tol_all and s <= tol_all
    if not converged:
        warnings.warn(f"CLSUnSAL did not reach tol={tol:g} in {max_iter} iterations (primal {r:.2g}, dual {s:.2g})",
                      RuntimeWarning, stacklevel=2)
    info = SparseInfo(lam_v, it, int(converged), n, mu, r / np.sqrt(n), s / np.sqrt(n), notes)
    return (u, info) if return_info else u
