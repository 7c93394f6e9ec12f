"""HiRISE-like grayscale tiles with small water-ice patches and known truth.

``simulate_hirise(shape, ...)`` builds a height field (smooth rolling ground, boulders as Gaussian
bumps, polygon-crack troughs along the edges of a Voronoi tessellation, small bowl craters with
raised rims), shades it with a Lambertian law lit from a fixed direction (the sun in the north, i.e.
towards the top of the image, as for a southern mid-latitude site) and casts shadows along the sun
direction.  Then it adds:

* **ice patches** on poleward-facing (shadowed) pixels next to relief: bright albedo blobs with a
  diffuse (Gaussian) edge and *no relief of their own* (so no shadows of their own);
* **bright dust** on sunlit slopes: broader, fainter albedo blobs (the main look-alike);
* **hot pixels** (isolated single bright pixels) and **line defects** (1 px wide, 4-24 px long
  bright segments along an image row or column), as from processing or transmission errors;
* **black no-data margins** (0 DN) on the left and right with slanted edges, as on map-projected
  HiRISE products.

The truth (:class:`HiriseTruth`) has every patch's centre, radius and pixel mask, the masks of the
distractors and of no-data, so chunk and image labels are known exactly (:func:`chunk_label`).
``write_hirise(path, image)`` writes a GeoTIFF (or an ISIS3 cube for ``.cub``) in a Mars
equirectangular CRS at 0.25 m/px.  Same seed, same tile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from orbitml.errors import OrbitmlInputError

__all__ = ["MARS_EQC_WKT", "HiriseTruth", "simulate_hirise", "chunk_label", "write_hirise", "plant_defects"]

MARS_EQC_WKT = (
    'PROJCS["Mars_Equirectangular_clat-50",GEOGCS["GCS_Mars_2000_Sphere",DATUM["D_Mars_2000_Sphere",'
    'SPHEROID["Mars_2000_Sphere_IAU_IAG",3396190,0]],PRIMEM["Reference_Meridian",0],'
    'UNIT["degree",0.0174532925199433]],PROJECTION["Equirectangular"],PARAMETER["standard_parallel_1",-50],'
    'PARAMETER["central_meridian",0],PARAMETER["false_easting",0],PARAMETER["false_northing",0],'
    'UNIT["metre",1]]'
)
PIXEL_M = 0.25


@dataclass
class HiriseTruth:
    """Known content of a simulated tile (all masks ``(H, W)`` bool)."""

    patches: list[dict[str, Any]]  # id, row, col, radius (px), kind "ice"
    patch_id: np.ndarray  # int32, 0 = no patch, k = pixels of patch k (alpha >= 0.5)
    dust: np.ndarray
    hot: np.ndarray
    lines: np.ndarray
    nodata: np.ndarray
    sun_azimuth_deg: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def ice(self) -> np.ndarray:
        return self.patch_id > 0

    @property
    def has_ice(self) -> bool:
        return len(self.patches) > 0

    @property
    def defects(self) -> np.ndarray:
        return self.hot | self.lines


def _height(shape, rng, n_boulders, n_craters, crack_cells):
    h, w = shape
    z = ndi.gaussian_filter(rng.normal(size=shape), 24, mode="wrap") * 60.0
    z += ndi.gaussian_filter(rng.normal(size=shape), 3, mode="wrap") * 3.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # polygon cracks: troughs where the nearest and second-nearest Voronoi seeds are equidistant
    if crack_cells > 0:
        from scipy.spatial import cKDTree

        seeds = rng.uniform(0, 1, size=(crack_cells, 2)) * (h, w)
        d, _ = cKDTree(seeds).query(np.c_[yy.ravel(), xx.ravel()], k=2)
        gap = (d[:, 1] - d[:, 0]).reshape(shape)
        z -= 2.5 * np.exp(-(gap / 1.5) ** 2)
    feats = []
    for _ in range(n_craters):
        r0 = rng.uniform(5, 16)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        rr = np.hypot(yy - cy, xx - cx) / r0
        z += np.where(rr < 1, -0.5 * r0 * (1 - rr ** 2), 0) + 0.15 * r0 * np.exp(-((rr - 1) / 0.25) ** 2)
        feats.append((cy, cx, r0))
    for _ in range(n_boulders):
        r0 = rng.uniform(1.2, 3.5)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        y0, y1, x0, x1 = (max(int(cy - 4 * r0), 0), min(int(cy + 4 * r0) + 1, h),
                          max(int(cx - 4 * r0), 0), min(int(cx + 4 * r0) + 1, w))
        if y1 > y0 and x1 > x0:
            z[y0:y1, x0:x1] += 1.6 * r0 * np.exp(-((yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2)
                                                 / (2 * r0 ** 2))
        feats.append((cy, cx, r0))
    return z, feats


def _shade(z, elevation_deg):
    """Lambertian shading, sun in the north (image up), plus cast shadows swept down the rows."""
    el = np.deg2rad(elevation_deg)
    gy, gx = np.gradient(z)
    # sun direction (x, y_row, up) = (0, -cos el, sin el); normal = (-gx, -gy, 1)
    shade = (gy * np.cos(el) + np.sin(el)) / np.sqrt(gx ** 2 + gy ** 2 + 1)
    shade = np.clip(shade, 0, None)
    # a pixel is in shadow when the terrain up-sun rises above the sun line
    t = np.tan(el)
    horizon = z[0].copy()
    shadow = np.zeros(z.shape, bool)
    for r in range(1, z.shape[0]):
        horizon = np.maximum(horizon - t, z[r - 1])
        shadow[r] = z[r] < horizon - 0.05
    return np.where(shadow, 0.25 * shade, shade), shadow


def _blob(shape, cy, cx, radius, rng, elong=1.6):
    h, w = shape
    ext = int(3 * radius * elong) + 2
    y0, y1, x0, x1 = max(int(cy) - ext, 0), min(int(cy) + ext + 1, h), max(int(cx) - ext, 0), min(int(cx) + ext + 1, w)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    th = rng.uniform(0, np.pi)
    e = rng.uniform(1.0, elong)
    u = ((yy - cy) * np.cos(th) + (xx - cx) * np.sin(th)) / (radius * e)
    v = (-(yy - cy) * np.sin(th) + (xx - cx) * np.cos(th)) / (radius / e)
    edge = ndi.gaussian_filter(rng.normal(size=u.shape), 2) * 0.6  # ragged outline
    d = np.sqrt(u ** 2 + v ** 2) + edge
    alpha = 1.0 / (1.0 + np.exp((d - 1.0) / 0.18))  # diffuse edge
    return (slice(y0, y1), slice(x0, x1)), alpha


def plant_defects(img: np.ndarray, n_hot: int, n_lines: int, rng: np.random.Generator, valid: np.ndarray | None = None,
                  value: tuple[float, float] = (200, 255), line_len: tuple[int, int] = (4, 24)
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Set ``n_hot`` isolated pixels and ``n_lines`` short row/column segments bright, in place; their masks."""
    h, w = img.shape
    hot = np.zeros((h, w), bool)
    lines = np.zeros((h, w), bool)
    valid = np.ones((h, w), bool) if valid is None else valid
    cand = np.flatnonzero(valid.ravel())
    if cand.size == 0:
        return hot, lines
    for k in rng.choice(cand, size=min(n_hot, cand.size), replace=False):
        r, c = divmod(int(k), w)
        img[r, c] = rng.uniform(*value)
        hot[r, c] = True
    for _ in range(n_lines):
        r, c = divmod(int(rng.choice(cand)), w)
        n = int(rng.integers(line_len[0], line_len[1] + 1))
        sl = (r, slice(c, min(c + n, w))) if rng.random() < 0.7 else (slice(r, min(r + n, h)), c)
        m = np.zeros((h, w), bool)
        m[sl] = True
        m &= valid
        img[m] = rng.uniform(*value)
        lines |= m
    hot &= ~lines
    return hot, lines


def simulate_hirise(shape: tuple[int, int] = (512, 512), n_ice: int = 3, n_dust: int = 3, n_hot: int = 0,
                    n_lines: int = 0, ice_radius: tuple[float, float] = (3.0, 7.0),
                    dust_radius: tuple[float, float] = (7.0, 14.0), margin: tuple[float, float] = (0.0, 0.12),
                    n_boulders: int | None = None, n_craters: int | None = None, elevation_deg: float = 25.0,
                    noise_dn: float = 2.5, dust_at: list[tuple[float, float]] | None = None,
                    seed: int | None = 0) -> tuple[np.ndarray, HiriseTruth]:
    """A uint8 tile (0 = no data) and its truth; see the module docstring.

    ``margin``: range of the black margin width on each side, as a fraction of the width.
    ``dust_at``: optional (row, col) centres for the dust patches (e.g. on chunk boundaries, to make
    cut-patch distractors); the rest are placed at random on sunlit slopes.
    """
    h, w = (int(v) for v in shape)
    if h < 32 or w < 32:
        raise OrbitmlInputError(f"simulated tile must be at least 32 x 32 px, got {h} x {w}")
    rng = np.random.default_rng(seed)
    area = h * w / 512 ** 2
    nb = int(rng.poisson(120 * area)) if n_boulders is None else n_boulders
    nc = int(rng.poisson(6 * area)) if n_craters is None else n_craters
    z, feats = _height((h, w), rng, nb, nc, max(int(30 * area), 2))
    shade, shadow = _shade(z, elevation_deg)
    albedo = 1.0 + 0.08 * ndi.gaussian_filter(rng.normal(size=(h, w)), 8)
    img = 40.0 + 110.0 * shade * albedo

    # no-data margins with slanted edges
    rows = np.arange(h)[:, None]
    cols = np.arange(w)[None, :]
    lm, rm = (rng.uniform(*margin) * w for _ in range(2))
    tilt = rng.uniform(-0.04, 0.04, size=2)
    nodata = (((cols < lm + tilt[0] * (rows - h / 2)) & (lm > 0))
              | ((cols >= w - rm + tilt[1] * (rows - h / 2)) & (rm > 0)))
    valid = ~nodata

    # ice: shadowed or poleward-facing pixels next to relief, away from the margins
    gy = np.gradient(z, axis=0)
    poleward = (shadow | (gy < -0.15)) & valid
    pad = int(ice_radius[1] * 3)
    inner = ndi.binary_erosion(valid, iterations=pad, border_value=0)
    cand = np.flatnonzero((poleward & inner).ravel())
    patch_id = np.zeros((h, w), np.int32)
    patches: list[dict[str, Any]] = []
    for k in range(n_ice if cand.size else 0):
        r, c = divmod(int(rng.choice(cand)), w)
        rad = float(rng.uniform(*ice_radius))
        sl, a = _blob((h, w), r, c, rad, rng)
        bright = rng.uniform(195.0, 235.0)
        img[sl] = img[sl] * (1 - a) + bright * a
        sub = patch_id[sl]
        sub[(a >= 0.5) & (sub == 0)] = k + 1
        patches.append({"id": k + 1, "row": r, "col": c, "radius": rad, "kind": "ice",
                        "brightness": float(bright)})
    # dust: sunlit slopes, broader and fainter, soft
    dust = np.zeros((h, w), bool)
    sunlit = np.flatnonzero(((shade > np.quantile(shade, 0.6)) & inner).ravel())
    centres = list(dust_at or [])
    while len(centres) < n_dust and sunlit.size:
        centres.append(divmod(int(rng.choice(sunlit)), w))
    for r, c in centres[:max(n_dust, len(dust_at or []))]:
        sl, a = _blob((h, w), r, c, float(rng.uniform(*dust_radius)), rng)
        a = ndi.gaussian_filter(a, 2.0) * rng.uniform(0.35, 0.55)
        img[sl] = img[sl] + (205.0 - img[sl]) * a
        dust[sl] |= a >= 0.2
    img += rng.normal(0, noise_dn, size=(h, w))
    img = np.clip(img, 1, 254)
    hot, lines = plant_defects(img, n_hot, n_lines, rng, valid)
    out = np.where(valid, np.clip(np.rint(img), 1, 255), 0).astype(np.uint8)
    patch_id[nodata] = 0
    truth = HiriseTruth(patches, patch_id, dust & valid, hot & valid, lines & valid, nodata, 0.0,
                        params={"shape": [h, w], "seed": seed, "n_ice": n_ice, "n_dust": n_dust, "n_hot": n_hot,
                                "n_lines": n_lines, "elevation_deg": elevation_deg})
    return out, truth


def chunk_label(truth: HiriseTruth, row: int, col: int, height: int, width: int,
                whole: float = 0.9, none: float = 0.0) -> int | None:
    """1 when some patch has at least ``whole`` of its pixels inside the window, 0 when every patch has
    at most ``none`` of them inside, else None (a cut patch: ambiguous)."""
    sub = truth.patch_id[row: row + height, col: col + width]
    ids, inside = np.unique(sub[sub > 0], return_counts=True)
    if ids.size == 0:
        return 0
    total = ndi.sum_labels(np.ones_like(truth.patch_id), truth.patch_id, ids)
    frac = inside / np.maximum(total, 1)
    if (frac >= whole).any():
        return 1
    return 0 if (frac <= none).all() else None


def write_hirise(path: str | os.PathLike, image: np.ndarray, origin: tuple[float, float] = (12_000.0, -2_960_000.0),
                 pixel_m: float = PIXEL_M, tags: dict[str, str] | None = None, overwrite: bool = True) -> Path:
    """GeoTIFF (``.tif``) or ISIS3 cube (``.cub``) in a Mars equirectangular CRS; 0 is nodata.

    ``image``: ``(H, W)`` grayscale or ``(3, H, W)`` colour (written as three bands).
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from orbitml.io.atomic import atomic_path

    path = Path(path)
    arr = image[None] if image.ndim == 2 else image
    driver = "ISIS3" if path.suffix.lower() == ".cub" else "GTiff"
    prof = {"driver": driver, "width": arr.shape[2], "height": arr.shape[1], "count": arr.shape[0],
            "dtype": arr.dtype.name, "crs": CRS.from_wkt(MARS_EQC_WKT),
            "transform": from_origin(origin[0], origin[1], pixel_m, pixel_m), "nodata": 0}
    if driver == "GTiff":
        prof.update(tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with atomic_path(path, overwrite) as tmp:
        with rasterio.open(tmp, "w", **prof) as ds:
            ds.write(arr)
            if tags:
                ds.update_tags(**tags)
    return path
