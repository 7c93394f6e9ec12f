"""Simulated CCD frames and cosmic-ray hits, all in electrons.

:func:`simulate_frame` builds a sky/dark frame with Poisson and read noise, optional stars (Gaussian
PSF), hot columns and saturation bleeds, and returns the ground truth of those non-cosmic sources.
:func:`inject_cosmic_rays` adds cosmic-ray hits to any frame in electrons (simulated or a real frame
times its gain) and returns the exact hit masks and a per-hit table.

Physics (defaults are stated in the signatures and can all be changed):

* Incidence is isotropic over the sky, so the flux through the detector plane is cos-weighted:
  ``cos(theta) = sqrt(U)``, ``U ~ uniform(0, 1)``.  A particle crosses the whole sensitive layer of
  thickness ``t``: path length in silicon ``t / cos(theta)``, projected length ``t tan(theta) / pixel``.
  Near-normal incidence gives compact "spots", grazing incidence long straight "tracks".
* Charge from a minimum-ionising particle: a Moyal (Landau-like) total deposit with most probable value
  ``dedx_mpv_e_per_um`` (75 e-/um: about 0.27 keV/um in silicon at 3.62 eV per electron-hole pair) times
  the path length and a width ``moyal_scale_frac`` times that (thin-layer straggling is several times
  broader than the Landau parameter, Bichsel 1988).  Galactic cosmic rays are mostly protons; 12% are
  helium and 1% heavier nuclei (taken as Z = 6), whose deposits scale with Z^2.  The deposit is split
  along the path with Gamma-distributed fluctuations (delta rays).
* Charge diffusion: each deposit point is spread by a Gaussian whose sigma grows linearly with the
  distance from the collecting surface, from ``diffusion_min_um`` to ``diffusion_max_um``; pixel
  fractions are exact integrals (error functions).  The e-h pair statistics add Fano noise (F = 0.115).
* "Worms": low-energy electrons (a ``worm_fraction`` of the hits, e.g. Compton electrons) absorbed
  entirely: energy log-uniform in ``worm_energy_kev``, path length from the Kanaya-Okayama range in
  silicon ``R = 0.0318 E[keV]^1.67 um``, a persistent random walk in the detector plane, depositing
  more per step towards the end of the range (Bragg-like).

The hit mask holds the pixels where the summed cosmic-ray charge reaches ``mask_threshold_e``
(default: twice the frame's robust pixel-noise sigma, at least 1 e-).  Pixel coordinates: ``x`` is the
column and ``y`` the row index, pixel centres at integers; angles are measured from the +x axis towards
+y, in [0, 180) degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import erf
from scipy.stats import moyal

E_PER_PAIR_EV = 3.62  # mean energy per electron-hole pair in silicon at ~180-300 K
FANO = 0.115  # Fano factor of silicon
# fractions of galactic cosmic-ray nuclei by charge (protons, helium, heavier taken as carbon/oxygen)
GCR_Z = np.array([1, 2, 6])
GCR_FRACTION = np.array([0.87, 0.12, 0.01])
HIT_COLUMNS = ["id", "kind", "x", "y", "energy_e", "length_px", "angle_deg", "n_pixels",
               "peak_e", "theta_deg", "path_um", "z", "x0", "y0", "energy_generated_e"]


# --------------------------------------------------------------------------- frames


def _gaussian_stamp(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, radius: int):
    """Pixel-integrated 2-D Gaussians: (n, S, S) weights and the stamps' first row/column indices."""
    s = 2 * radius + 2
    ix0 = np.floor(x).astype(np.int64) - radius
    iy0 = np.floor(y).astype(np.int64) - radius
    offs = np.arange(s)
    denom = np.sqrt(2.0) * sigma[:, None]
    cx = ix0[:, None] + offs[None, :]
    cy = iy0[:, None] + offs[None, :]
    gx = 0.5 * (erf((cx + 0.5 - x[:, None]) / denom) - erf((cx - 0.5 - x[:, None]) / denom))
    gy = 0.5 * (erf((cy + 0.5 - y[:, None]) / denom) - erf((cy - 0.5 - y[:, None]) / denom))
    return gy[:, :, None] * gx[:, None, :], iy0, ix0


def _deposit(img: np.ndarray, x, y, q, sigma, row0: int = 0, col0: int = 0,
             radius: int | None = None) -> None:
    """Add charges ``q`` at (x, y) with Gaussian spread ``sigma`` (px) into ``img`` (offset row0, col0)."""
    x = np.asarray(x, float) - col0
    y = np.asarray(y, float) - row0
    sigma = np.maximum(np.asarray(sigma, float), 0.05)
    if radius is None:
        radius = int(np.ceil(4.0 * sigma.max()))
    w, iy0, ix0 = _gaussian_stamp(x, y, sigma, radius)
    s = w.shape[1]
    rows = (iy0[:, None, None] + np.arange(s)[None, :, None]) + np.zeros((1, 1, s), np.int64)
    cols = (ix0[:, None, None] + np.arange(s)[None, None, :]) + np.zeros((1, s, 1), np.int64)
    val = w * np.asarray(q, float)[:, None, None]
    ok = (rows >= 0) & (rows < img.shape[0]) & (cols >= 0) & (cols < img.shape[1])
    np.add.at(img, (rows[ok], cols[ok]), val[ok])


def _bleed(img: np.ndarray, full_well: float) -> np.ndarray:
    """Spill charge above the full well up and down each column; returns the bloomed-pixel mask."""
    over = img > full_well
    bled = np.zeros(img.shape, bool)
    ny = img.shape[0]
    for c in np.flatnonzero(over.any(axis=0)):
        col = img[:, c]
        rows = np.flatnonzero(col > full_well)
        excess = float(np.sum(col[rows] - full_well))
        lo, hi = int(rows.min()), int(rows.max())
        col[lo:hi + 1] = np.maximum(col[lo:hi + 1], full_well)
        col[rows] = full_well
        bled[lo:hi + 1, c] = True
        # fill neighbours alternately above and below until the excess is spent
        up, down, turn = lo - 1, hi + 1, 0
        while excess > 0 and (up >= 0 or down < ny):
            r = up if (turn % 2 == 0 and up >= 0) or down >= ny else down
            if r == up:
                up -= 1
            else:
                down += 1
            turn += 1
            room = max(full_well - col[r], 0.0)
            add = min(room, excess)
            col[r] += add
            excess -= add
            if col[r] >= full_well:
                bled[r, c] = True
    return bled


def simulate_frame(
    shape: tuple[int, int],
    *,
    sky_e: float = 100.0,
    dark_e: float = 5.0,
    read_noise_e: float = 5.0,
    n_stars: int = 0,
    star_flux_e: tuple[float, float] = (2e3, 3e6),
    fwhm_px: float = 2.5,
    hot_columns: int = 0,
    hot_column_e: tuple[float, float] = (300.0, 3000.0),
    saturation_e: float | None = 1.5e5,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, dict]:
    """A CCD frame in electrons (float32) and the ground truth of its non-cosmic-ray sources.

    The expected signal (sky + dark + stars + hot columns) gets Poisson noise; charge above the full
    well ``saturation_e`` bleeds along its column; then Gaussian read noise is added.  Star fluxes are
    log-uniform in ``star_flux_e``, positions uniform, PSF Gaussian with ``fwhm_px``.  A hot column
    runs from a random defect row to the readout row 0 with extra dark charge log-uniform in
    ``hot_column_e`` per pixel.

    Returns ``(frame, truth)``; ``truth`` has boolean masks ``"star"`` (star signal above 3 sigma of
    the noise), ``"hot_column"``, ``"bleed"`` (pixels at the full well), an int32 ``"star_id"`` map
    (1-based), ``"stars"`` (DataFrame x, y, flux_e, saturated), ``"hot_columns"`` (list of
    (column, first_row, last_row, extra_e)), the noise-free star signal ``"star_e"`` (float32) and the
    ``"noise_e"`` sigma of the background.
    """
    rng = np.random.default_rng(seed)
    ny, nx = (int(shape[0]), int(shape[1]))
    if ny < 4 or nx < 4:
        raise ValueError(f"frame shape {shape} too small")
    expected = np.full((ny, nx), float(sky_e) + float(dark_e))
    noise = float(np.sqrt(sky_e + dark_e + read_noise_e**2))
    star_id = np.zeros((ny, nx), np.int32)
    star_mask = np.zeros((ny, nx), bool)
    star_e = np.zeros((ny, nx))
    sigma = fwhm_px / 2.3548
    stars = []
    if n_stars:
        lf = np.log(star_flux_e)
        flux = np.exp(rng.uniform(lf[0], lf[1], n_stars))
        sx = rng.uniform(0, nx - 1, n_stars)
        sy = rng.uniform(0, ny - 1, n_stars)
        best = np.zeros((ny, nx))
        for i in range(n_stars):
            # stamp radius where the PSF falls below 0.05 sigma of the noise
            peak = flux[i] / (2.0 * np.pi * sigma**2)
            rad = int(np.ceil(sigma * np.sqrt(2.0 * np.log(max(peak / (0.05 * max(noise, 1.0)), 2.0))))) + 1
            r0, r1 = max(int(sy[i]) - rad - 1, 0), min(int(sy[i]) + rad + 2, ny)
            c0, c1 = max(int(sx[i]) - rad - 1, 0), min(int(sx[i]) + rad + 2, nx)
            one = np.zeros((r1 - r0, c1 - c0))
            _deposit(one, sx[i:i + 1], sy[i:i + 1], flux[i:i + 1], np.array([sigma]), r0, c0, radius=rad)
            expected[r0:r1, c0:c1] += one
            star_e[r0:r1, c0:c1] += one
            sub = best[r0:r1, c0:c1]
            hit = (one > 3.0 * noise) & (one > sub)
            star_id[r0:r1, c0:c1][hit] = i + 1
            best[r0:r1, c0:c1] = np.maximum(sub, one)
            star_mask[r0:r1, c0:c1] |= one > 3.0 * noise
            stars.append((sx[i], sy[i], flux[i], one.max()))
    hot = np.zeros((ny, nx), bool)
    hot_list = []
    for _ in range(int(hot_columns)):
        c = int(rng.integers(0, nx))
        r1 = int(rng.integers(ny // 4, ny))
        lh = np.log(hot_column_e)
        extra = float(np.exp(rng.uniform(lh[0], lh[1])))
        expected[: r1 + 1, c] += extra
        hot[: r1 + 1, c] = True
        hot_list.append((c, 0, r1, extra))
    frame = rng.poisson(expected).astype(np.float64)
    bleed = np.zeros((ny, nx), bool)
    if saturation_e is not None:
        bleed = _bleed(frame, float(saturation_e))
    frame += rng.normal(0.0, float(read_noise_e), size=frame.shape)
    star_df = pd.DataFrame(stars, columns=["x", "y", "flux_e", "peak_e"])
    star_df["saturated"] = saturation_e is not None and star_df["peak_e"] > saturation_e
    truth = {"star": star_mask & ~bleed, "hot_column": hot & ~bleed & ~star_mask, "bleed": bleed,
             "star_id": star_id, "star_e": star_e.astype(np.float32), "stars": star_df,
             "hot_columns": hot_list, "noise_e": noise}
    return frame.astype(np.float32), truth


# --------------------------------------------------------------------------- cosmic rays


@dataclass
class CosmicInjection:
    """A frame with injected hits: ``image`` (e-), ``mask`` (pixels >= ``threshold_e`` of hit charge),
    ``hit_id`` (int32, 0 = none, else the hit contributing most charge), ``hits`` (one row per hit,
    columns :data:`HIT_COLUMNS`), ``charge`` (the cosmic-ray charge alone, e-)."""

    image: np.ndarray
    mask: np.ndarray
    hit_id: np.ndarray
    hits: pd.DataFrame
    charge: np.ndarray
    threshold_e: float
    params: dict = field(default_factory=dict)


def robust_noise(frame: np.ndarray) -> float:
    """Pixel-noise sigma from the MAD of horizontal neighbour differences (insensitive to gradients)."""
    d = np.diff(np.asarray(frame, float), axis=1).ravel()
    d = d[np.isfinite(d)]
    if d.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def _track_points(rng, x0, y0, thickness_um, pixel_um, spec):
    """Deposit points of one penetrating particle; returns x, y, q, sigma (px) and its geometry."""
    cos_t = np.sqrt(rng.uniform(1e-8, 1.0))
    tan_t = min(np.sqrt(1.0 - cos_t**2) / cos_t, spec["max_tan"])
    cos_t = 1.0 / np.sqrt(1.0 + tan_t**2)
    path_um = thickness_um / cos_t
    proj_px = thickness_um * tan_t / pixel_um
    phi = rng.uniform(0.0, 2.0 * np.pi)
    z = int(rng.choice(GCR_Z, p=GCR_FRACTION))
    mpv = spec["dedx"] * path_um * z**2
    total = float(moyal.rvs(loc=mpv, scale=spec["scale_frac"] * mpv, random_state=rng))
    total = max(total, 0.05 * mpv)
    n = int(max(3, np.ceil(proj_px / 0.25), np.ceil(path_um / 2.0)))
    f = (np.arange(n) + 0.5) / n
    x = x0 + f * proj_px * np.cos(phi)
    y = y0 + f * proj_px * np.sin(phi)
    w = rng.gamma(2.0, 1.0, n)
    q = total * w / w.sum()
    depth = f if rng.random() < 0.5 else 1.0 - f  # entry on the collecting or the far side
    sig_um = spec["dmin"] + (spec["dmax"] - spec["dmin"]) * depth
    geom = {"theta_deg": float(np.degrees(np.arctan(tan_t))), "path_um": float(path_um), "z": z,
            "length_px": float(proj_px), "angle_deg": float(np.degrees(phi) % 180.0),
            "energy_generated_e": total}
    return x, y, q, sig_um / pixel_um, geom


def _streak_points(rng, x0, y0, thickness_um, pixel_um, spec, streak_px):
    """A hit in a line-scan (TDI) frame: the deposit is smeared along the scan (+y, the line direction)
    over ``streak_px`` lines, a bright head followed by a fading tail."""
    z = int(rng.choice(GCR_Z, p=GCR_FRACTION))
    cos_t = np.sqrt(rng.uniform(0.25, 1.0))
    path_um = thickness_um / cos_t
    mpv = spec["dedx"] * path_um * z**2
    total = max(float(moyal.rvs(loc=mpv, scale=spec["scale_frac"] * mpv, random_state=rng)), 0.05 * mpv)
    length = float(rng.uniform(*streak_px))
    n = int(max(3, np.ceil(length / 0.25)))
    f = (np.arange(n) + 0.5) / n
    x = x0 + rng.normal(0.0, 0.1) + np.zeros(n)
    y = y0 + f * length
    w = rng.gamma(2.0, 1.0, n) * np.exp(-f * rng.uniform(0.0, 2.5))
    w[: max(1, n // 8)] += w.sum() * rng.uniform(0.1, 0.6) / max(1, n // 8)  # the head
    q = total * w / w.sum()
    sig = np.full(n, rng.uniform(spec["dmin"], spec["dmax"]) / pixel_um)
    geom = {"theta_deg": float(np.degrees(np.arccos(cos_t))), "path_um": float(path_um), "z": z,
            "length_px": length, "angle_deg": 90.0, "energy_generated_e": total}
    return x, y, q, sig, geom


def _worm_points(rng, x0, y0, pixel_um, spec):
    lo, hi = np.log(spec["worm_kev"])
    e_kev = float(np.exp(rng.uniform(lo, hi)))
    path_px = max(0.0318 * e_kev**1.67 / pixel_um, 3.0)
    n = int(np.ceil(path_px / 0.5))
    turns = np.cumsum(rng.normal(0.0, spec["worm_turn"], n))
    phi = rng.uniform(0.0, 2.0 * np.pi) + turns
    x = x0 + np.concatenate([[0.0], np.cumsum(0.5 * np.cos(phi[:-1]))])
    y = y0 + np.concatenate([[0.0], np.cumsum(0.5 * np.sin(phi[:-1]))])
    total = e_kev * 1e3 / E_PER_PAIR_EV
    f = (np.arange(n) + 0.5) / n
    w = 1.0 / (1.0 - 0.8 * f)
    q = total * w / w.sum()
    sig = rng.uniform(spec["dmin"], spec["dmax"], n) / pixel_um
    geom = {"theta_deg": np.nan, "path_um": float(path_px * pixel_um), "z": -1,
            "length_px": float(np.hypot(x[-1] - x[0], y[-1] - y[0])),
            "angle_deg": float(np.degrees(np.arctan2(y[-1] - y[0], x[-1] - x[0])) % 180.0),
            "energy_generated_e": total}
    return x, y, q, sig, geom


def inject_cosmic_rays(
    frame_e: np.ndarray,
    *,
    n_hits: int | None = None,
    rate_per_cm2_s: float | None = None,
    exposure_s: float = 100.0,
    pixel_size_um: float = 15.0,
    thickness_um: float = 20.0,
    worm_fraction: float = 0.08,
    spot_max_px: float = 2.0,
    dedx_mpv_e_per_um: float = 75.0,
    moyal_scale_frac: float = 0.2,
    diffusion_min_um: float = 0.5,
    diffusion_max_um: float = 4.0,
    worm_energy_kev: tuple[float, float] = (80.0, 400.0),
    max_length_px: float = 300.0,
    mask_threshold_e: float | None = None,
    saturation_e: float | None = None,
    seed: int | np.random.Generator | None = 0,
    tdi_streak_px: tuple[float, float] | None = None,
) -> CosmicInjection:
    """Add cosmic-ray hits to ``frame_e`` (electrons) and return the image, exact masks and hit table.

    Give either ``n_hits`` (exact count) or ``rate_per_cm2_s`` (the count is Poisson with mean
    rate x frame area x ``exposure_s``; galactic cosmic rays in interplanetary space give about 2-5
    hits/cm^2/s, in low Earth orbit about 1-2).  Entry points are uniform over the frame; a track that
    leaves the frame is cut at its edge.  Non-finite pixels of the input stay non-finite and carry
    no hits.  See the module docstring for the physics; ``saturation_e`` clips the result.
    ``tdi_streak_px=(lo, hi)``: a line-scan (TDI) detector; every hit is a streak along the scan (+y) of
    uniform length in ``[lo, hi]`` lines, kind ``"streak"`` (no worms, no oblique tracks).
    """
    frame = np.asarray(frame_e, dtype=np.float64)
    if frame.ndim != 2:
        raise ValueError(f"expected a 2-D frame, got shape {frame.shape}")
    rng = np.random.default_rng(seed)
    ny, nx = frame.shape
    if n_hits is None:
        if rate_per_cm2_s is None:
            raise ValueError("give n_hits or rate_per_cm2_s")
        area_cm2 = ny * nx * (pixel_size_um * 1e-4) ** 2
        n_hits = int(rng.poisson(rate_per_cm2_s * area_cm2 * exposure_s))
    spec = {"dedx": dedx_mpv_e_per_um, "scale_frac": moyal_scale_frac, "dmin": diffusion_min_um,
            "dmax": diffusion_max_um, "worm_kev": worm_energy_kev, "worm_turn": 0.5,
            "max_tan": max_length_px * pixel_size_um / thickness_um}
    thr = mask_threshold_e
    if thr is None:
        thr = max(2.0 * robust_noise(frame), 1.0)
    charge = np.zeros((ny, nx))
    best = np.zeros((ny, nx))
    hit_id = np.zeros((ny, nx), np.int32)
    rows = []
    for k in range(1, int(n_hits) + 1):
        x0, y0 = rng.uniform(-0.5, nx - 0.5), rng.uniform(-0.5, ny - 0.5)
        if tdi_streak_px is not None:
            x, y, q, sig, geom = _streak_points(rng, x0, y0, thickness_um, pixel_size_um, spec, tdi_streak_px)
            kind = "streak"
        elif rng.random() < worm_fraction:
            x, y, q, sig, geom = _worm_points(rng, x0, y0, pixel_size_um, spec)
            kind = "worm"
        else:
            x, y, q, sig, geom = _track_points(rng, x0, y0, thickness_um, pixel_size_um, spec)
            kind = "spot" if geom["length_px"] <= spot_max_px else "track"
        pad = int(np.ceil(4.0 * max(sig.max(), 0.05))) + 2
        r0, r1 = max(int(np.floor(y.min())) - pad, 0), min(int(np.ceil(y.max())) + pad + 1, ny)
        c0, c1 = max(int(np.floor(x.min())) - pad, 0), min(int(np.ceil(x.max())) + pad + 1, nx)
        local = np.zeros((max(r1 - r0, 0), max(c1 - c0, 0)))
        if local.size:
            _deposit(local, x, y, q, sig, r0, c0)
            local = np.maximum(local + rng.normal(0.0, 1.0, local.shape) * np.sqrt(FANO * local), 0.0)
        charge[r0:r1, c0:c1] += local
        sub_best = best[r0:r1, c0:c1]
        win = local > sub_best
        hit_id[r0:r1, c0:c1][win] = k
        best[r0:r1, c0:c1] = np.maximum(sub_best, local)
        e_in = float(local.sum())
        if e_in > 0:
            yy, xx = np.mgrid[r0:r1, c0:c1]
            cx, cy = float((xx * local).sum() / e_in), float((yy * local).sum() / e_in)
        else:
            cx, cy = float(x0), float(y0)
        rows.append({"id": k, "kind": kind, "x": cx, "y": cy, "energy_e": e_in,
                     "peak_e": float(local.max()) if local.size else 0.0, "x0": float(x0), "y0": float(y0),
                     **geom})
    bad = ~np.isfinite(frame)
    charge[bad] = 0.0
    mask = charge >= thr
    hit_id[~mask] = 0
    image = frame + charge
    if saturation_e is not None:
        image = np.minimum(image, saturation_e)
    hits = pd.DataFrame(rows, columns=[c for c in HIT_COLUMNS if c != "n_pixels"])
    counts = np.bincount(hit_id.ravel(), minlength=int(n_hits) + 1)[1:]
    hits.insert(HIT_COLUMNS.index("n_pixels"), "n_pixels", counts.astype(np.int64))
    hits = hits.astype({"id": np.int32, "z": np.int32})
    params = {"pixel_size_um": pixel_size_um, "thickness_um": thickness_um, "exposure_s": exposure_s,
              "rate_per_cm2_s": rate_per_cm2_s, "n_hits": int(n_hits), "worm_fraction": worm_fraction,
              "spot_max_px": spot_max_px, "mask_threshold_e": float(thr)}
    return CosmicInjection(image=image.astype(np.float32), mask=mask, hit_id=hit_id, hits=hits,
                           charge=charge.astype(np.float32), threshold_e=float(thr), params=params)


# --------------------------------------------------------------------------- space-mission frames
# Additive: frames shaped like what MESSENGER MDIS, SOHO LASCO and MRO HiRISE see.  All nominal, stated
# in the signatures; none of them reproduces a flight calibration.

MISSION_KINDS = ("sky", "mdis12", "mdis8", "lasco", "hirise_tdi", "longslit")


def compand_sqrt(dn: np.ndarray, bits_in: int = 12, bits_out: int = 8) -> np.ndarray:
    """Square-root companding of ``bits_in``-bit DN to ``bits_out``-bit codes (a nominal table shaped like
    the on-board 12->8-bit look-up tables of MDIS; not a flight table)."""
    top_in, top_out = float(2 ** bits_in - 1), float(2 ** bits_out - 1)
    x = np.clip(np.asarray(dn, np.float64), 0.0, top_in)
    return np.round(top_out * np.sqrt(x / top_in)).astype(np.uint8 if bits_out <= 8 else np.uint16)


def decompand_sqrt(code: np.ndarray, bits_in: int = 12, bits_out: int = 8) -> np.ndarray:
    """Inverse of :func:`compand_sqrt`: the DN at the centre of each code's bin (float32)."""
    top_in, top_out = float(2 ** bits_in - 1), float(2 ** bits_out - 1)
    c = np.asarray(code, np.float64)
    lo = top_in * (np.clip(c - 0.5, 0.0, None) / top_out) ** 2
    hi = top_in * (np.clip(c + 0.5, None, top_out) / top_out) ** 2
    return (0.5 * (lo + hi)).astype(np.float32)


def surface_texture(shape: tuple[int, int], rng: np.random.Generator, beta: float = 3.2,
                    smooth_px: float = 1.2) -> np.ndarray:
    """Fractal (power-law ``k^-beta``) texture, smoothed to a ``smooth_px`` PSF, scaled to [0, 1]."""
    ny, nx = int(shape[0]), int(shape[1])
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = 1.0
    amp = k ** (-beta / 2.0) * np.exp(-2.0 * (np.pi * smooth_px * k) ** 2)
    amp[0, 0] = 0.0
    spec = amp * (rng.normal(size=amp.shape) + 1j * rng.normal(size=amp.shape))
    t = np.fft.irfft2(spec, s=(ny, nx))
    lo, hi = np.percentile(t, [0.5, 99.5])
    return np.clip((t - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


def _quantise(e: np.ndarray, gain: float, top_dn: float) -> np.ndarray:
    """Electrons -> integer DN (rounded, clipped to [0, top_dn]) -> electrons."""
    return (np.clip(np.round(e / gain), 0.0, top_dn) * gain).astype(np.float32)


def mission_chain(kind: str, gain: float):
    """The read-out chain applied *after* hits are injected: ``f(frame_e) -> frame_e`` (DN quantisation,
    12-bit clipping, 12->8-bit companding and the reader's decompanding for ``mdis8``)."""
    if kind in ("sky", "mdis12", "lasco", "longslit"):
        top = 16383.0 if kind == "lasco" else 4095.0 if kind == "mdis12" else 65535.0
        return lambda e: _quantise(e, gain, top)
    if kind == "mdis8":
        def chain(e):
            dn = np.clip(np.round(e / gain), 0.0, 4095.0)
            return (decompand_sqrt(compand_sqrt(dn)) * gain).astype(np.float32)
        return chain
    if kind == "hirise_tdi":
        return lambda e: _quantise(e, gain, 255.0)
    raise ValueError(f"unknown mission kind {kind!r}; known: {', '.join(MISSION_KINDS)}")


def _smooth_curve(n: int, rng: np.random.Generator, n_knots: int, amplitude: float) -> np.ndarray:
    """``1 + amplitude * (a smooth random curve of n samples in about [-1, 1])``."""
    knots = rng.uniform(-1.0, 1.0, n_knots)
    return 1.0 + amplitude * np.interp(np.linspace(0, n_knots - 1, n), np.arange(n_knots), knots)


def _longslit_expected(ny: int, nx: int, rng: np.random.Generator) -> np.ndarray:
    """Expected electrons of a long-slit spectrum (see :func:`simulate_mission_frame`, ``"longslit"``)."""
    transpose = rng.random() < 0.5  # dispersion along y instead of x
    n_disp, n_slit = (ny, nx) if transpose else (nx, ny)
    d = np.arange(n_disp, dtype=float)
    t = np.arange(n_slit, dtype=float)
    # sky: continuum along the dispersion plus emission lines, the same along the slit up to a slow
    # illumination change and a small tilt of each line (line centre moves across the slit)
    cont = float(np.exp(rng.uniform(np.log(10.0), np.log(1000.0)))) * _smooth_curve(n_disp, rng, 6, 0.5)
    sky = np.broadcast_to(cont, (n_slit, n_disp)).copy()
    n_lines = int(rng.integers(5, 40) * max(n_disp / 256.0, 0.25))
    width = float(np.exp(rng.uniform(np.log(1.5), np.log(5.0)))) / 2.3548
    tilt = float(rng.uniform(-2.0, 2.0)) / max(n_slit, 1)  # px of dispersion per px along the slit
    centre0 = rng.uniform(-5.0, n_disp + 5.0, n_lines)
    peak = np.exp(rng.uniform(np.log(20.0), np.log(3e4), n_lines))
    sig = width * rng.uniform(0.9, 1.1, n_lines)
    shift = (t - n_slit / 2.0) * tilt
    for c, a, sg in zip(centre0, peak, sig, strict=True):
        sky += a * np.exp(-0.5 * ((d[None, :] - (c + shift[:, None])) / sg) ** 2)
    sky *= _smooth_curve(n_slit, rng, 4, 0.04)[:, None]
    if rng.random() < 1.0 / 3.0:  # the slit ends inside the frame: beyond it only dark current
        edge = float(rng.uniform(0.1, 0.4)) * n_slit
        inside = t - edge if rng.random() < 0.5 else n_slit - edge - t  # slit end at the top or the bottom
        ramp = 0.5 * (1.0 + erf(inside))  # a one-pixel-wide edge
        sky *= ramp[:, None]
    # object traces: a Gaussian profile across the slit following a smooth continuum, slightly tilted
    for _ in range(int(rng.integers(0, 4))):
        y0 = float(rng.uniform(0.1, 0.9)) * n_slit
        fw = float(rng.uniform(2.0, 6.0)) / 2.3548
        flux = float(np.exp(rng.uniform(np.log(50.0), np.log(5e4)))) * _smooth_curve(n_disp, rng, 8, 0.6)
        yc = y0 + float(rng.uniform(-3.0, 3.0)) * (d - n_disp / 2.0) / max(n_disp, 1)
        sky += flux[None, :] * np.exp(-0.5 * ((t[:, None] - yc[None, :]) / fw) ** 2) / (np.sqrt(2 * np.pi) * fw)
    expected = sky + 2.0  # dark current
    return expected.T if transpose else expected


def simulate_mission_frame(kind: str, shape: tuple[int, int], seed: int | np.random.Generator | None = 0,
                           ) -> tuple[np.ndarray, dict]:
    """A frame in electrons *before* the read-out chain, and its facts.

    ``kind``:

    * ``"mdis12"`` / ``"mdis8"``: a MESSENGER-MDIS-like view of a cratered surface (fractal texture at the
      PSF scale, mean brightness 300-2500 DN with 30-120% contrast, at a nominal 22 e-/DN, read noise
      20 e-), with a planetary limb against dark space in half of the frames; ``mdis8`` is then companded to 8 bits (see
      :func:`mission_chain`).
    * ``"lasco"``: a SOHO-LASCO-C2-like coronagraph frame: occulter disk, radial falloff ``r^-3`` with
      streamers, the occulter pylon, outer vignetting and a few stars; 20 e-/DN, 14-bit.
    * ``"hirise_tdi"``: a HiRISE-like line-scan (TDI) 8-bit frame of a surface with texture down to the
      pixel scale, 1-2 DN of noise (effective gain 40-200 e-/DN), column gain striping along the scan
      (rows are lines).
    * ``"longslit"``: a ground-based long-slit spectrum (not a space mission; a frame type imaging-only
      training never shows): sky emission lines across the whole slit (Gaussian profiles, FWHM 1.5-5 px,
      peaks 20-30000 e-, slightly tilted) on a sky continuum of 10-1000 e-, 0-3 object traces along the
      dispersion with smooth continua, slit illumination varying by a few per cent and, in a third of
      the frames, the slit ending inside the frame; dispersion along x or y; 1-3 e-/ADU, read noise
      3-8 e-, 16-bit.

    Returns ``(frame_e, info)``; ``info`` has ``gain``, ``read_noise_e``, ``kind``, ``chain`` (the
    post-injection read-out function) and ``saturation_e`` (the top of the DN range, in electrons).
    Inject hits (for ``hirise_tdi`` with ``tdi_streak_px``) into ``frame_e`` and pass the result through
    ``info["chain"]``.
    """
    rng = np.random.default_rng(seed)
    ny, nx = int(shape[0]), int(shape[1])
    if kind in ("mdis12", "mdis8"):
        gain, rn = 22.0, 20.0
        tex = surface_texture((ny, nx), rng, beta=float(rng.uniform(2.6, 3.6)), smooth_px=float(rng.uniform(0.8, 1.6)))
        mean = float(np.exp(rng.uniform(np.log(300.0), np.log(2500.0))))
        level_dn = mean * (1.0 + float(rng.uniform(0.3, 1.2)) * (tex - 0.5))
        if rng.random() < 0.5:  # a limb: the planet's edge against dark space
            yy, xx = np.mgrid[0:ny, 0:nx]
            r = float(rng.uniform(1.0, 3.0)) * max(ny, nx)
            ang = rng.uniform(0, 2 * np.pi)
            cx, cy = nx / 2 + (r - rng.uniform(0.1, 0.5) * nx) * np.cos(ang), ny / 2 + (r - rng.uniform(
                0.1, 0.5) * ny) * np.sin(ang)
            d = r - np.hypot(xx - cx, yy - cy)
            level_dn = level_dn * 0.5 * (1.0 + erf(d / 1.2)) + 2.0
        expected = level_dn * gain
    elif kind == "lasco":
        gain, rn = 20.1, 9.0
        yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
        cx, cy = nx / 2 + rng.uniform(-0.05, 0.05) * nx, ny / 2 + rng.uniform(-0.05, 0.05) * ny
        r = np.hypot(xx - cx, yy - cy) + 1e-6
        r_occ = float(rng.uniform(0.12, 0.22)) * min(ny, nx)
        th = np.arctan2(yy - cy, xx - cx)
        streak = np.ones_like(r)
        for _ in range(int(rng.integers(2, 6))):
            streak += rng.uniform(0.3, 1.5) * np.exp(-0.5 * (np.angle(np.exp(1j * (th - rng.uniform(
                -np.pi, np.pi)))) / rng.uniform(0.05, 0.25)) ** 2)
        b0 = float(np.exp(rng.uniform(np.log(2e3), np.log(2e4))))
        corona = b0 * (np.maximum(r, r_occ) / r_occ) ** -3.0 * streak
        corona *= 0.5 * (1.0 + erf((r - r_occ) / 1.5))  # occulter edge
        pyl = float(rng.uniform(-np.pi, np.pi))
        across = np.abs((xx - cx) * np.sin(pyl) - (yy - cy) * np.cos(pyl))
        along = (xx - cx) * np.cos(pyl) + (yy - cy) * np.sin(pyl)
        corona *= np.where((across < 0.03 * nx) & (along > 0), 0.15, 1.0)  # pylon shadow
        r_out = 0.48 * min(ny, nx) * float(rng.uniform(0.9, 1.2))
        corona *= 0.5 * (1.0 - erf((r - r_out) / (0.03 * min(ny, nx))))  # vignetting at the field stop
        expected = (corona + 40.0) * 1.0
        n_stars = int(rng.integers(0, 8))
        if n_stars:
            stars = np.zeros((ny, nx))
            _deposit(stars, rng.uniform(0, nx - 1, n_stars), rng.uniform(0, ny - 1, n_stars),
                     np.exp(rng.uniform(np.log(2e3), np.log(3e5), n_stars)), np.full(n_stars, 1.1))
            expected = expected + stars
    elif kind == "hirise_tdi":
        # an 8-bit EDR of a 14-bit TDI line: about 1-2 DN of noise at 60-220 DN (effective gain 40-200 e-/DN),
        # terrain texture sharp down to the pixel scale
        gain = float(np.exp(rng.uniform(np.log(40.0), np.log(200.0))))
        rn = 0.5 * gain
        tex = surface_texture((ny, nx), rng, beta=float(rng.uniform(2.4, 3.4)), smooth_px=float(rng.uniform(0.6, 1.5)))
        lo = rng.uniform(40.0, 170.0)
        level_dn = lo + rng.uniform(5.0, 80.0) * tex
        level_dn *= (1.0 + rng.normal(0.0, 0.01, nx))[None, :]  # TDI column gain striping along the scan
        level_dn += rng.normal(0.0, 0.5, nx)[None, :]
        expected = np.clip(level_dn, 1.0, 250.0) * gain
    elif kind == "longslit":
        gain, rn = float(rng.uniform(1.0, 3.0)), float(rng.uniform(3.0, 8.0))
        expected = _longslit_expected(ny, nx, rng)
    else:
        raise ValueError(f"unknown mission kind {kind!r}; known: mdis12, mdis8, lasco, hirise_tdi, longslit")
    frame = rng.poisson(np.maximum(expected, 0.0)).astype(np.float64) + rng.normal(0.0, rn, (ny, nx))
    top = {"mdis12": 4095.0, "mdis8": 4095.0, "lasco": 16383.0, "hirise_tdi": 255.0, "longslit": 65535.0}[kind]
    return frame.astype(np.float32), {"kind": kind, "gain": gain, "read_noise_e": rn,
                                      "chain": mission_chain(kind, gain), "saturation_e": top * gain}
