"""Per-pixel exact active-set solver for NNLS / FCLS / non-negative lasso with any number of endmembers.

Used when there are too many endmembers for the working-set grouping of :mod:`abundance` to pay
(every pixel has its own working set).  Each pixel runs the Lawson-Hanson primal active-set method
on the Gram form ``min 0.5 a'Ga - b'a  s.t. a >= 0  [, 1'a = 1]``:

* the working set ``P`` is kept with a Cholesky factor of ``G[P, P]``: a variable that enters appends
  one row, one that leaves refactors the rows after it;
* FCLS uses ``G + mu 11'`` and ``b + mu 1``, equal to the true objective on the plane ``1'a = 1`` (so the
  optimum is the same) but positive definite on every *affinely* independent working set, so
  collinear endmembers such as ``[e, 2e, 3e]`` keep the factor defined; the equality itself is exact
  (a Lagrange multiplier), not a penalty;
* a variable whose column is (numerically) dependent on the working set, or that cannot move when it
  enters (its gain is at rounding level), is kept out until the iterate changes again;
* the loop ends when no multiplier is violated beyond the pixel's tolerance: the exact optimum.

Pixels run in parallel (numba ``prange``); the kernels are compiled once and cached on disk.
"""

from __future__ import annotations

import numpy as np

try:  # numba is a declared dependency (the crism kernels need it); keep a clean error path without it
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "solve_block"]

_PIVOT = 1e-13  # a working-set column whose new Cholesky pivot^2 is below this share of its norm^2 is dependent

if HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _chol_row(G, P, i, L):
        """Row ``i`` of the Cholesky factor of G[P[:i+1], P[:i+1]] given rows < i; False if dependent."""
        pi = P[i]
        for j in range(i):
            s = G[pi, P[j]]
            for m in range(j):
                s -= L[i, m] * L[j, m]
            L[i, j] = s / L[j, j]
        d = G[pi, pi]
        for m in range(i):
            d -= L[i, m] * L[i, m]
        if d <= _PIVOT * G[pi, pi]:
            return False
        L[i, i] = np.sqrt(d)
        return True

    @njit(cache=True, nogil=True)
    def _chol_solve(L, k, rhs, out, tmp):
        for i in range(k):
            s = rhs[i]
            for m in range(i):
                s -= L[i, m] * tmp[m]
            tmp[i] = s / L[i, i]
        for i in range(k - 1, -1, -1):
            s = tmp[i]
            for m in range(i + 1, k):
                s -= L[m, i] * out[m]
            out[i] = s / L[i, i]

    @njit(cache=True, nogil=True)
    def _refined_solve(G, P, L, k, rhs, out, tmp, r, dz):
        """Solve G[P,P] out = rhs with one step of iterative refinement."""
        _chol_solve(L, k, rhs, out, tmp)
        for i in range(k):
            s = rhs[i]
            pi = P[i]
            for j in range(k):
                s -= G[pi, P[j]] * out[j]
            r[i] = s
        _chol_solve(L, k, r, dz, tmp)
        for i in range(k):
            out[i] += dz[i]

    @njit(cache=True, nogil=True)
    def _face_minimiser(G, b, P, L, k, sto, z, w):
        """Minimiser on the face P (sum to one when ``sto``), written to z[:k]; w is scratch (5, kmax)."""
        for i in range(k):
            w[0, i] = b[P[i]]
        _refined_solve(G, P, L, k, w[0], z, w[2], w[3], w[4])
        if sto:
            for i in range(k):
                w[0, i] = 1.0
            _refined_solve(G, P, L, k, w[0], w[1], w[2], w[3], w[4])
            su = 0.0
            sv = 0.0
            for i in range(k):
                su += z[i]
                sv += w[1, i]
            nu = (su - 1.0) / sv
            for i in range(k):
                z[i] -= nu * w[1, i]

    @njit(cache=True, nogil=True)
    def _gradient(G, b, P, k, x, g):
        """g = G[:, P] x[P] - b, through contiguous rows of the symmetric G."""
        p = G.shape[0]
        for j in range(p):
            g[j] = -b[j]
        for i in range(k):
            xi = x[P[i]]
            row = G[P[i]]
            for j in range(p):
                g[j] += row[j] * xi

    @njit(cache=True, nogil=True)
    def _solve_pixel(G, b, sto, ctol, max_iter, kmax, x, P, L, z, g, banned, inP, w):
        p = G.shape[0]
        for j in range(p):
            x[j] = 0.0
            banned[j] = False
            inP[j] = False
        k = 0
        if sto:  # start at the best vertex
            best = np.inf
            jb = 0
            for j in range(p):
                f = 0.5 * G[j, j] - b[j]
                if f < best:
                    best = f
                    jb = j
            P[0] = jb
            _chol_row(G, P, 0, L)
            k = 1
            inP[jb] = True
            x[jb] = 1.0
        _gradient(G, b, P, k, x, g)
        it = 0
        while it < max_iter:
            it += 1
            nu = 0.0
            if sto:
                for i in range(k):
                    nu += g[P[i]]
                nu /= k
            jb = -1
            best = ctol
            for j in range(p):
                if not inP[j] and not banned[j]:
                    v = nu - g[j]
                    if v > best:
                        best = v
                        jb = j
            if jb < 0:
                return it
            if k >= kmax:
                banned[jb] = True
                continue
            P[k] = jb
            if not _chol_row(G, P, k, L):
                banned[jb] = True
                continue
            k += 1
            inP[jb] = True
            first = True
            moved = False
            while True:
                _face_minimiser(G, b, P, L, k, sto, z, w)
                if first and z[k - 1] <= 0.0:  # the entering variable cannot move: rounding-level gain
                    k -= 1
                    inP[jb] = False
                    banned[jb] = True
                    break
                first = False
                alpha = 1.0
                im = -1
                for i in range(k):
                    if z[i] <= 0.0:
                        xi = x[P[i]]
                        a = xi / (xi - z[i])
                        if a < alpha:
                            alpha = a
                            im = i
                for i in range(k):
                    x[P[i]] += alpha * (z[i] - x[P[i]])
                moved = True
                if im < 0:
                    break
                # drop the blocking variable and any other that reached zero; the factor's rows before the
                # first dropped one stay valid
                x[P[im]] = 0.0
                first_out = -1
                m = 0
                for i in range(k):
                    pi = P[i]
                    if x[pi] <= 0.0:
                        x[pi] = 0.0
                        inP[pi] = False
                        if first_out < 0:
                            first_out = i
                    else:
                        P[m] = pi
                        m += 1
                k = m
                if sto and k > 0:
                    s = 0.0
                    for i in range(k):
                        s += x[P[i]]
                    for i in range(k):
                        x[P[i]] /= s
                for i in range(first_out, k):
                    if not _chol_row(G, P, i, L):  # cannot happen for a subset of an independent set
                        for q in range(i, k):
                            x[P[q]] = 0.0
                            inP[P[q]] = False
                        k = i
                        break
                if k == 0:
                    break
            if moved:
                for j in range(p):
                    banned[j] = False
                _gradient(G, b, P, k, x, g)
        return -1

    @njit(cache=True, parallel=True)
    def _solve_all(G, B, sto, ctol, max_iter, kmax, A, iters):
        n, p = B.shape
        nchunk = min(n, 64)
        for c in prange(nchunk):
            x = np.empty(p)
            P = np.empty(p, dtype=np.int64)
            L = np.empty((kmax, kmax))
            z = np.empty(kmax)
            g = np.empty(p)
            banned = np.empty(p, dtype=np.bool_)
            inP = np.empty(p, dtype=np.bool_)
            w = np.empty((5, kmax))
            for i in range(c * n // nchunk, (c + 1) * n // nchunk):
                iters[i] = _solve_pixel(G, B[i], sto, ctol[i], max_iter, kmax, x, P, L, z, g, banned, inP, w)
                for j in range(p):
                    A[i, j] = x[j]


def solve_block(G: np.ndarray, B: np.ndarray, sum_to_one: bool, ctol: np.ndarray, max_iter: int,
                kmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact minimiser of ``0.5 a'Ga - b'a`` (a >= 0 [, sum 1]) for every row ``b`` of B.

    For FCLS pass ``G + mu 11'`` and ``B + mu``.  Returns ``(A, iterations)``; iterations -1 = not
    converged within ``max_iter``.
    """
    G = np.ascontiguousarray(G, dtype=np.float64)
    B = np.ascontiguousarray(B, dtype=np.float64)
    A = np.empty_like(B)
    iters = np.empty(B.shape[0], dtype=np.int64)
    _solve_all(G, B, bool(sum_to_one), np.ascontiguousarray(ctol, dtype=np.float64), int(max_iter),
               int(max(1, min(kmax, G.shape[0]))), A, iters)
    return A, iters
