"""CRISM spectral summary parameters (Viviano-Beck et al. 2014) on spectra and on scenes.

The table of parameters is :data:`orbitml.crism.params_table.PARAMETERS`; this module holds the
vectorised primitives that evaluate its formula forms on ``(n_pixels, n_bands)`` arrays:

* :func:`compute_parameters` — arrays in, a :class:`ParamResult` out (values, the bands used);
* :func:`summary_parameters` — a scene in, a scene out with one band per parameter (band names =
  parameter names, CRS and transform kept, nodata NaN), computed in row blocks so a dask-backed
  scene is never loaded whole.

Each wavelength of a formula is read from the band whose centre is nearest to it (if that band is
within ``tolerance_nm``), as the median over the formula's kernel width of bands centred there
(NaN bands inside a kernel are ignored).  A parameter whose wavelengths the data do not cover is
NaN with a warning, or an :class:`OrbitmlInputError` when the caller asked for it by name.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from orbitml.crism.params_table import PARAMETERS, ParamDef, canonical_name
from orbitml.errors import OrbitmlInputError

__all__ = ["BandSampler", "ParamResult", "compute_parameters", "summary_parameters", "resolve_names",
           "DEFAULT_TOLERANCE_NM"]

DEFAULT_TOLERANCE_NM = 15.0


class MissingCoverage(Exception):
    """A wavelength a formula needs lies outside the data's bands (internal)."""


class BandSampler:
    """Kernel-median band values of ``X`` (n, n_bands) at requested wavelengths, cached.

    ``wavelengths`` may be in any order (TRR3 cubes run long to short); kernels are taken over
    neighbours in wavelength order.  :attr:`used` records every ``(requested nm, band index,
    band nm, kernel)`` read since the last :meth:`reset_used`.
    """

    def __init__(self, X: np.ndarray, wavelengths: Sequence[float],
                 tolerance_nm: float = DEFAULT_TOLERANCE_NM):
        X = np.asarray(X)
        wl = np.asarray(wavelengths, dtype=float).ravel()
        if X.ndim != 2 or X.shape[1] != wl.size:
            raise OrbitmlInputError(f"spectra of shape {X.shape} do not match {wl.size} wavelengths")
        self.order = np.argsort(wl, kind="stable")
        self.wl = wl[self.order]
        self.X = X[:, self.order].astype(np.float64, copy=False)
        self.tolerance_nm = float(tolerance_nm)
        self._cache: dict[tuple, object] = {}
        self.used: list[tuple[float, int, float, int]] = []

    def reset_used(self) -> None:
        self.used = []

    def index(self, wavelength: float) -> int:
        """Sorted index of the band nearest ``wavelength``; MissingCoverage when none is close."""
        i = int(np.argmin(np.abs(self.wl - wavelength)))
        if abs(self.wl[i] - wavelength) > self.tolerance_nm:
            raise MissingCoverage(wavelength)
        return i

    def W(self, wavelength: float) -> float:
        """Centre (nm) of the band nearest ``wavelength``."""
        return float(self.wl[self.index(wavelength)])

    def R(self, wavelength: float, kernel: int = 1) -> np.ndarray:
        """Median over ``kernel`` bands centred on the band nearest ``wavelength`` (fewer at the ends)."""
        i = self.index(wavelength)
        self.used.append((float(wavelength), int(self.order[i]), float(self.wl[i]), int(kernel)))
        key = (i, int(kernel))
        if key not in self._cache:
            # centred window i - k//2 .. i + k//2 (CAT's crism_sumutil_single: an even width k reads
            # k + 1 bands, centred), truncated (not shifted) at the ends of the data
            lo = max(0, i - kernel // 2)
            hi = min(self.wl.size, i + kernel // 2 + 1)
            block = self.X[:, lo:hi]
            if hi - lo == 1:
                val = block[:, 0].copy()
            elif np.isnan(block).any():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    val = np.nanmedian(block, axis=1)
            else:
                val = np.median(block, axis=1)
            self._cache[key] = val
        return self._cache[key]

    def bands_from_to(self, lo: float, hi: float) -> np.ndarray:
        """Sorted indices of every band from the band nearest ``lo`` to the band nearest ``hi``
        (CAT's ``indgen`` over ``mro_crism_lookupwv`` indices), at least two."""
        i0, i1 = self.index(lo), self.index(hi)
        idx = np.arange(min(i0, i1), max(i0, i1) + 1)
        if idx.size < 2:
            raise MissingCoverage(lo)
        for i in idx:
            self.used.append((float(self.wl[i]), int(self.order[i]), float(self.wl[i]), 1))
        return idx

    def bands_between(self, lo: float, hi: float) -> np.ndarray:
        """Sorted indices of the bands with centres in [lo, hi] nm (at least two, else MissingCoverage)."""
        idx = np.flatnonzero((self.wl >= lo) & (self.wl <= hi))
        if idx.size < 2:
            raise MissingCoverage(lo)
        for i in idx:
            self.used.append((float(self.wl[i]), int(self.order[i]), float(self.wl[i]), 1))
        return idx


# --- primitives ------------------------------------------------------------------------------

def _div(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / b


def continuum(s: BandSampler, short: float, long: float, at: float, ks: int, kl: int) -> np.ndarray:
    """Straight line in wavelength through R(short) and R(long), evaluated at the band nearest ``at``."""
    ws, wl, wc = s.W(short), s.W(long), s.W(at)
    b = (wc - ws) / (wl - ws)
    return (1.0 - b) * s.R(short, ks) + b * s.R(long, kl)


def band_depth(s: BandSampler, short, centre, long, ks=5, kc=5, kl=5) -> np.ndarray:
    """BD = 1 - R(centre) / continuum(centre)."""
    return 1.0 - _div(s.R(centre, kc), continuum(s, short, long, centre, ks, kl))


def shoulder(s: BandSampler, short, centre, long, ks=5, kc=5, kl=5) -> np.ndarray:
    """Inverse lever rule: 1 - continuum(centre) / R(centre) (positive for a local maximum)."""
    return 1.0 - _div(continuum(s, short, long, centre, ks, kl), s.R(centre, kc))


def _relative(s: BandSampler, short, long, at, ks, kl, kc) -> np.ndarray:
    return _div(s.R(at, kc), continuum(s, short, long, at, ks, kl))


def _integral_um(y: np.ndarray, wl_nm: np.ndarray) -> np.ndarray:
    """Trapezoid integral along axis 1 over wavelength in µm; NaN bands are skipped."""
    x = wl_nm / 1000.0
    ok = np.isfinite(y)
    if ok.all():
        return np.trapezoid(y, x, axis=1)
    out = np.full(y.shape[0], np.nan)
    for r in np.flatnonzero(ok.sum(axis=1) >= 2):
        m = ok[r]
        out[r] = np.trapezoid(y[r, m], x[m])
    return out


def rpeak(s: BandSampler, wls: Sequence[float], degree: int = 4,
          n_grid: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """(peak wavelength in µm, peak reflectance) of a polynomial through R(wls), as CAT does it.

    CAT's ``crism_summary_rpeak1``: single bands nearest 442, 533, 600, 710, 740, 775, 800, 833,
    860, 892 and 925 nm (chosen to avoid the ~660 nm filter boundary; an MTRDR has no bands
    between 631 and 709 nm), a 4th-order least-squares polynomial, and its maximum on a
    1001-point grid spanning those wavelengths.  Every wavelength must be covered: with bands
    missing the fit would be under-determined or pass exactly through the points left, so the
    parameter is refused (MissingCoverage) rather than guessed.
    """
    xs = []
    for w in wls:
        xs.append(s.W(w))  # raises MissingCoverage for a wavelength the data lack
    key = ("rpeak", tuple(xs), degree, n_grid)
    if key in s._cache:
        return s._cache[key]
    Y = np.stack([s.R(w, 1) for w in wls], axis=0)  # (k, n)
    x = np.array(xs) / 1000.0
    n = Y.shape[1]
    peak_wl = np.full(n, np.nan)
    peak_r = np.full(n, np.nan)
    ok = np.isfinite(Y).all(axis=0)
    if ok.any():
        xc = x.mean()
        coef = np.polynomial.polynomial.polyfit(x - xc, Y[:, ok], degree)  # (degree + 1, n_ok)
        grid = np.linspace(x.min(), x.max(), n_grid)
        V = np.polynomial.polynomial.polyvander(grid - xc, degree) @ coef  # (g, n_ok)
        j = np.argmax(V, axis=0)
        peak_wl[ok] = grid[j]
        peak_r[ok] = V[j, np.arange(V.shape[1])]
    s._cache[key] = (peak_wl, peak_r)
    return peak_wl, peak_r


def _idl_median(block: np.ndarray) -> np.ndarray:
    """IDL ``median(..., dimension)`` without /EVEN: the element at index n // 2 of the sorted values."""
    return np.sort(block, axis=1)[:, block.shape[1] // 2]


def bdi_continuum(s: BandSampler, p1: tuple[float, float], p2: tuple[float, float], at_idx) -> np.ndarray:
    """CAT's 1-2 µm continuum (``crism_sumutil_bdicont``, hyperspectral branch), ``(n, len(at_idx))``.

    Short anchor: the 75th-percentile value (sorted element ``floor(0.75 n)``) of the bands from
    ``p1[0]`` to ``p1[1]`` (1330-1875 nm), placed at the median wavelength of those bands; long
    anchor: the median (IDL, no /EVEN) of the bands from ``p2[0]`` to ``p2[1]`` (2430-2600 nm) at
    their median wavelength (/EVEN); the continuum is the straight line through the two.  A
    pixel with a NaN in either range gets NaN.
    """
    i1 = s.bands_from_to(*p1)
    i2 = s.bands_from_to(*p2)
    b1, b2 = s.X[:, i1], s.X[:, i2]
    v1 = np.sort(b1, axis=1)[:, int(i1.size * 0.75)]
    w1 = float(np.median(s.wl[i1]))
    v2 = _idl_median(b2)
    w2 = float(np.median(s.wl[i2]))
    bad = np.isnan(b1).any(axis=1) | np.isnan(b2).any(axis=1)
    v1[bad] = np.nan
    slope = (v2 - v1) / (w2 - w1)
    return slope[:, None] * (s.wl[at_idx][None, :] - w2) + v2[:, None]


def evaluate(p: ParamDef, s: BandSampler) -> np.ndarray:
    """Evaluate one table row on the sampler's spectra; raises MissingCoverage."""
    w, k, f = p.wavelengths, p.kernels, p.form
    if f == "R":
        return s.R(w[0], k[0]).copy()
    if f == "RATIO":
        return _div(s.R(w[0], k[0]), s.R(w[1], k[1]))
    if f == "BD":
        return band_depth(s, *w, *k)
    if f == "SH":
        return shoulder(s, *w, *k)
    if f == "MIN":
        out = None
        for t in range(0, len(w), 3):
            bd = band_depth(s, *w[t:t + 3], *k[t:t + 3])
            out = bd if out is None else np.minimum(out, bd)
        return out
    if f == "BDMEAN":
        terms = [1.0 - _relative(s, w[0], w[1], c, k[0], k[1], kc)
                 for c, kc in zip(w[2:], k[2:], strict=True)]
        return np.mean(terms, axis=0)
    if f == "INDEX":
        total = np.zeros(s.X.shape[0])
        for c, kc, wt in zip(w[2:], k[2:], p.weights, strict=True):
            if p.abs_continuum:  # CAT's OLINDEX3: (RC - R) / |RC| keeps the sign where RC < 0
                rc = continuum(s, w[0], w[1], c, k[0], k[1])
                total = total + wt * _div(rc - s.R(c, kc), np.abs(rc))
            else:
                total = total + wt * (1.0 - _relative(s, w[0], w[1], c, k[0], k[1], kc))
        return total
    if f == "DROP":
        rel = [_relative(s, w[0], w[1], c, k[0], k[1], kc) for c, kc in zip(w[2:], k[2:], strict=True)]
        num = np.mean(rel[:p.n_num], axis=0)
        den = np.mean(rel[p.n_num:], axis=0)
        return 1.0 - _div(num, den)
    if f == "SLOPE":
        return _div(s.R(w[0], k[0]) - s.R(w[1], k[1]), (s.W(w[1]) - s.W(w[0])) / 1000.0)
    if f == "RPEAK":
        return rpeak(s, w)[0]
    if f == "BDIVIS":
        _, rmax = rpeak(s, w[2:])
        idx = s.bands_from_to(w[0], w[1])
        return _integral_um(1.0 - _div(s.X[:, idx], rmax[:, None]), s.wl[idx])
    if f == "BDI":
        idx = s.bands_from_to(w[0], w[1])
        cont = bdi_continuum(s, (w[2], w[3]), (w[4], w[5]), idx)
        return _integral_um(1.0 - _div(s.X[:, idx], cont), s.wl[idx])
    if f == "VAR":
        # CAT: the line through the single bands nearest w[0] and w[1] (1014, 2287 nm); squared
        # residuals summed over every band from the one nearest w[2] to the one nearest w[3]
        ra, rb = s.R(w[0], 1), s.R(w[1], 1)
        wa, wb = s.W(w[0]), s.W(w[1])
        idx = s.bands_from_to(w[2], w[3])
        slope = _div(rb - ra, wb - wa)
        pred = ra[:, None] + slope[:, None] * (s.wl[idx][None, :] - wa)
        return ((pred - s.X[:, idx]) ** 2).sum(axis=1)
    if f == "BDRATIO":
        r1 = _relative(s, w[0], w[2], w[1], k[0], k[2], k[1])
        r2 = _relative(s, w[3], w[5], w[4], k[3], k[5], k[4])
        return 1.0 - _div(r1, r2)
    if f == "BD3000":
        r2210, r2530, r3000 = (s.R(x, kk) for x, kk in zip(w, k, strict=True))
        return 1.0 - _div(r3000, r2530 * _div(r2530, r2210))
    if f == "BDCARB":
        # CAT (since 2011-12): band centres are the means of two bands inside each feature,
        # (2320, 2330) and (2520, 2530) nm, continua 2230-2390 and 2390-2600 nm
        l1, c1a, c1b, h1, c2a, c2b, h2 = w
        kl1, kc1a, kc1b, kh1, kc2a, kc2b, kh2 = k
        wc1 = 0.5 * (s.W(c1a) + s.W(c1b))
        wc2 = 0.5 * (s.W(c2a) + s.W(c2b))
        a = (wc1 - s.W(l1)) / (s.W(h1) - s.W(l1))
        c = (wc2 - s.W(h1)) / (s.W(h2) - s.W(h1))
        num1 = 0.5 * (s.R(c1a, kc1a) + s.R(c1b, kc1b))
        num2 = 0.5 * (s.R(c2a, kc2a) + s.R(c2b, kc2b))
        r1 = _div(num1, (1.0 - a) * s.R(l1, kl1) + a * s.R(h1, kh1))
        r2 = _div(num2, (1.0 - c) * s.R(h1, kh1) + c * s.R(h2, kh2))
        with np.errstate(invalid="ignore"):
            return 1.0 - np.sqrt(r1 * r2)
    if f == "AREA":
        idx = s.bands_between(w[0], w[1])
        ws, wl = s.W(w[0]), s.W(w[1])
        rs, rl = s.R(w[0], k[0]), s.R(w[1], k[1])
        frac = (s.wl[idx] - ws) / (wl - ws)
        cont = rs[:, None] * (1.0 - frac)[None, :] + rl[:, None] * frac[None, :]
        return _integral_um(cont - s.X[:, idx], s.wl[idx])
    raise ValueError(f"{p.name}: unknown formula form {f!r}")


# --- public API ------------------------------------------------------------------------------

@dataclass
class ParamResult:
    """Parameter values ``(n_pixels, n_params)`` and, per parameter, the bands that were read."""

    names: list[str]
    values: np.ndarray
    bands_used: dict[str, list[tuple[float, int, float, int]]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        key = canonical_name(name) or name
        return self.values[:, self.names.index(key)]

    def band_table(self) -> list[dict]:
        """Rows ``{parameter, requested_nm, band (0-based), band_nm, kernel}`` (unique, in order)."""
        rows = []
        for name in self.names:
            seen = set()
            for req, idx, bw, ker in self.bands_used.get(name, []):
                if (req, idx, ker) in seen:
                    continue
                seen.add((req, idx, ker))
                rows.append({"parameter": name, "requested_nm": req, "band": idx, "band_nm": bw,
                             "kernel": ker})
        return rows


def resolve_names(names: Sequence[str] | str | None) -> list[str]:
    """Canonical parameter names; a comma-separated string is accepted; None = the whole table."""
    if names is None:
        return list(PARAMETERS)
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    out = []
    for n in names:
        key = canonical_name(n)
        if key is None:
            raise OrbitmlInputError(f"unknown summary parameter {n!r}; known: {', '.join(PARAMETERS)}")
        if key not in out:
            out.append(key)
    return out


def compute_parameters(
    X: np.ndarray,
    wavelengths: Sequence[float],
    names: Sequence[str] | str | None = None,
    *,
    tolerance_nm: float = DEFAULT_TOLERANCE_NM,
    strict: bool | None = None,
    warn: bool = True,
) -> ParamResult:
    """Summary parameters of spectra ``X`` ``(n_pixels, n_bands)`` with band centres ``wavelengths`` (nm).

    ``names``: parameter names (case-insensitive) or None for the whole table.  A parameter the
    data's wavelengths do not cover raises :class:`OrbitmlInputError` when ``strict`` (default:
    True when ``names`` was given), else it is NaN and listed in ``result.missing`` (and warned).
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    todo = resolve_names(names)
    strict = names is not None if strict is None else strict
    s = BandSampler(X, wavelengths, tolerance_nm)
    out = np.full((X.shape[0], len(todo)), np.nan)
    used: dict[str, list] = {}
    missing: dict[str, str] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, name in enumerate(todo):
            s.reset_used()
            try:
                out[:, j] = evaluate(PARAMETERS[name], s)
            except MissingCoverage as exc:
                wl = exc.args[0]
                missing[name] = (f"needs {wl:.0f} nm; the data cover {s.wl.min():.0f}-{s.wl.max():.0f} nm "
                                 f"with no band within {tolerance_nm:g} nm of it")
                if strict:
                    raise OrbitmlInputError(f"cannot compute {name}: {missing[name]}") from None
            used[name] = list(s.used)
    out[~np.isfinite(out)] = np.nan
    if missing and warn:
        warnings.warn(f"summary parameters left NaN for lack of wavelength coverage: {', '.join(missing)}",
                      RuntimeWarning, stacklevel=2)
    return ParamResult(todo, out, used, missing)


def summary_parameters(
    scene,
    names: Sequence[str] | str | None = None,
    *,
    tolerance_nm: float = DEFAULT_TOLERANCE_NM,
    strict: bool | None = None,
    rows_per_block: int | None = None,
    progress=None,
):
    """A scene ``(parameter, y, x)`` of summary parameters of a reflectance scene (I/F or ratioed).

    Band names are the parameter names; CRS, transform and attrs are kept; nodata is NaN, and a
    pixel whose bands are all invalid gets NaN for every parameter.  ``attrs['parameter_bands']``
    holds the table of bands read (JSON text).  ``progress`` is an optional callable
    ``(rows_done, rows_total)`` called after each row block.
    """
    import json

    from orbitml.scene import check_scene, make_scene, wavelengths

    scene = check_scene(scene)
    wl = wavelengths(scene)
    if wl is None:
        raise OrbitmlInputError("the scene has no wavelength coordinate; pass a wavelength table")
    todo = resolve_names(names)
    nb, h, w = (scene.sizes[d] for d in ("band", "y", "x"))
    nodata = scene.rio.nodata
    if rows_per_block is None:
        rows_per_block = max(1, int(2_000_000 // max(1, nb * w)))
    out = np.full((len(todo), h, w), np.nan, dtype=np.float32)
    first: ParamResult | None = None
    missing: dict[str, str] = {}
    for y0 in range(0, h, rows_per_block):
        y1 = min(h, y0 + rows_per_block)
        block = np.asarray(scene.isel(y=slice(y0, y1)).values, dtype=np.float64)
        bad = ~np.isfinite(block)
        if nodata is not None and np.isfinite(nodata):
            bad |= block == nodata
        block[bad] = np.nan
        Xb = block.reshape(nb, -1).T
        keep = ~np.isnan(Xb).all(axis=1)
        res = compute_parameters(Xb[keep], wl, todo, tolerance_nm=tolerance_nm,
                                 strict=(names is not None) if strict is None else strict, warn=False)
        vals = np.full((Xb.shape[0], len(todo)), np.nan)
        vals[keep] = res.values
        out[:, y0:y1, :] = vals.T.reshape(len(todo), y1 - y0, w)
        missing.update(res.missing)
        if first is None:
            first = res
        if progress is not None:
            progress(y1, h)
    if missing:
        warnings.warn(f"summary parameters left NaN for lack of wavelength coverage: {', '.join(missing)}",
                      RuntimeWarning, stacklevel=2)
    attrs = {k: v for k, v in scene.attrs.items() if k not in ("_FillValue", "scale_factor", "add_offset")}
    attrs["units"] = "summary parameter"
    attrs["parameter_bands"] = json.dumps(first.band_table() if first else [])
    attrs["parameters_missing"] = json.dumps(missing)
    return make_scene(out, band_names=todo, crs=scene.rio.crs, transform=scene.rio.transform(),
                      nodata=np.nan, attrs=attrs)
