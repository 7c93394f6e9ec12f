"""Simulated CTX / CRISM pairs for the pan2spec workflow, written as real georeferenced files.

The model, on a CTX pixel grid (default 6 m/px) in a Mars equirectangular CRS:

* **Terrain**: a random DEM (smoothed noise at three scales plus a few bowl-shaped craters), lit
  from a fixed direction (``sun_azimuth``, ``sun_elevation``): Lambertian shading ``S = max(0, n . s)``.
* **Units**: ``n_units`` geological units whose layout follows the terrain (elevation and slope mixed
  with a smooth random field, so morphology carries information about the unit), each with a smooth
  spectrum ``f_u(lambda)`` (visible slope, a 1 um and a 2 um absorption of unit-specific depth); unit
  boundaries are blurred into mixtures and each unit varies a little inside itself.
* **Truth** on the CTX grid: ``R(lambda) = sum_u A_u f_u(lambda) * S``.
* **CTX**: the band-integrated albedo (uniform response over 500-800 nm) times ``S``, plus noise.
* **CRISM**: the truth displaced by a small misregistration field ``d(y, x) = shift + gradient``
  (CTX px; the content at a nominal position shows the ground at ``p + d(p)``), block-averaged to
  ``factor`` times coarser pixels over a footprint inside the CTX image, with per-band noise,
  per-column multiplicative stripes and ragged nodata edges (65535, as in MTRDR products); written
  with its band-centre table (GeoTIFF wavelength tags and a CSV beside it).
* **DEM**: optionally written at ``dem_factor`` times coarser pixels.

Everything is seeded; the same seed gives the same files bit for bit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from scipy import ndimage as ndi

from orbitml.errors import OrbitmlInputError

__all__ = ["MARS_EQC_WKT", "EVC_NM", "FC_NM", "CRISM_SIM_NM", "SimulatedPair", "simulate_pair", "unit_spectrum"]

MARS_EQC_WKT = (
    'PROJCS["Mars Equirectangular",GEOGCS["GCS_Mars",DATUM["D_Mars",SPHEROID["Mars_IAU_2000",3396190,0]],'
    'PRIMEM["Reference_Meridian",0],UNIT["degree",0.0174532925199433]],PROJECTION["Equirectangular"],'
    'PARAMETER["standard_parallel_1",0],PARAMETER["central_meridian",0],PARAMETER["false_easting",0],'
    'PARAMETER["false_northing",0],UNIT["metre",1]]'
)
EVC_NM = (592.0, 533.0, 442.0)  # enhanced visible colour (R, G, B), CRISM browse product
FC_NM = (2503.0, 1500.0, 1080.0)  # false colour (R, G, B)
# CRISM-like band centres (nm) of the simulated product: the EVC and FC bands and a few between
CRISM_SIM_NM = (442.0, 533.0, 592.0, 650.0, 710.0, 770.0, 1080.0, 1300.0, 1500.0, 1900.0, 2300.0, 2503.0)
CTX_RESPONSE_NM = (500.0, 800.0)
NODATA_CRISM = 65535.0


@dataclass
class SimulatedPair:
    ctx_path: Path
    crism_path: Path
    wavelengths_path: Path
    dem_path: Path | None
    truth: np.ndarray  # (n_bands, H, W) true reflectance on the CTX grid
    wavelengths: np.ndarray
    labels: np.ndarray  # (H, W) dominant unit
    shading: np.ndarray
    footprint: tuple[int, int, int, int]  # CTX rows r0:r1, cols c0:c1 covered by the CRISM raster
    shift: tuple[float, float]  # misregistration at the image centre (dy, dx), CTX px
    shift_gradient: tuple[float, float]  # change of (dy, dx) across the image width, CTX px
    meta: dict[str, Any] = field(default_factory=dict)

    def shift_at(self, row: float, col: float) -> tuple[float, float]:
        """The true misregistration ``(dy, dx)`` (CTX px) at a CTX pixel position."""
        h, w = self.truth.shape[1:]
        t = (col - (w - 1) / 2) / w
        return self.shift[0] + self.shift_gradient[0] * t, self.shift[1] + self.shift_gradient[1] * t


def _smooth_noise(rng, shape, sigma) -> np.ndarray:
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _dem(rng, shape, res_m: float) -> np.ndarray:
    h, w = shape
    z = 60 * _smooth_noise(rng, shape, 40) + 20 * _smooth_noise(rng, shape, 10) + 4 * _smooth_noise(rng, shape, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    for _ in range(int(rng.integers(3, 7))):
        cy, cx, rad = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(6, min(h, w) / 6)
        r = np.hypot(yy - cy, xx - cx) / rad
        depth = 0.2 * rad * res_m
        z += np.where(r < 1, -depth * (1 - r**2), 0.15 * depth * np.exp(-((r - 1) / 0.25) ** 2))
    return z


def hillshade(dem: np.ndarray, res_m: float, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Lambertian shading ``max(0, n . s)`` of a DEM (rows run south, columns east); sun ``azimuth``
    clockwise from north."""
    gy, gx = np.gradient(dem, res_m)  # d z / d row (south), d z / d col (east)
    nx, ny, nz = -gx, gy, np.ones_like(dem)  # normal in (east, north, up)
    norm = np.sqrt(nx**2 + ny**2 + nz**2)
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    s = np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])
    return np.clip((nx * s[0] + ny * s[1] + nz * s[2]) / norm, 0.0, None)


def unit_spectrum(params: np.ndarray, wl_nm: np.ndarray) -> np.ndarray:
    """Smooth reflectance spectrum ``f(lambda)`` of a unit from ``(albedo, slope, d1, d2, c2)``."""
    a, slope, d1, d2, c2 = params
    x = (np.asarray(wl_nm, float) - 600.0) / 400.0
    base = a * (1 + slope * np.tanh(2 * x))
    band1 = 1 - d1 * np.exp(-(((wl_nm - 1050.0) / 180.0) ** 2))
    band2 = 1 - d2 * np.exp(-(((wl_nm - c2) / 120.0) ** 2))
    return base * band1 * band2


def _write_tif(path: Path, data: np.ndarray, transform: Affine, crs: Any, nodata: float | None,
               wavelengths=None, attrs: dict | None = None) -> None:
    from orbitml.io import write_scene
    from orbitml.scene import make_scene

    scene = make_scene(data, wavelength=wavelengths, crs=crs, transform=transform, nodata=nodata,
                       attrs=attrs or {})
    write_scene(scene, path, format="gtiff", overwrite=True)


def simulate_pair(out_dir: str | os.PathLike, *, ctx_shape: tuple[int, int] = (256, 256), factor: int = 3,
                  n_units: int = 5, wavelengths: Any = None, seed: int = 0, ctx_res: float = 6.0,
                  shift: tuple[float, float] | None = None, shift_gradient: tuple[float, float] = (0.0, 0.6),
                  noise: float = 0.01, stripes: float = 0.02, margin: float = 0.08,
                  sun_azimuth: float = 270.0, sun_elevation: float = 35.0, dem_factor: int | None = 4,
                  crs: Any = MARS_EQC_WKT, origin: tuple[float, float] = (1_200_000.0, 600_000.0),
                  unit_params: np.ndarray | None = None, albedo_contrast: float = 0.35) -> SimulatedPair:
    """Write ``ctx.tif``, ``crism.tif`` (+ ``crism_wavelengths_nm.csv``) and ``dem.tif`` into ``out_dir``.

    ``shift``: misregistration (dy, dx) at the image centre in CTX px (default: drawn, 1-3 px each
    with random sign); ``shift_gradient``: its change across the image width (a smooth non-linear
    component for the local correction).  ``unit_params``: ``(n_units, 5)`` spectra parameters (see
    :func:`unit_spectrum`); by default drawn from ``seed``, so pairs with the same parameters share units.
    ``albedo_contrast``: the units' CTX albedos are pulled towards their mean by this factor (1 keeps
    them), so that colour differs between units more than brightness does and a pixel's CTX value
    alone does not tell its colour.
    """
    h, w = (int(v) for v in ctx_shape)
    if h < 8 * factor or w < 8 * factor:
        raise OrbitmlInputError(f"ctx_shape {ctx_shape} is too small for factor {factor} (need 8 CRISM px a side)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    wl = np.asarray(CRISM_SIM_NM if wavelengths is None else wavelengths, dtype=float)
    if shift is None:
        shift = tuple(float(rng.uniform(1.0, 3.0) * rng.choice([-1, 1])) for _ in range(2))
    if unit_params is None:
        unit_params = np.column_stack([rng.uniform(0.12, 0.35, n_units), rng.uniform(-0.6, 0.6, n_units),
                                       rng.uniform(0.0, 0.35, n_units), rng.uniform(0.0, 0.3, n_units),
                                       rng.choice([1900.0, 2300.0], n_units)])
    unit_params = np.asarray(unit_params, float)
    n_units = unit_params.shape[0]
    dem = _dem(rng, (h, w), ctx_res)
    shade = hillshade(dem, ctx_res, sun_azimuth, sun_elevation)
    # units follow the terrain: elevation, slope and a smooth random field
    zn = (dem - dem.mean()) / dem.std()
    slope = np.hypot(*np.gradient(dem, ctx_res))
    field_u = 0.8 * zn + 0.6 * (slope - slope.mean()) / (slope.std() + 1e-12) + 0.6 * _smooth_noise(rng, (h, w), 12)
    edges = np.quantile(field_u, np.linspace(0, 1, n_units + 1)[1:-1])
    labels = np.digitize(field_u, edges).astype(np.int16)
    abund = np.stack([ndi.gaussian_filter((labels == u).astype(float), 1.5) for u in range(n_units)])
    abund /= abund.sum(0, keepdims=True)
    spectra = np.stack([unit_spectrum(p, wl) for p in unit_params])  # (U, B)
    fine = np.linspace(*CTX_RESPONSE_NM, 61)
    ctx_albedo_u = np.array([unit_spectrum(p, fine).mean() for p in unit_params])
    target_alb = ctx_albedo_u.mean() + albedo_contrast * (ctx_albedo_u - ctx_albedo_u.mean())
    spectra *= (target_alb / ctx_albedo_u)[:, None]
    ctx_albedo_u = target_alb
    variation = 1 + 0.05 * _smooth_noise(rng, (h, w), 6)
    truth = np.einsum("ub,uyx->byx", spectra, abund) * (variation * shade)[None]
    ctx = (np.einsum("u,uyx->yx", ctx_albedo_u, abund) * variation * shade)
    ctx = ctx + noise * ctx.mean() * rng.standard_normal(ctx.shape)

    # CRISM: displaced truth, block-averaged over a footprint inside the CTX image
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    t = (xx - (w - 1) / 2) / w
    dy, dx = shift[0] + shift_gradient[0] * t, shift[1] + shift_gradient[1] * t
    displaced = np.stack([ndi.map_coordinates(b, [yy + dy, xx + dx], order=1, mode="mirror") for b in truth])
    m_r, m_c = int(round(margin * h)), int(round(margin * w))
    hc, wc = (h - 2 * m_r) // factor, (w - 2 * m_c) // factor
    r0, c0 = m_r, m_c
    block = displaced[:, r0: r0 + hc * factor, c0: c0 + wc * factor]
    crism = block.reshape(len(wl), hc, factor, wc, factor).mean(axis=(2, 4))
    crism *= 1 + stripes * rng.standard_normal((len(wl), 1, wc))
    crism += noise * crism.mean(axis=(1, 2), keepdims=True) * rng.standard_normal(crism.shape)
    left = np.clip(np.cumsum(rng.integers(-1, 2, hc)) % 3 + 1, 1, 3)
    right = np.clip(np.cumsum(rng.integers(-1, 2, hc)) % 3 + 1, 1, 3)
    for i in range(hc):
        crism[:, i, : left[i]] = NODATA_CRISM
        crism[:, i, wc - right[i]:] = NODATA_CRISM
    crism[:, 0, :] = NODATA_CRISM

    x0, y0 = origin
    ctx_tf = Affine(ctx_res, 0, x0, 0, -ctx_res, y0)
    crism_tf = Affine(ctx_res * factor, 0, x0 + c0 * ctx_res, 0, -ctx_res * factor, y0 - r0 * ctx_res)
    _write_tif(out / "ctx.tif", ctx[None].astype(np.float32), ctx_tf, crs, None,
               attrs={"instrument": "CTX (simulated)", "units": "I/F"})
    _write_tif(out / "crism.tif", crism.astype(np.float32), crism_tf, crs, NODATA_CRISM, wavelengths=wl,
               attrs={"instrument": "CRISM (simulated)", "units": "I/F"})
    wl_csv = out / "crism_wavelengths_nm.csv"
    wl_csv.write_text("band,wavelength_nm\n" + "".join(f"{i + 1},{v:g}\n" for i, v in enumerate(wl)))
    dem_path = None
    if dem_factor:
        k = int(dem_factor)
        hd, wd = h // k, w // k
        dem_lo = dem[: hd * k, : wd * k].reshape(hd, k, wd, k).mean(axis=(1, 3))
        dem_path = out / "dem.tif"
        _write_tif(dem_path, dem_lo[None].astype(np.float32), Affine(ctx_res * k, 0, x0, 0, -ctx_res * k, y0), crs,
                   None, attrs={"instrument": "DEM (simulated)", "units": "m"})
    meta = {"seed": seed, "ctx_shape": [h, w], "factor": factor, "shift_centre_px": list(shift),
            "shift_gradient_px": list(shift_gradient), "sun_azimuth": sun_azimuth, "sun_elevation": sun_elevation,
            "unit_params": unit_params.tolist(), "simulated": True}
    (out / "simulation.json").write_text(json.dumps(meta, indent=2))
    return SimulatedPair(ctx_path=out / "ctx.tif", crism_path=out / "crism.tif", wavelengths_path=wl_csv,
                         dem_path=dem_path, truth=truth.astype(np.float32), wavelengths=wl, labels=labels,
                         shading=shade, footprint=(r0, r0 + hc * factor, c0, c0 + wc * factor),
                         shift=(float(shift[0]), float(shift[1])),
                         shift_gradient=(float(shift_gradient[0]), float(shift_gradient[1])), meta=meta)
