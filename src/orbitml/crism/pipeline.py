"""The CRISM image pipeline: bad values -> column spikes -> blandness -> column ratioing ->
despiking -> ensemble classification -> thresholds and merging -> regions.

Works on a ``(rows, cols, bands)`` float array plus its wavelength table; :func:`classify_scene`
adapts a scene of the orbitml data model.  Bands are matched by wavelength, so TRR3 (438 bands,
decreasing wavelength) and MTRDR (489 joined bands) both work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from orbitml.crism import bands as cb
from orbitml.crism import classes as cc
from orbitml.crism._pool import parallel_map
from orbitml.crism.postprocess import Region, find_regions
from orbitml.crism.preprocess import despike, mask_bad_values, remove_column_spikes
from orbitml.crism.ratio import SCENE_RATIO_NOTE, column_ratio, scene_ratio
from orbitml.errors import OrbitmlInputError

CLASS_NODATA = -1


@dataclass
class CrismResult:
    class_map: np.ndarray  # (rows, cols) int16: class code, 0 unclassified, -1 no data
    confidence: np.ndarray  # (rows, cols) float32, NaN = no data
    ratioed: np.ndarray  # (rows, cols, bands) float32 ratioed + despiked, NaN = no data
    unratioed: np.ndarray  # (rows, cols, bands) float32 after bad values and column spikes
    blandness: np.ndarray  # (rows, cols) float32
    wavelengths: np.ndarray  # (bands,) nm of ratioed/unratioed
    regions: list[Region]
    region_map: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ratio_method: str = "column"

    @property
    def unknown_fraction(self) -> float:
        """Fraction of classified (valid) pixels rejected as outside the training data."""
        valid = self.class_map >= 0
        return float((self.class_map[valid] == cc.UNKNOWN).mean()) if valid.any() else 0.0


@dataclass
class RatioResult:
    unratioed: np.ndarray  # (rows, cols, bands) float32 after bad values and column spikes
    ratioed: np.ndarray  # (rows, cols, bands) float32 ratioed and despiked, NaN = no data
    blandness: np.ndarray  # (rows, cols) float32 log-likelihood, -inf = not usable
    bad: np.ndarray  # (rows, cols) bool: a bad value among the main bands
    valid: np.ndarray  # (rows, cols) bool: ratioed spectrum finite in every band
    column_flags: np.ndarray  # (cols, bands) bool: bands replaced by column-spike removal
    ratio_method: str = "column"  # "column" (crism_ml) or "scene" (scene-level bland-pixel ratio)
    timings: dict[str, float] = field(default_factory=dict)


RATIO_METHODS = ("column", "scene")


def map_projected(scene) -> bool:
    """Whether a scene is in map geometry (it has a CRS): its columns are not detector columns."""
    return scene.rio.crs is not None


def check_ratio_method(scene, method: str, source=None) -> None:
    """Refuse column ratioing on a map-projected product, with the way out."""
    if method not in RATIO_METHODS:
        raise OrbitmlInputError(f"ratio method must be one of {RATIO_METHODS}, got {method!r}", source)
    if method == "column" and map_projected(scene):
        raise OrbitmlInputError(
            "this product is map-projected (it has a map CRS, e.g. an MTRDR): its columns are not detector "
            "columns, so column ratioing would divide pixels by unrelated ones. Use --ratio scene for a "
            "scene-level bland-pixel ratio (marked as such in the outputs), or classify the TRR3 I/F product "
            "in detector geometry", source)


def ratio_cube(X: np.ndarray, wavelengths: np.ndarray, main: np.ndarray, bland, settings,
               source: str | None = None, progress: Callable[[str], None] | None = None,
               threads: int | None = None, method: str = "column") -> RatioResult:
    """Bad values -> column spikes -> blandness -> column ratioing -> despiking.

    ``X`` is a ``(rows, cols, bands)`` cube with its wavelength table (nm); ``main`` flags the
    bands used for statistics and bad-pixel flags (the 248 main bands); column-spike removal and
    despiking statistics run on them only (as crism_ml does), so no running median reaches
    across the 2.65-2.8 um gap.  A float32 C-ordered ``X`` is modified in place (anything else is
    copied once).  The bland model's bands are matched by wavelength among the
    main bands.
    """
    say = progress or (lambda m: None)
    s = settings
    t: dict[str, float] = {}
    main = np.asarray(main, dtype=bool)
    wl = np.asarray(wavelengths, dtype=float)
    h, w, nb = X.shape
    main_idx = np.flatnonzero(main)
    bidx, _ = cb.match_bands(wl[main_idx], bland.wavelengths_, tol_nm=4.0, source=source)
    bidx = main_idx[bidx]
    t0 = time.perf_counter()
    X, bad = mask_bad_values(X, main=main, copy=False, threads=threads)
    t["bad_values"] = time.perf_counter() - t0
    say("column spike removal")
    t0 = time.perf_counter()
    X, col_flags = remove_column_spikes(X, s.column_spike_size, s.column_spike_sigma, stat_bands=main, valid=~bad,
                                copy=False, threads=threads)
    t["column_spikes"] = time.perf_counter() - t0
    say("blandness")
    t0 = time.perf_counter()
    flat = X.reshape(-1, nb)
    score = np.full(h * w, -np.inf, dtype=np.float32)
    good = np.flatnonzero(~bad.ravel())
    if good.size == h * w:
        score[:] = bland.score_pixels(flat, bidx, dtype=s.compute_dtype, threads=threads)
    elif good.size:
        score[good] = bland.score_pixels(flat, bidx, good, dtype=s.compute_dtype, threads=threads)
    blandness = score.reshape(h, w)
    t["blandness"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if method == "scene":
        say("scene-level bland-pixel ratioing")
        ratioed, _ = scene_ratio(X, blandness)
    elif method == "column":
        say("column ratioing")
        ratioed, _ = column_ratio(X, blandness, half=s.ratio_half_window, n_bland=s.ratio_n_bland,
                                  threads=threads)
    else:
        raise OrbitmlInputError(f"ratio method must be one of {RATIO_METHODS}, got {method!r}", source)
    t["ratio"] = time.perf_counter() - t0
    say("despiking")
    t0 = time.perf_counter()
    valid = np.isfinite(ratioed).all(axis=2)
    R = ratioed.reshape(-1, nb)
    vflat = valid.ravel()
    if vflat.any():
        despike(R, s.despike_passes, stat_bands=main, copy=False, threads=threads,
                rows=None if vflat.all() else vflat, protect=s.despike_protect)
    t["despike"] = time.perf_counter() - t0
    return RatioResult(unratioed=X, ratioed=ratioed, blandness=blandness, bad=bad, valid=valid,
                       column_flags=col_flags, ratio_method=method, timings=t)


def work_bands(product_wl: np.ndarray, model_wl: np.ndarray, source: str | None = None):
    """Product band indices for the model's main bands plus any 2.807-3.477 um bands present."""
    idx, n_fill = cb.match_bands(product_wl, model_wl, source=source)
    pw = np.asarray(product_wl, dtype=float)
    long_idx = np.flatnonzero(cb.in_ranges(pw, [(cb.LONG_RANGE_NM[0] - 1, cb.LONG_RANGE_NM[1] + 1)]))
    long_idx = long_idx[np.argsort(pw[long_idx])]
    return np.concatenate([idx, long_idx]), n_fill


def _check_inputs(cube_shape, clf, bland, source):
    if bland is None:
        raise OrbitmlInputError("the model has no bland-pixel model; train it with --bland or --simulated", source)
    if len(cube_shape) != 3:
        raise OrbitmlInputError(f"expected a (rows, cols, bands) cube, got shape {tuple(cube_shape)}", source)


def _work_wavelengths(product_wl, idx, clf) -> np.ndarray:
    nm = clf.wavelengths_.size
    return np.concatenate([clf.wavelengths_, np.asarray(product_wl, float)[idx[nm:]]])


def classify_cube(cube: np.ndarray, wavelengths: np.ndarray, clf, bland, source: str | None = None,
                  progress: Callable[[str], None] | None = None, threads: int | None = None,
                  overwrite_input: bool = False, ratio: str = "column") -> CrismResult:
    """Run the whole pipeline on an unratioed I/F cube ``(rows, cols, bands)``.

    The work bands (the model's main bands, then any 2.807-3.477 um bands) are gathered into one
    C-ordered float32 copy by ``np.take`` (a fancy index ``cube[:, :, idx]`` is not C-ordered
    and would send the compiled kernels back to numpy).  ``overwrite_input=True`` skips even
    that copy when ``cube`` already is such a cube in work-band order.
    """
    cube = np.asarray(cube)
    _check_inputs(cube.shape, clf, bland, source)
    idx, n_fill = work_bands(wavelengths, clf.wavelengths_, source)
    identity = idx.size == cube.shape[2] and bool((idx == np.arange(idx.size)).all())
    if identity and overwrite_input and cube.dtype == np.float32 and cube.flags.c_contiguous:
        work = cube
    elif identity:
        work = np.array(cube, dtype=np.float32, order="C")
    else:
        work = np.take(cube, idx, axis=2)
        if work.dtype != np.float32:
            work = work.astype(np.float32)
    return classify_work(work, _work_wavelengths(wavelengths, idx, clf), clf, bland, n_fill, source, progress,
                         threads, ratio)


def classify_work(work: np.ndarray, wl: np.ndarray, clf, bland, n_fill: int = 0, source: str | None = None,
                  progress: Callable[[str], None] | None = None, threads: int | None = None,
                  ratio: str = "column") -> CrismResult:
    """The pipeline on a C-ordered float32 cube already in work-band order (modified in place)."""
    say = progress or (lambda m: None)
    s = clf.settings
    _check_inputs(work.shape, clf, bland, source)
    h, w, _ = work.shape
    t = {}
    notes = []
    if n_fill:
        notes.append(f"{n_fill} main bands missing from the product were filled from the nearest matched band")
    nm = clf.wavelengths_.size
    main = np.zeros(wl.size, bool)
    main[:nm] = True
    pre = ratio_cube(work, wl, main, bland, s, source=source, progress=say, threads=threads, method=ratio)
    if ratio == "scene":
        notes.append(SCENE_RATIO_NOTE)
    X, ratioed, blandness, valid = pre.unratioed, pre.ratioed, pre.blandness, pre.valid
    t.update(pre.timings)
    R = ratioed.reshape(-1, wl.size)
    vflat = valid.ravel()
    say("classification")
    t0 = time.perf_counter()
    class_map = np.full(h * w, CLASS_NODATA, dtype=np.int16)
    conf = np.full(h * w, np.nan, dtype=np.float32)
    if vflat.any():
        codes, c = clf.predict(R[:, :nm], threads=threads, rows=np.flatnonzero(vflat))
        if s.merge_inseparable:
            codes = cc.to_merged_codes(codes)
        class_map[vflat] = codes
        conf[vflat] = c
        n_unknown = int((codes == cc.UNKNOWN).sum())
        if clf.ood_threshold_ is None:
            notes.append("this model has no out-of-distribution threshold: nothing is rejected as unknown")
        else:
            notes.append(f"{n_unknown} of {codes.size} classified pixels ({n_unknown / codes.size:.1%}) lie outside "
                         "the training data (best-class log-likelihood below the threshold learned on held-out "
                         "training spectra) and are 'unknown'")
    class_map = class_map.reshape(h, w)
    conf = conf.reshape(h, w)
    t["classify"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    regions, region_map = find_regions(class_map, conf, ratioed, X, s.region_min_pixels, s.region_min_columns,
                                       s.region_dilation)
    t["regions"] = time.perf_counter() - t0
    return CrismResult(class_map=class_map, confidence=conf, ratioed=ratioed, unratioed=X,
                       blandness=blandness, wavelengths=wl, regions=regions,
                       region_map=region_map, timings=t, notes=notes, ratio_method=pre.ratio_method)


def scene_cube(scene, bands: np.ndarray | None = None, threads: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols, bands)`` float32 C-ordered cube (nodata -> NaN) and wavelengths (nm) of a
    scene; ``bands`` (indices) picks and orders the bands in the same single copy.

    The scene is ``(band, y, x)``: one image row at a time, the chosen bands' rows (contiguous
    runs) are transposed into that row of the output, converted to float32 and their invalid
    values (non-finite, or equal to the scene's nodata, tested in the scene's own dtype, as
    :func:`orbitml.scene.to_float` does) set to NaN while the row is in cache.  A whole-cube
    float copy followed by a band gather across the slowest axis cost five times as much.
    """
    from orbitml.scene import _invalid, check_scene, wavelengths

    check_scene(scene)
    wl = wavelengths(scene)
    src = scene.attrs.get("source")
    if wl is None:
        raise OrbitmlInputError("the image has no wavelength table; pass --wavelengths CSV", src)
    data = np.asarray(scene.data)
    nodata = scene.rio.nodata
    bands = np.arange(data.shape[0]) if bands is None else np.asarray(bands, dtype=np.int64)
    _, h, w = data.shape
    out = np.empty((h, w, bands.size), dtype=np.float32)
    floating = np.issubdtype(data.dtype, np.floating)
    check = floating or not (nodata is None or (isinstance(nodata, float) and not np.isfinite(nodata)))

    def rows(r0: int, r1: int) -> None:
        blk = data[bands, r0:r1]  # (bands, rows, cols): contiguous runs of the source
        o = out[r0:r1]
        o[...] = blk.transpose(1, 2, 0)
        if check:
            bad = _invalid(blk, nodata).transpose(1, 2, 0)
            if bad.any():
                o[bad] = np.nan

    from orbitml.crism.preprocess import default_threads

    step = 2
    starts = range(0, h, step)
    nthreads = max(1, min(threads or default_threads(), len(starts)))
    parallel_map(lambda r0: rows(r0, min(r0 + step, h)), starts, nthreads)
    return out, np.asarray(wl, float)[bands]


def classify_scene(scene, clf, bland, progress=None, threads: int | None = None,
                   ratio: str = "column") -> CrismResult:
    """The pipeline on a scene: the work bands are gathered in the one copy that turns the scene
    into a ``(rows, cols, bands)`` cube, which is then processed in place (the path
    ``orbitml crism classify`` runs)."""
    from orbitml.scene import wavelengths

    wl = wavelengths(scene)
    src = scene.attrs.get("source")
    if wl is None:
        raise OrbitmlInputError("the image has no wavelength table; pass --wavelengths CSV", src)
    _check_inputs(scene.shape, clf, bland, src)
    check_ratio_method(scene, ratio, src)
    idx, n_fill = work_bands(wl, clf.wavelengths_, src)
    cube, _ = scene_cube(scene, idx, threads=threads)
    return classify_work(cube, _work_wavelengths(wl, idx, clf), clf, bland, n_fill, src, progress, threads, ratio)
