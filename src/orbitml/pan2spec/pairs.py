"""Co-registered CTX / CRISM training pairs (``orbitml pan2spec build``).

Steps: check both products are map-projected in a Mars CRS and overlap; choose the CRISM bands by
wavelength (the product's own table or a user table); reproject them onto the CTX grid in the CTX
CRS (rasterio warp, bilinear); refine the alignment (:mod:`orbitml.pan2spec.align`); cut to the
CRISM footprint; clip each channel at its 0.01% / 99.99% percentiles; optionally resample a DEM
onto the grid.  A pair is one folder, written atomically::

    <name>/ctx.tif      CTX (float32, NaN nodata, CTX CRS and the cut transform)
    <name>/crism.tif    chosen CRISM bands on the same grid (wavelength tags)
    <name>/valid.tif    uint8 mask: 1 where CTX and every CRISM band are valid
    <name>/dem.tif      optional DEM channel on the same grid
    <name>/stats.json   per-channel statistics, band choice, sources, quality (shifts and residual)
    <name>/quality.png  the local shift vectors
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.pan2spec.align import ShiftField, alignment_images, apply_shift_field, register

__all__ = ["PRESETS", "Pair", "select_bands", "parse_bands", "body_of", "build_pair", "load_pair", "channel_stats"]

PRESETS = {"evc": (592.0, 533.0, 442.0), "fc": (2503.0, 1500.0, 1080.0)}
CLIP_PERCENT = 0.01


@dataclass
class Pair:
    folder: Path
    stats: dict[str, Any]

    @property
    def ctx(self) -> Path:
        return self.folder / "ctx.tif"

    @property
    def crism(self) -> Path:
        return self.folder / "crism.tif"

    @property
    def valid(self) -> Path:
        return self.folder / "valid.tif"

    @property
    def dem(self) -> Path | None:
        p = self.folder / "dem.tif"
        return p if p.exists() else None

    @property
    def wavelengths(self) -> list[float]:
        return [float(v) for v in self.stats["wavelengths_nm"]]

    @property
    def simulated(self) -> bool:
        return bool(self.stats.get("simulated"))


def parse_bands(spec: str | None) -> tuple[float, ...]:
    """``"evc"``, ``"fc"`` or comma-separated wavelengths in nm."""
    spec = (spec or "evc").strip().lower()
    if spec in PRESETS:
        return PRESETS[spec]
    try:
        vals = tuple(float(v) for v in spec.split(",") if v.strip())
    except ValueError:
        raise OrbitmlInputError(f"--bands must be evc, fc or wavelengths in nm like 592,533,442; got {spec!r}") \
            from None
    if not vals:
        raise OrbitmlInputError("--bands names no wavelength")
    return vals


def select_bands(available: np.ndarray, wanted: tuple[float, ...], tol_nm: float = 25.0,
                 path: Any = None) -> list[int]:
    """Indices of the bands nearest to each wanted wavelength; a clear error when one is farther than ``tol_nm``."""
    available = np.asarray(available, float)
    idx = []
    for w in wanted:
        i = int(np.argmin(np.abs(available - w)))
        if abs(available[i] - w) > tol_nm:
            raise OrbitmlInputError(f"no band within {tol_nm:g} nm of {w:g} nm (nearest {available[i]:.1f} nm; "
                                    f"the product covers {available.min():.0f}-{available.max():.0f} nm)", path)
        idx.append(i)
    return idx


def body_of(crs: Any) -> str:
    """The body a CRS refers to, from its ellipsoid radius: Mars, Earth, Moon or 'unknown (R km)'."""
    from pyproj import CRS

    c = CRS.from_wkt(crs.to_wkt()) if hasattr(crs, "to_wkt") else CRS.from_user_input(crs)
    r = c.ellipsoid.semi_major_metre if c.ellipsoid is not None else float("nan")
    if 3.37e6 < r < 3.41e6:
        return "Mars"
    if 6.35e6 < r < 6.39e6:
        return "Earth"
    if 1.73e6 < r < 1.745e6:
        return "Moon"
    return f"unknown ({r / 1000:.0f} km)"


def _check_mapped(scene, path: Path, what: str) -> None:
    if scene.rio.crs is None or scene.rio.transform().is_identity:
        raise OrbitmlInputError(f"{what} has no map projection (camera geometry only); map-project it first "
                                "(ISIS cam2map or a GeoTIFF with a Mars CRS)", path)
    body = body_of(scene.rio.crs)
    if body != "Mars":
        raise OrbitmlInputError(f"{what} CRS is for {body}, not Mars ({scene.rio.crs.to_string()[:60]}...); "
                                "a Mars product must keep a Mars CRS", path)


def _simulated(scene) -> bool:
    return "simulated" in str(scene.attrs.get("instrument", "")).lower()


def channel_stats(data: np.ndarray, valid: np.ndarray) -> list[dict[str, float]]:
    out = []
    for b in data:
        v = b[valid].astype(np.float64)
        out.append({"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max())})
    return out


def _clip(data: np.ndarray, valid: np.ndarray) -> list[list[float]]:
    limits = []
    for b in data:
        lo, hi = np.percentile(b[valid], [CLIP_PERCENT, 100 - CLIP_PERCENT])
        np.clip(b, lo, hi, out=b)
        limits.append([float(lo), float(hi)])
    return limits


def _reproject(src: np.ndarray, src_tf, src_crs, dst_shape, dst_tf, dst_crs, path) -> np.ndarray:
    from rasterio.errors import CRSError
    from rasterio.warp import Resampling, reproject

    dst = np.full((src.shape[0], *dst_shape), np.nan, dtype=np.float32)
    try:
        reproject(source=src.astype(np.float32), destination=dst, src_transform=src_tf, src_crs=src_crs,
                  dst_transform=dst_tf, dst_crs=dst_crs, resampling=Resampling.bilinear, src_nodata=np.nan,
                  dst_nodata=np.nan)
    except (CRSError, ValueError, RuntimeError) as exc:
        raise OrbitmlInputError(f"cannot reproject onto the CTX grid: {exc}", path) from None
    return dst


def _read_masked(scene, idx: list[int] | None = None) -> np.ndarray:
    data = scene.isel(band=idx) if idx is not None else scene
    arr = np.asarray(data.values, dtype=np.float32)
    nod = scene.rio.nodata
    if nod is not None and np.isfinite(nod):
        arr[arr == np.float32(nod)] = np.nan
    if "isis" in str(scene.attrs.get("format", "")).lower():
        arr[arr <= -3.0e38] = np.nan
    return arr


def _quality_png(path: Path, sfield: ShiftField, residual: ShiftField) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for rec in sfield.windows:
        if "dy" in rec:
            r, c = np.mean(rec["rows"]), np.mean(rec["cols"])
            ax.quiver(c, r, rec["dx"], -rec["dy"], color="C0" if rec["used"] else "C3", angles="xy",
                      scale_units="xy", scale=0.05)
    ax.set_xlim(0, sfield.shape[1])
    ax.set_ylim(sfield.shape[0], 0)
    ax.set_title("local shifts after the global one (x20; red = rejected)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def build_pair(ctx_path: str | os.PathLike, crism_path: str | os.PathLike, out_dir: str | os.PathLike, *,
               name: str | None = None, bands: tuple[float, ...] = PRESETS["evc"],
               wavelengths: str | os.PathLike | None = None, dem_path: str | os.PathLike | None = None,
               align: bool = True, n_windows: int = 3, min_valid_pixels: int = 1024,
               overwrite: bool = False) -> Pair:
    """Build one pair folder ``out_dir/name`` (see module docstring); returns the :class:`Pair`."""
    from rasterio.errors import CRSError
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds
    from rasterio.windows import transform as win_transform

    from orbitml.io import open_scene, write_scene
    from orbitml.io.atomic import atomic_path, check_writable
    from orbitml.scene import make_scene

    ctx_path, crism_path = Path(ctx_path), Path(crism_path)
    name = name or f"{ctx_path.stem}__{crism_path.stem}"
    target = Path(out_dir) / name
    check_writable(target, overwrite)
    ctx = open_scene(ctx_path, chunks="auto")
    if ctx.shape[0] != 1:
        raise OrbitmlInputError(f"CTX input must have one band, found {ctx.shape[0]}", ctx_path)
    _check_mapped(ctx, ctx_path, "CTX image")
    crism = open_scene(crism_path, chunks="auto", wavelengths=wavelengths)
    if "wavelength" not in crism.coords:
        raise OrbitmlInputError("CRISM product carries no wavelength table; pass --wavelengths TABLE.csv "
                                "(one band centre in nm per band)", crism_path)
    _check_mapped(crism, crism_path, "CRISM product")
    idx = select_bands(crism.coords["wavelength"].values, tuple(bands), path=crism_path)
    ctx_crs, ctx_tf = ctx.rio.crs, ctx.rio.transform()
    try:
        cb = transform_bounds(crism.rio.crs, ctx_crs, *crism.rio.bounds(), densify_pts=21)
    except (CRSError, ValueError, RuntimeError) as exc:
        raise OrbitmlInputError(f"cannot express the CRISM footprint in the CTX CRS: {exc}", crism_path) from None
    h, w = ctx.shape[1:]
    win = from_bounds(*cb, transform=ctx_tf).round_offsets(op="floor").round_lengths(op="ceil")
    win = win.intersection(Window(0, 0, w, h)) if _overlaps(win, w, h) else None
    if win is None or win.width < 8 or win.height < 8:
        raise OrbitmlInputError(f"CTX {ctx_path.name} and CRISM {crism_path.name} do not overlap "
                                f"(CRISM footprint in the CTX CRS: {tuple(round(v) for v in cb)})", crism_path)
    r0, c0, hh, ww = int(win.row_off), int(win.col_off), int(win.height), int(win.width)
    tf = win_transform(win, ctx_tf)
    ctx_img = _read_masked(ctx[:, r0: r0 + hh, c0: c0 + ww])[0]
    src = _read_masked(crism, idx)
    src_valid = np.isfinite(src).all(axis=0)
    src[:, ~src_valid] = np.nan
    bands_g = _reproject(src, crism.rio.transform(), crism.rio.crs, (hh, ww), tf, ctx_crs, crism_path)
    vfrac = _reproject(src_valid[None].astype(np.float32), crism.rio.transform(), crism.rio.crs, (hh, ww), tf,
                       ctx_crs, crism_path)[0]
    cvalid = np.nan_to_num(vfrac) > 0.999
    cvalid &= np.isfinite(bands_g).all(axis=0)
    ctx_ok = np.isfinite(ctx_img)
    crism_res = abs(crism.rio.transform().a) * _metres_ratio(crism.rio.crs, ctx_crs)
    factor = crism_res / abs(ctx_tf.a)
    quality: dict[str, Any] = {"aligned": bool(align)}
    if align and (cvalid & ctx_ok).sum() >= 64:
        ref, mov = alignment_images(np.where(ctx_ok, ctx_img, np.nanmean(ctx_img)), bands_g, factor)
        both = cvalid & ctx_ok
        sfield = register(ref, mov, both, n_windows=n_windows)
        bands_g, cvalid = apply_shift_field(bands_g, cvalid, sfield)
        ref2, mov2 = alignment_images(np.where(ctx_ok, ctx_img, np.nanmean(ctx_img)), bands_g, factor)
        resid = register(ref2, mov2, cvalid & ctx_ok, n_windows=n_windows)
        rs = resid.grid()
        quality.update(
            global_shift_px=[float(v) for v in sfield.coef[:, 0]],
            shift_field_coef=sfield.coef.tolist(),
            shift_field_grid={"row": r0, "col": c0, "shape": [hh, ww]},
            windows=sfield.windows,
            n_windows_used=int(sum(1 for r in sfield.windows if r.get("used"))),
            residual_shift_px=float(np.hypot(*[np.median(np.abs(c[cvalid & ctx_ok])) for c in rs]))
            if (cvalid & ctx_ok).any() else float("nan"),
            residual_global_px=[float(v) for v in resid.coef[:, 0]])
    valid = cvalid & ctx_ok
    if valid.sum() < min_valid_pixels:
        raise OrbitmlInputError(f"pair has only {int(valid.sum())} valid pixels where CTX and CRISM overlap "
                                f"(at least {min_valid_pixels} needed)", crism_path)
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    a0, a1, b0, b1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    ctx_img, bands_g, valid, cvalid = (ctx_img[a0:a1, b0:b1], bands_g[:, a0:a1, b0:b1], valid[a0:a1, b0:b1],
                                       cvalid[a0:a1, b0:b1])
    tf = tf * tf.translation(b0, a0)
    ctx_clip = _clip(ctx_img[None], valid)
    crism_clip = _clip(bands_g, valid)
    bands_g[:, ~cvalid] = np.nan
    dem_arr = None
    if dem_path is not None:
        dem = open_scene(dem_path, chunks="auto")
        _check_mapped(dem, Path(dem_path), "DEM")
        dem_arr = _reproject(_read_masked(dem[:1]), dem.rio.transform(), dem.rio.crs, valid.shape, tf, ctx_crs,
                             dem_path)
        if not np.isfinite(dem_arr[0][valid]).any():
            raise OrbitmlInputError("DEM does not cover the pair's footprint", dem_path)
    wl_sel = [float(crism.coords["wavelength"].values[i]) for i in idx]
    simulated = _simulated(ctx) or _simulated(crism)
    stats = {
        "name": name, "ctx_source": str(ctx_path), "crism_source": str(crism_path),
        "dem_source": None if dem_path is None else str(dem_path),
        "wavelengths_nm": wl_sel, "requested_nm": [float(b) for b in bands],
        "crism_band_indices": [int(i) + 1 for i in idx],
        "shape": list(valid.shape), "ctx_window": {"row": r0 + a0, "col": c0 + b0},
        "valid_fraction": float(valid.mean()), "n_valid": int(valid.sum()),
        "clip_percent": CLIP_PERCENT, "ctx_clip": ctx_clip, "crism_clip": crism_clip,
        "ctx": channel_stats(ctx_img[None], valid), "crism": channel_stats(bands_g, valid),
        "dem": channel_stats(dem_arr, valid & np.isfinite(dem_arr[0])) if dem_arr is not None else None,
        "crism_pixel_in_ctx_px": float(factor), "quality": quality, "simulated": simulated,
        "crs_wkt": ctx_crs.to_wkt(),
    }
    attrs = {"source": str(ctx_path)}
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.mkdir()
        try:
            write_scene(make_scene(ctx_img[None], crs=ctx_crs, transform=tf, nodata=np.nan,
                                   attrs={**attrs, "instrument": ctx.attrs.get("instrument", "CTX"),
                                          "units": ctx.attrs.get("units", "I/F")}), tmp / "ctx.tif")
            write_scene(make_scene(bands_g, wavelength=wl_sel, crs=ctx_crs, transform=tf, nodata=np.nan,
                                   attrs={"source": str(crism_path),
                                          "instrument": crism.attrs.get("instrument", "CRISM"),
                                          "units": crism.attrs.get("units", "I/F")}), tmp / "crism.tif")
            write_scene(make_scene(valid[None].astype(np.uint8), crs=ctx_crs, transform=tf), tmp / "valid.tif")
            if dem_arr is not None:
                write_scene(make_scene(dem_arr, crs=ctx_crs, transform=tf, nodata=np.nan,
                                       attrs={"source": str(dem_path), "units": "m"}), tmp / "dem.tif")
            (tmp / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
            if quality.get("windows"):
                _quality_png(tmp / "quality.png", sfield, resid)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Pair(target, stats)


def _overlaps(win, w: int, h: int) -> bool:
    return win.col_off < w and win.row_off < h and win.col_off + win.width > 0 and win.row_off + win.height > 0


def _metres_ratio(src_crs, dst_crs) -> float:
    """Size of one source CRS unit in destination CRS units (1 for two metre-based projections)."""
    try:
        a = src_crs.linear_units_factor[1]
        b = dst_crs.linear_units_factor[1]
        return float(a) / float(b)
    except Exception:  # noqa: BLE001 - a geographic CRS: degrees, leave it to the warp
        return 1.0


def load_pair(folder: str | os.PathLike) -> Pair:
    """A pair folder written by :func:`build_pair`; a clear error when files are missing."""
    folder = Path(folder)
    for f in ("ctx.tif", "crism.tif", "valid.tif", "stats.json"):
        if not (folder / f).exists():
            raise OrbitmlInputError(f"not a pan2spec pair folder: {f} is missing (make pairs with "
                                    "'orbitml pan2spec build')", folder)
    try:
        stats = json.loads((folder / "stats.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise OrbitmlInputError(f"stats.json is not valid JSON: {exc}", folder / "stats.json") from None
    return Pair(folder, stats)
