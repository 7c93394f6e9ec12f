"""Blandness model and column ratioing.

CRISM I/F carries column-dependent detector and atmospheric residue.  crism_ml divides each
pixel by the mean of the three blandest pixels of the same column nearby:

* blandness = Student-t log-likelihood under a one-class HBM fitted on L2-normalised unratioed
  bland spectra over 1.047-1.638, 1.737-1.968 and 2.067-2.648 um (:class:`BlandModel`);
* for pixel (i, c), candidates are the pixels of column c in rows i-49 .. i+49, except rows
  i-1, i, i+1; the three with the highest blandness are averaged and the pixel is divided by
  that mean (:func:`column_ratio`).  Near the image edges the 99-row window is shifted inside
  the image exactly as crism_ml's ``_y_slice`` does it: rows 0..98 at the top, rows h-100..h-2
  at the bottom (crism_ml never uses the last row as a candidate once the image has at least
  100 rows; we match it so that both give the same denominators).  An image with fewer than
  ``2*half + 2`` rows (crism_ml refuses those) uses all its rows.

Everything is vectorised: candidate scores are gathered as a ``(rows, 99, cols)`` array and the
top three found with three arg-max passes.
"""

from __future__ import annotations

import numpy as np

from orbitml.crism import bands as cb
from orbitml.crism.hbm import HBMClassifier, student_t_logpdf
from orbitml.crism.preprocess import medfilt1, normr
from orbitml.errors import OrbitmlInputError

HALF_WINDOW = 49
N_BLAND = 3


def _medfilt27(Xm: np.ndarray) -> np.ndarray:
    """``medfilt1(Xm, 27)`` of float64 spectra, in half the time when every value is exactly a
    float32 (spectra read from float32 products are): the full windows only select values, so
    their medians are computed in float32; the truncated windows at the ends, whose even counts
    average two values, stay in float64.  Bit for bit the float64 result."""
    from orbitml.crism.preprocess import _median_edges, _median_interior, _run_blocks

    X32 = Xm.astype(np.float32)
    if Xm.shape[1] <= 27 or not np.array_equal(X32, Xm):
        return medfilt1(Xm, 27)
    med32 = np.empty_like(X32)  # interior only: the ends are computed once, in float64, below
    _run_blocks(lambda a, b: _median_interior(X32[a:b], 27, med32[a:b]), X32.shape[0], 128, None)
    med = np.empty(Xm.shape)
    med[:, 13:-13] = med32[:, 13:-13]
    from orbitml.crism import _kernels

    if _kernels.AVAILABLE:  # no NaN here: every value equals its float32 copy
        _kernels._median_edges_rows(np.ascontiguousarray(Xm), 13, med)
    else:
        _median_edges(np.ascontiguousarray(Xm), 27, med)
    return med


class BlandModel:
    """One-class HBM of bland (featureless) unratioed spectra; ``score`` = log-likelihood.

    ``fit(X, groups, wavelengths)`` takes unratioed spectra on a wavelength table covering the
    bland ranges; spectra with strong spikes (27-band median, 10 sigma) are dropped first.
    """

    def __init__(self, kappa0: float = 1.0, kappa1: float = 100.0, drop_spiky: bool = True):
        self.kappa0 = kappa0
        self.kappa1 = kappa1
        self.drop_spiky = drop_spiky

    def fit(self, X: np.ndarray, groups: np.ndarray, wavelengths: np.ndarray) -> BlandModel:
        from orbitml.crism.hbm import _single_thread_blas

        with _single_thread_blas():  # small products only: a BLAS thread team costs more than it saves
            return self._fit(X, groups, wavelengths)

    def _fit(self, X: np.ndarray, groups: np.ndarray, wavelengths: np.ndarray) -> BlandModel:
        X = np.asarray(X, dtype=np.float64)
        wl = np.asarray(wavelengths, dtype=float)
        self.band_index_ = cb.bland_subset(wl)
        self.wavelengths_ = wl[self.band_index_]
        keep = np.ones(X.shape[0], bool)
        if self.drop_spiky and X.shape[0] > 1:
            main = cb.main_band_mask(wl)
            Xm = X[:, main]
            diff = np.abs(_medfilt27(Xm) - Xm)
            thr = diff.mean(axis=1).mean() + 10.0 * diff.std(axis=1, ddof=1).mean()
            keep = ~(diff > thr).any(axis=1)
            if keep.sum() < 2:
                keep[:] = True
        self.n_dropped_ = int((~keep).sum())
        Xb = normr(X[keep][:, self.band_index_])
        self.hbm_ = HBMClassifier(self.kappa0, self.kappa1).fit(
            Xb, np.zeros(Xb.shape[0], dtype=np.int64), np.asarray(groups)[keep])
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        """Blandness (log-likelihood) of spectra on the fitted wavelength table, shape (n,)."""
        return self.hbm_.predict_log_likelihood(normr(np.asarray(X)[:, self.band_index_]))[:, 0]

    def score_pixels(self, flat: np.ndarray, bands: np.ndarray, rows: np.ndarray | None = None,
                     dtype: str = "float32", threads: int | None = None) -> np.ndarray:
        """Blandness of ``flat[rows][:, bands]`` (``bands`` matched to :attr:`wavelengths_`).

        Works chunk by chunk (gather, L2-normalise, Student-t) without copying the selected
        spectra first; ``dtype`` is the arithmetic of the Student-t evaluation.
        """
        flat = np.asarray(flat)
        bands = np.asarray(bands)
        if bands.size != self.band_index_.size:
            raise OrbitmlInputError(f"the bland model needs {self.band_index_.size} bands, got {bands.size}")
        all_rows = rows is None
        rows = np.arange(flat.shape[0]) if rows is None else np.asarray(rows)
        dt = np.dtype(dtype)
        plan = self.hbm_.plan(dt)
        from orbitml.crism import _kernels

        if dt == np.float32 and flat.dtype == np.float32 and flat.flags.c_contiguous and _kernels.AVAILABLE:
            b_idx = bands.astype(np.int64)
            r_idx = rows.astype(np.int64)

            def prepare(a, b):
                Y = np.empty((b - a, b_idx.size), np.float32)
                _kernels._normalise_rows(flat, r_idx, a, b, b_idx, plan.centre, Y)
                return Y

            return student_t_logpdf(None, None, None, None, None, threads=threads, prepare=prepare,
                                    n_rows=rows.size, plan=plan, centred=True)[:, 0]
        def prepare(a, b):
            if all_rows:
                Y = np.take(flat[a:b], bands, axis=1)
            else:
                Y = flat[np.ix_(rows[a:b], bands)]
            return normr(Y, dtype=dt)

        return student_t_logpdf(None, None, None, None, None, threads=threads, prepare=prepare, n_rows=rows.size,
                                plan=plan)[:, 0]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"bland_band_index": self.band_index_, "bland_wavelengths": self.wavelengths_,
                **self.hbm_.to_arrays("bland_")}

    @classmethod
    def from_arrays(cls, a) -> BlandModel:
        self = cls()
        self.band_index_ = np.asarray(a["bland_band_index"])
        self.wavelengths_ = np.asarray(a["bland_wavelengths"])
        self.hbm_ = HBMClassifier.from_arrays(a, "bland_")
        self.n_dropped_ = 0
        return self


def window_geometry(h: int, half: int = HALF_WINDOW) -> tuple[int, int]:
    """``(window length, last window start)`` of the candidate window in an image of ``h`` rows."""
    win = min(2 * half + 1, h)
    top = h - win - 1 if h >= 2 * half + 2 else h - win
    return win, top


def candidate_rows(h: int, half: int = HALF_WINDOW) -> np.ndarray:
    """``(h, 2*half+1)`` candidate row indices per row (window shifted at the edges as crism_ml
    does: last start ``h - 2*half - 2``), -1 = excluded."""
    win, top = window_geometry(h, half)
    start = np.clip(np.arange(h) - half, 0, top)
    rows = start[:, None] + np.arange(win)[None, :]
    own = np.arange(h)[:, None]
    return np.where(np.abs(rows - own) <= 1, -1, rows)


def column_ratio(cube: np.ndarray, blandness: np.ndarray, half: int = HALF_WINDOW, n_bland: int = N_BLAND,
                 chunk_rows: int = 4, threads: int | None = None,
                 engine: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Ratio a ``(rows, cols, bands)`` cube by the mean of the ``n_bland`` blandest same-column pixels.

    ``blandness`` is ``(rows, cols)``, ``-inf`` for pixels that must not be used (bad pixels).
    Returns ``(ratioed, denominator_rows)``: ratioed spectra (NaN where the pixel is bad or
    fewer than ``n_bland`` usable candidates exist) and the chosen rows, ``(rows, cols, n_bland)``
    (-1 where the pixel is not ratioed).  Ties in blandness go to the earlier row.  ``engine``
    picks the compiled kernel (default when numba is installed) or the vectorised numpy code;
    both give the same result.
    """
    from orbitml.crism.preprocess import _use_compiled, default_threads

    cube = np.asarray(cube)
    h, w, b = cube.shape
    B = np.asarray(blandness, dtype=np.float64)
    if B.shape != (h, w):
        raise OrbitmlInputError(f"blandness shape {B.shape} does not match the cube {cube.shape[:2]}")
    if h < 4:
        raise OrbitmlInputError(f"column ratioing needs at least 4 rows, got {h}")
    if n_bland < 1:
        raise OrbitmlInputError(f"n_bland must be at least 1, got {n_bland}")
    if _use_compiled(engine, cube.dtype, ()):
        from orbitml.crism._kernels import column_ratio_compiled

        return column_ratio_compiled(np.ascontiguousarray(cube), np.ascontiguousarray(B), half, n_bland,
                                     threads or default_threads())
    cand = candidate_rows(h, half)  # (h, win)
    win = cand.shape[1]
    # candidates along the last (contiguous) axis: (cols, rows, win)
    G = B.T[:, np.where(cand < 0, 0, cand)]
    G[:, cand < 0] = -np.inf
    G = G.reshape(w * h, win)
    best = np.empty((h, w, n_bland), dtype=np.int64)
    ok = np.isfinite(B)
    ar = np.arange(w * h)
    row_of = np.tile(np.arange(h), w)  # row of each flat (col, row) entry
    for t in range(n_bland):
        pos = np.argmax(G, axis=1)  # first maximum, as along the window axis before
        val = G[ar, pos]
        ok &= np.isfinite(val).reshape(w, h).T
        best[:, :, t] = cand[row_of, pos].reshape(w, h).T
        G[ar, pos] = -np.inf
    out = np.empty(cube.shape, dtype=np.float32)
    flat = cube.reshape(h * w, b)
    flat_idx = best * w + np.arange(w)[None, :, None]  # index of each chosen pixel in ``flat``
    for s in range(0, h, chunk_rows):
        e = min(h, s + chunk_rows)
        den = flat.take(flat_idx[s:e, :, 0], axis=0).astype(np.float32, copy=False)
        for t in range(1, n_bland):
            den += flat.take(flat_idx[s:e, :, t], axis=0)
        den *= np.float32(1.0 / n_bland)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(cube[s:e], den, out=out[s:e])
    bad = ~ok
    out[bad] = np.nan
    best[bad] = -1
    return out, best


SCENE_RATIO_NOTE = ("scene-level bland-pixel ratio: every pixel divided by the mean of the scene's blandest "
                    "pixels (a map-projected product's columns are not detector columns, so column ratioing "
                    "does not apply); column-dependent detector residue is not removed")


def scene_ratio(cube: np.ndarray, blandness: np.ndarray, n_bland: int | None = None,
                fraction: float = 0.002) -> tuple[np.ndarray, np.ndarray]:
    """Ratio every pixel by one denominator: the mean of the scene's blandest pixels.

    For map-projected products, whose columns are not detector columns.  ``n_bland`` pixels (default
    ``max(3, fraction * usable pixels)``, at most 500) with the highest finite blandness are
    averaged.  Returns ``(ratioed, chosen flat pixel indices)``; ratioed is NaN where the blandness
    is not finite (bad pixels).
    """
    cube = np.asarray(cube)
    h, w, b = cube.shape
    B = np.asarray(blandness, dtype=np.float64).ravel()
    ok = np.isfinite(B)
    n_ok = int(ok.sum())
    n = n_bland or int(min(500, max(3, round(fraction * n_ok))))
    if n_ok < n:
        raise OrbitmlInputError(f"scene ratioing needs at least {n} usable pixels, found {n_ok}")
    cand = np.flatnonzero(ok)
    top = cand[np.argsort(-B[cand], kind="stable")[:n]]
    flat = cube.reshape(-1, b)
    den = flat[top].astype(np.float64).mean(axis=0).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (flat / den).astype(np.float32, copy=False).reshape(h, w, b)
    out[~ok.reshape(h, w)] = np.nan
    return out, top
