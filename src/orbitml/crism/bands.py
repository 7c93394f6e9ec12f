"""CRISM L-detector band sets, chosen by wavelength from each product's own table.

crism_ml works on 350 L-detector channels: 248 "main" bands from 1.021 to 2.648 um (used for
classification) and 102 bands from 2.807 to 3.477 um.  Products differ in band count and order
(TRR3: 438 bands in decreasing wavelength; MTRDR: 489 joined VNIR+IR bands), so nothing here is a
hard-coded index into a product: :func:`match_bands` finds, for each wanted wavelength, the
nearest band of the product within a tolerance.

The MATLAB training files carry no wavelength table; :func:`nominal_wavelengths` gives the
nominal centres of their 350 channels (a smooth fit of the CRISM L-detector grid: 1021.0 nm,
6.55 nm spacing growing to 6.61 nm; 2806.97 to 3476.92 nm for the long bands; within ~1 nm of
the instrument table).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from orbitml.errors import OrbitmlInputError

N_MAIN = 248
N_ALL = 350
MAIN_RANGE_NM = (1021.0, 2648.34)
LONG_RANGE_NM = (2806.97, 3476.92)
# bland-model bands (crism_ml): 1.047-1.638, 1.737-1.968, 2.067-2.648 um
BLAND_RANGES_NM = ((1045.0, 1640.0), (1735.0, 1970.0), (2064.0, 2650.0))
# ensemble band subsets, exactly crism_ml's (train.feat_masks) as (start, stop, step) ranges on the
# 248 main channels: four interleaved every-4th-band subsets of 55/54/54/54 bands over the main
# bands outside the 1.64-1.73 and 1.96-2.06 um gaps (the step restarts after each gap, as in
# crism_ml), then eleven 31-band windows spanning 1.31-2.63 um, in crism_ml's order
SUBSET_CHANNELS = (
    ((3, 92, 4), (109, 142, 4), (159, 248, 4)),
    ((4, 93, 4), (110, 143, 4), (160, 245, 4)),
    ((5, 94, 4), (111, 144, 4), (161, 246, 4)),
    ((6, 95, 4), (112, 145, 4), (162, 247, 4)),
    *(((a, a + 31, 1),) for a in (44, 104, 114, 154, 164, 174, 184, 194, 204, 214, 59)),
)
# the wavelength ranges the interleaved subsets cover (documentation; selection is by channel)
SUBSET_RANGES_NM = ((1040.0, 1640.0), (1734.0, 1969.0), (2064.0, 2650.0))
# ensemble: start wavelengths (nm) of the eleven 31-band windows spanning 1.31-2.63 um
WINDOW_STARTS_NM = (1309.5, 1704.0, 1770.0, 2033.6, 2099.7, 2165.7, 2231.8, 2298.0, 2364.1, 2430.3, 1408.0)
WINDOW_LEN = 31


def nominal_wavelengths(n: int = N_ALL) -> np.ndarray:
    """Nominal centres (nm) of crism_ml's 350 channels (first ``n``: 248 = main bands only)."""
    i = np.arange(N_MAIN, dtype=float)
    c = (MAIN_RANGE_NM[1] - MAIN_RANGE_NM[0] - 6.55 * (N_MAIN - 1)) / (N_MAIN - 1) ** 2
    main = MAIN_RANGE_NM[0] + 6.55 * i + c * i**2
    long = np.linspace(LONG_RANGE_NM[0], LONG_RANGE_NM[1], N_ALL - N_MAIN)
    wl = np.concatenate([main, long])
    if n not in (N_MAIN, N_ALL):
        raise ValueError(f"n must be {N_MAIN} or {N_ALL}")
    return wl[:n]


def in_ranges(wl: np.ndarray, ranges: Sequence[tuple[float, float]]) -> np.ndarray:
    """Boolean mask of wavelengths inside any closed (lo, hi) range."""
    wl = np.asarray(wl, dtype=float)
    keep = np.zeros(wl.shape, dtype=bool)
    for lo, hi in ranges:
        keep |= (wl >= lo) & (wl <= hi)
    return keep


def match_bands(product_wl: np.ndarray, wanted_nm: np.ndarray, tol_nm: float = 4.0,
                source: str | None = None, max_fill: int = 4) -> tuple[np.ndarray, int]:
    """Indices into ``product_wl`` of the band nearest to each wanted wavelength, and a fill count.

    Works for any band order.  Up to ``max_fill`` wanted bands at either end of the wanted range
    that the product lacks (an MTRDR has no L band below 1047 nm: the joined product uses VNIR
    there) take the nearest band that *is* matched; the count is returned so callers can record
    it.  Anything else missing raises :class:`OrbitmlInputError` naming the wavelengths.
    """
    pw = np.asarray(product_wl, dtype=float)
    want = np.asarray(wanted_nm, dtype=float)
    if pw.ndim != 1 or pw.size == 0 or not np.isfinite(pw).all():
        raise OrbitmlInputError("the product has no usable wavelength table", source)
    order = np.argsort(pw)
    sw = pw[order]
    pos = np.searchsorted(sw, want)
    lo = np.clip(pos - 1, 0, sw.size - 1)
    hi = np.clip(pos, 0, sw.size - 1)
    near = np.where(np.abs(want - sw[lo]) <= np.abs(sw[hi] - want), lo, hi)
    bad = np.abs(sw[near] - want) > tol_nm
    idx = order[near]
    n_fill = int(bad.sum())
    if n_fill:
        ok = np.flatnonzero(~bad)
        bad_i = np.flatnonzero(bad)
        at_ends = ok.size > 0 and (np.all(bad_i < ok[0]) or np.all(bad_i > ok[-1]) or np.all(
            (bad_i < ok[0]) | (bad_i > ok[-1])))
        if n_fill > max_fill or not at_ends:
            miss = want[bad]
            raise OrbitmlInputError(
                f"{n_fill} of {want.size} needed bands have no product band within {tol_nm} nm "
                f"(e.g. {miss[0]:.1f} nm; product covers {sw[0]:.1f}-{sw[-1]:.1f} nm)", source)
        nearest_ok = ok[np.argmin(np.abs(bad_i[:, None] - ok[None, :]), axis=1)]
        idx[bad_i] = idx[nearest_ok]
    if np.unique(idx[~bad]).size != int((~bad).sum()):
        raise OrbitmlInputError("the product's wavelength table is coarser than the CRISM L grid", source)
    return idx, n_fill


def main_band_mask(wl: np.ndarray, tol_nm: float = 1.0) -> np.ndarray:
    """Bands of a wavelength table that lie in the 248-band main range."""
    return in_ranges(wl, [(MAIN_RANGE_NM[0] - tol_nm, MAIN_RANGE_NM[1] + tol_nm)])


def l_band_mask(wl: np.ndarray, tol_nm: float = 1.0) -> np.ndarray:
    """Bands in the 350-band set (main + 2.807-3.477 um)."""
    return in_ranges(wl, [(MAIN_RANGE_NM[0] - tol_nm, MAIN_RANGE_NM[1] + tol_nm),
                          (LONG_RANGE_NM[0] - tol_nm, LONG_RANGE_NM[1] + tol_nm)])


def ensemble_subsets(main_wl: np.ndarray) -> list[np.ndarray]:
    """The 15 band subsets of the classifier ensemble as index arrays into ``main_wl``.

    crism_ml's subsets (:data:`SUBSET_CHANNELS`, on its 248 main channels) carried over by
    wavelength: each channel's nominal centre is matched to the nearest band of ``main_wl``
    (on crism_ml's own 248-band grid the indices are crism_ml's, band for band).  A table with
    other spacing keeps crism_ml's wavelengths; duplicates are dropped.
    """
    wl = np.asarray(main_wl, dtype=float)
    nominal = nominal_wavelengths(N_MAIN)
    if wl.size == N_MAIN and np.abs(wl - nominal).max() <= 2.0:
        to_idx = np.arange(N_MAIN)
    else:
        to_idx = np.abs(wl[None, :] - nominal[:, None]).argmin(axis=1)
    subsets = []
    for ranges in SUBSET_CHANNELS:
        ch = np.concatenate([np.arange(*r) for r in ranges])
        idx = to_idx[ch]
        _, first = np.unique(idx, return_index=True)
        subsets.append(idx[np.sort(first)])
    return subsets


def bland_subset(main_wl: np.ndarray) -> np.ndarray:
    """Indices of the bland-model bands in a (main-band) wavelength table."""
    return np.flatnonzero(in_ranges(main_wl, BLAND_RANGES_NM))
