"""Noise removal for CRISM spectra: bad values, column spikes, per-pixel despiking.

All functions work on spectra along the last axis (``(n, bands)`` or ``(rows, cols, bands)``),
vectorised over pixels.  The running median with truncated windows (Matlab's ``medfilt1``
"truncate") has two engines giving the same medians:

* ``numba`` (default when numba is installed, windows up to 13): compiled kernels in
  :mod:`orbitml.crism._kernels`, about ten times faster;
* ``numpy``: sorting networks shared between neighbouring windows - two windows of odd size
  ``k`` share ``k - 1`` samples, whose two middle order statistics (from a pruned Batcher
  network) give both medians by one clamp each; pixels are processed in cache-sized chunks on a
  small thread pool (numpy releases the GIL in ufuncs).
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from orbitml.crism._pool import parallel_map

BAD_ABOVE = 1e3
CRISM_NODATA = 65535.0
DESPIKE_PASSES = ((11, 5.0), (7, 5.0), (3, 5.0))


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def mask_bad_values(X: np.ndarray, main: np.ndarray | None = None, copy: bool = True,
                    threads: int | None = None, engine: str = "auto"):
    """Replace bad values (> 1e3, non-finite, 65535) by the mean of the good ones.

    Returns ``(X, bad_pixel)``: ``bad_pixel`` (shape ``X.shape[:-1]``) flags spectra with a bad
    value among the ``main`` bands (boolean band mask; all bands when None) - those pixels are
    excluded from ratioing and classification.
    """
    X = np.array(X, dtype=np.float32, copy=copy)
    if X.size and X.flags.c_contiguous and _use_compiled(engine, X.dtype, ()):
        from orbitml.crism._kernels import mask_bad_compiled

        X2 = X.reshape(-1, X.shape[-1])
        m = np.ones(X.shape[-1], bool) if main is None else np.asarray(main, dtype=bool)
        bad_main = mask_bad_compiled(X2, BAD_ABOVE, m, threads or default_threads())
        return X, bad_main.reshape(X.shape[:-1])
    bad = ~np.isfinite(X)
    with np.errstate(invalid="ignore"):
        bad |= (X > BAD_ABOVE) | (X == CRISM_NODATA)
    if bad.any():
        good = X[~bad]
        X[bad] = good.mean() if good.size else 0.0
    bad_main = bad if main is None else bad[..., np.asarray(main, dtype=bool)]
    return X, bad_main.any(axis=-1)


@lru_cache(maxsize=16)
def _pruned_network(n: int, outputs: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Batcher odd-even merge sort comparators for n inputs, pruned to the given outputs."""
    p2 = 1
    while p2 < n:
        p2 *= 2
    comps: list[tuple[int, int]] = []
    p = 1
    while p < p2:
        k = p
        while k >= 1:
            for j in range(k % p, p2 - k, 2 * k):
                for i in range(min(k, p2 - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p) and b < n:
                        comps.append((a, b))
            k //= 2
        p *= 2
    needed = set(outputs)
    kept = []
    for a, b in reversed(comps):
        if a in needed or b in needed:
            kept.append((a, b))
            needed |= {a, b}
    return tuple(reversed(kept))


@lru_cache(maxsize=16)
def _network_plan(n: int, outputs: tuple[int, ...]) -> tuple[tuple[int, int, bool, bool], ...]:
    """The pruned network with, per comparator, whether its min (at a) and max (at b) are used."""
    needed = set(outputs)
    plan = []
    for a, b in reversed(_pruned_network(n, outputs)):
        plan.append((a, b, a in needed, b in needed))
        needed |= {a, b}
    return tuple(reversed(plan))


def _run_network(rows: list[np.ndarray], outputs: tuple[int, ...]) -> None:
    """Apply the pruned network in place on ``rows``; only the used side of a comparator is computed."""
    tmp = np.empty_like(rows[0])
    for a, b, use_a, use_b in _network_plan(len(rows), outputs):
        if use_a and use_b:
            np.minimum(rows[a], rows[b], out=tmp)
            np.maximum(rows[a], rows[b], out=rows[b])
            rows[a], tmp = tmp, rows[a]
        elif use_a:
            np.minimum(rows[a], rows[b], out=rows[a])
        else:
            np.maximum(rows[a], rows[b], out=rows[b])


def _sliding_median_full(X: np.ndarray, k: int, out: np.ndarray | None = None) -> np.ndarray:
    """Medians of all full windows of odd size k along the last axis: shape (n, L - k + 1).

    Written into ``out`` (shape ``(n, L - k + 1)``, may be a view) when given.
    """
    n, L = X.shape
    r = k // 2
    W = L - 2 * r
    if out is None:
        out = np.empty((n, W), dtype=X.dtype)
    if r == 0:
        out[...] = X
        return out
    if W % 2:  # pad one column so windows come in pairs
        X = np.concatenate([X, X[:, -1:]], axis=1)
    T = (W + 1) // 2
    m = 2 * r
    rows = [np.ascontiguousarray(X[:, 1 + q: 1 + q + 2 * T: 2]) for q in range(m)]
    _run_network(rows, (r - 1, r))
    lo, hi = rows[r - 1], rows[r]
    left = X[:, 0: 2 * T: 2]
    right = X[:, 2 * r + 1: 2 * r + 1 + 2 * T: 2]
    ev, od = out[:, 0::2], out[:, 1::2]  # T and W // 2 columns
    np.maximum(left, lo, out=ev)
    np.minimum(ev, hi, out=ev)
    t = od.shape[1]
    np.maximum(right[:, :t], lo[:, :t], out=od)
    np.minimum(od, hi[:, :t], out=od)
    return out


def _median_small(cols: list[np.ndarray]) -> np.ndarray:
    """Median of a few columns, row by row, by a pruned sorting network (``np.median`` semantics:
    an even count gives the mean of the two middle values)."""
    m = len(cols)
    mid = (m - 1) // 2, m // 2
    rows = [c.copy() for c in cols]
    if m > 1:
        _run_network(rows, tuple(sorted(set(mid))))
    if mid[0] == mid[1]:
        return rows[mid[0]]
    out = rows[mid[0]] + rows[mid[1]]
    out /= 2
    return out


def _median_edges(X: np.ndarray, k: int, out: np.ndarray) -> None:
    """Fill the ``k // 2`` truncated-window columns at each end of ``out`` (all rows at once)."""
    L = X.shape[1]
    r = k // 2
    for c in list(range(min(r, L))) + list(range(max(L - r, r), L)):
        lo, hi = max(0, c - r), min(L, c + r + 1)
        out[:, c] = _median_small([X[:, j] for j in range(lo, hi)])


def _median_interior(X: np.ndarray, k: int, out: np.ndarray) -> None:
    L = X.shape[1]
    r = k // 2
    if L > 2 * r:
        _sliding_median_full(X, k, out[:, r: L - r])


def _row_blocks(n: int, chunk: int, threads: int | None) -> tuple[list[range], int]:
    """Split ``n`` rows into one contiguous run of ``chunk``-row blocks per worker."""
    nthreads = max(1, min(threads or default_threads(), -(-n // max(chunk, 1))))
    per = -(-n // nthreads)
    per = -(-per // chunk) * chunk
    return [range(s, min(s + per, n), chunk) for s in range(0, n, per)], nthreads


def _run_blocks(fn, n: int, chunk: int, threads: int | None) -> None:
    """Call ``fn(start, stop)`` for cache-sized row blocks, one worker per contiguous run."""
    runs, nthreads = _row_blocks(n, chunk, threads)

    def work(run):
        for s in run:
            fn(s, min(s + chunk, run.stop))

    parallel_map(work, runs, nthreads)


ENGINES = ("auto", "numba", "numpy")


def _use_compiled(engine: str, dtype, windows) -> bool:
    """Whether the compiled kernels serve this call (``engine='numba'`` insists on them)."""
    from orbitml.crism import _kernels

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "numpy":
        return False
    ok = (_kernels.AVAILABLE and np.dtype(dtype) == np.float32
          and all(int(k) // 2 <= _kernels.MAX_RADIUS for k in windows))
    if engine == "numba" and not ok:
        why = "numba is not installed" if not _kernels.AVAILABLE else \
            f"it needs float32 spectra and windows up to {2 * _kernels.MAX_RADIUS + 1}"
        raise ValueError(f"the numba engine cannot run this call: {why}")
    return ok


def medfilt1(X: np.ndarray, k: int, chunk: int = 128, threads: int | None = None,
             engine: str = "auto") -> np.ndarray:
    """Running median of odd size ``k`` along the last axis, windows truncated at the ends.

    Same result as Matlab ``medfilt1(x, k, 'truncate')`` on each spectrum.
    """
    if k % 2 != 1 or k < 1:
        raise ValueError("median window must be odd")
    X = np.asarray(X)
    shape = X.shape
    X2 = np.ascontiguousarray(X.reshape(-1, shape[-1]))
    if X2.shape[0] and _use_compiled(engine, X2.dtype, (k,)):
        from orbitml.crism._kernels import medfilt_compiled

        return medfilt_compiled(X2, k, threads or default_threads()).reshape(shape)
    out = np.empty_like(X2)
    if X2.shape[0]:
        _run_blocks(lambda a, b: _median_interior(X2[a:b], k, out[a:b]), X2.shape[0], chunk, threads)
        _median_edges(X2, k, out)
    return out.reshape(shape)


def despike(X: np.ndarray, passes=DESPIKE_PASSES, stat_bands: np.ndarray | None = None,
            copy: bool = True, threads: int | None = None, chunk: int = 128,
            engine: str = "auto", rows: np.ndarray | None = None,
            protect: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel spike removal in passes of (window, sigma), crism_ml style.

    In each pass, ``d = |x - median_k(x)|``; a sample is a spike when ``d`` exceeds the mean over
    all pixels of the per-spectrum mean of ``d`` plus ``sigma`` times the mean per-spectrum
    standard deviation (both over ``stat_bands``, default all bands); spikes take the median.
    Returns ``(X, n_replaced_per_pixel)``.

    Spectra should be finite; a spectrum with a non-finite value gets non-finite statistics,
    which are left out of the threshold.  ``rows`` (indices into the spectra flattened to 2-D)
    restricts the work and the statistics to those spectra, in place, without gathering them.

    Each pass runs in two sweeps over cache-sized row blocks: the first computes the running
    median and the per-spectrum statistics of ``d`` while the block is in cache, the second
    recomputes ``d`` and replaces the spikes.  Per-spectrum statistics are row reductions, so the
    result is the same as with whole-array operations.  ``engine`` picks the compiled or the
    numpy kernels (see the module docstring); their sums differ by float rounding only.

    ``protect=True`` (not crism_ml's method) replaces a sample only when it is also isolated:
    its distance to the mean of its two neighbours (the one neighbour at the ends) exceeds the
    same threshold.  A one-band spike passes that test; the minimum of an absorption a few bands
    wide does not (its neighbours follow it down), so real bands keep their depth.  Measured on
    simulated Gaussian bands 6% deep among 10x as many bland spectra (tests/crism): crism_ml's
    method (the default) leaves about half the depth of a 35 nm (FWHM) band, this setting all of
    it; bands narrower than ~3 channels (FWHM ~20 nm) still lose depth in the 3-band pass.
    It runs on the numpy engine.
    """
    X = np.array(X, dtype=np.float32, copy=copy)
    shape = X.shape
    X2 = np.ascontiguousarray(X.reshape(-1, shape[-1]))
    copied = not np.shares_memory(X2, X)
    n, L = X2.shape
    if protect:
        if engine == "numba":
            raise ValueError("protect=True runs on the numpy engine")
        engine = "numpy"
    if rows is not None:
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        if not _use_compiled(engine, X2.dtype, [k for k, _ in passes]):
            sub, nsub = despike(X2[rows], passes, stat_bands, copy=False, threads=threads, chunk=chunk,
                                engine="numpy", protect=protect)
            X2[rows] = sub
            nrep = np.zeros(n, dtype=np.int32)
            nrep[rows] = nsub
            if copied:
                X[...] = X2.reshape(shape)
            return X, nrep.reshape(shape[:-1])
    nrep = np.zeros(n, dtype=np.int32)
    if n == 0:
        return X, nrep.reshape(shape[:-1])
    sel = None if stat_bands is None else np.asarray(stat_bands, dtype=bool)
    for k, _ in passes:
        if int(k) % 2 != 1 or int(k) < 1:
            raise ValueError("median window must be odd")
    if _use_compiled(engine, X2.dtype, [k for k, _ in passes]):
        from orbitml.crism._kernels import despike_compiled

        mask = np.ones(L, bool) if sel is None else sel
        nrep = despike_compiled(X2, passes, mask, threads or default_threads(), rows)
        if copied:
            X[...] = X2.reshape(shape)
        return X, nrep.reshape(shape[:-1])
    if sel is not None and sel.all():
        sel = None
    med = np.empty_like(X2)
    dmean = np.empty(n, dtype=np.float32)
    dstd = np.empty(n, dtype=np.float32)
    for k, sigma in passes:
        k = int(k)
        _median_edges(X2, k, med)

        def stats(a, b, k=k):
            _median_interior(X2[a:b], k, med[a:b])
            d = np.subtract(med[a:b], X2[a:b])
            np.abs(d, out=d)
            ds = d if sel is None else d[:, sel]
            dmean[a:b] = ds.mean(axis=1)
            dstd[a:b] = ds.std(axis=1, ddof=1)

        _run_blocks(stats, n, chunk, threads)
        ok = np.isfinite(dmean) & np.isfinite(dstd)
        if not ok.any():
            continue
        thr = dmean.mean() + sigma * dstd.mean() if ok.all() else dmean[ok].mean() + sigma * dstd[ok].mean()

        def replace(a, b, thr=thr):
            d = np.subtract(med[a:b], X2[a:b])
            np.abs(d, out=d)
            spike = d > thr
            if protect and L > 1:
                x = X2[a:b]
                nb = np.empty_like(x)
                nb[:, 1:-1] = 0.5 * (x[:, :-2] + x[:, 2:])
                nb[:, 0], nb[:, -1] = x[:, 1], x[:, -2]
                spike &= np.abs(x - nb) > thr
            nrep[a:b] += spike.sum(axis=1, dtype=np.int32)
            np.copyto(X2[a:b], med[a:b], where=spike)

        _run_blocks(replace, n, 4 * chunk, threads)
    if copied:
        X[...] = X2.reshape(shape)
    return X, nrep.reshape(shape[:-1])


def remove_column_spikes(cube: np.ndarray, size: int = 3, sigma: float = 5.0,
                         stat_bands: np.ndarray | None = None, valid: np.ndarray | None = None,
                         copy: bool = True, threads: int | None = None,
                         engine: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Column spike removal on a ``(rows, cols, bands)`` cube, on the ``stat_bands`` only.

    The work bands (``stat_bands``, default all; crism_ml's 248 main bands) are treated as one
    spectrum, as crism_ml does: the running median never reaches across into other bands (at the
    last main band, 2.648 um, it must not take in 2.807 um across the spectral gap).  Each
    column's mean spectrum over the work bands (``valid`` pixels only) is compared with its
    ``size``-band running median; bands deviating by more than mean + ``sigma`` std (ddof 1) of
    that column's deviations are replaced, in every pixel of the column, by the pixel's own
    running median over the work bands.  Returns ``(cube, flagged)`` with ``flagged`` a
    ``(cols, bands)`` mask (False outside the work bands).
    """
    cube = np.array(cube, dtype=np.float32, copy=copy)
    h, w, b = cube.shape
    sel = np.ones(b, bool) if stat_bands is None else np.asarray(stat_bands, dtype=bool)
    sidx = np.flatnonzero(sel)
    flagged = np.zeros((w, b), bool)
    if sidx.size == 0 or h == 0:
        return cube, flagged
    if valid is None:
        valid = np.ones((h, w), bool)
    compiled = cube.flags.c_contiguous and _use_compiled(engine, cube.dtype, ())
    if compiled:
        from orbitml.crism._kernels import column_means_compiled

        col = column_means_compiled(cube, np.ascontiguousarray(valid, dtype=bool), threads or default_threads())
    else:
        v = np.asarray(valid, dtype=np.float32)[..., None]
        # row-by-row accumulation: the same additions in the same order as ``(cube * v).sum(0)``
        # without a cube-sized temporary
        acc = cube[0] * v[0]
        tmp = np.empty_like(acc)
        for i in range(1, h):
            np.multiply(cube[i], v[i], out=tmp)
            acc += tmp
        col = acc / np.maximum(v.sum(axis=0), 1.0)
    cs = np.ascontiguousarray(col[:, sidx])
    diff = np.abs(cs - medfilt1(cs, size, threads=1))
    thr = diff.mean(axis=1, keepdims=True) + sigma * diff.std(axis=1, ddof=1, keepdims=True)
    fs = diff > thr  # (cols, work bands)
    flagged[:, sidx] = fs
    if not fs.any():
        return cube, flagged
    # the running median at work band q only involves work bands q - r .. q + r: compute it for
    # the flagged (column, band) pairs only (the same window values, so the same medians)
    r = size // 2
    contiguous = bool(sidx[-1] - sidx[0] + 1 == sidx.size)
    cj, qq = np.nonzero(fs)
    if compiled and contiguous:
        from orbitml.crism._kernels import _column_spike_medians

        med = np.empty((cj.size, h), np.float32)
        _column_spike_medians(cube, cj.astype(np.int64), (sidx[qq]).astype(np.int64), r, int(sidx[0]),
                              int(sidx[-1]) + 1, med)
        cube[:, cj, sidx[qq]] = med.T
        return cube, flagged
    repl = []
    for q in np.unique(qq):
        cq = cj[qq == q]
        win = cube[:, cq][:, :, sidx[max(0, q - r): min(sidx.size, q + r + 1)]]
        repl.append((cq, sidx[q], np.median(win, axis=-1)))
    for cq, j, m in repl:
        cube[:, cq, j] = m
    return cube, flagged


def normr(X: np.ndarray, dtype=np.float64) -> np.ndarray:
    """L2-normalise rows; all-zero rows become the constant unit vector (Matlab convention)."""
    X = np.asarray(X, dtype=dtype)
    nrm = np.sqrt(np.einsum("ij,ij->i", X, X))
    out = np.empty_like(X)
    ok = nrm > 0
    out[ok] = X[ok] / nrm[ok, None]
    out[~ok] = 1.0 / np.sqrt(X.shape[1])
    return out


def minmax_rows(X: np.ndarray) -> np.ndarray:
    """Scale each row to [0, 1] (constant rows map to 0)."""
    X = np.asarray(X)
    lo = X.min(axis=1, keepdims=True)
    rng = X.max(axis=1, keepdims=True) - lo
    rng[rng == 0] = 1.0
    return (X - lo) / rng
