"""The CCD frame and cosmic-ray hit simulator (orbitml.simulate.ccd)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from orbitml.simulate.ccd import inject_cosmic_rays, robust_noise, simulate_frame


def test_frame_noise_and_level():
    f, truth = simulate_frame((200, 300), sky_e=80.0, dark_e=20.0, read_noise_e=6.0, seed=3)
    assert f.dtype == np.float32 and f.shape == (200, 300)
    n = f.size
    # mean: sky + dark within 5 standard errors; variance: Poisson + read noise
    assert abs(f.mean() - 100.0) < 5 * np.sqrt(136.0 / n)
    assert f.std() == pytest.approx(np.sqrt(100.0 + 36.0), rel=0.02)
    assert robust_noise(f) == pytest.approx(np.sqrt(136.0), rel=0.05)
    assert not truth["star"].any() and not truth["hot_column"].any() and not truth["bleed"].any()


def test_frame_is_reproducible():
    a, _ = simulate_frame((64, 64), n_stars=3, hot_columns=1, seed=7)
    b, _ = simulate_frame((64, 64), n_stars=3, hot_columns=1, seed=7)
    c, _ = simulate_frame((64, 64), n_stars=3, hot_columns=1, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_star_flux_and_bleed_conserve_charge():
    # one faint and one saturating star, separate, no read noise to keep the sums clean
    rng_seed = 11
    f, truth = simulate_frame((160, 160), sky_e=0.0, dark_e=0.0, read_noise_e=0.0, n_stars=6,
                              star_flux_e=(5e3, 5e6), saturation_e=1e5, seed=rng_seed)
    stars = truth["stars"]
    total = stars["flux_e"].sum()
    # with no sky, every electron in the frame belongs to a star (bleeds only move charge)
    assert f.sum() == pytest.approx(total, rel=0.01)
    assert f.max() <= 1e5 + 1e-3
    if stars["saturated"].any():
        bleed = truth["bleed"]
        assert bleed.any()
        # bleeds run along columns: more rows than columns
        rows = np.flatnonzero(bleed.any(axis=1))
        cols = np.flatnonzero(bleed.any(axis=0))
        assert rows.size > cols.size


def test_hot_column_truth():
    f, truth = simulate_frame((100, 80), sky_e=50.0, dark_e=0.0, read_noise_e=3.0, hot_columns=1,
                              hot_column_e=(1000.0, 1000.0), seed=5)
    c, r0, r1, extra = truth["hot_columns"][0]
    assert extra == pytest.approx(1000.0)
    col = f[r0:r1 + 1, c]
    assert col.mean() == pytest.approx(1050.0, rel=0.02)
    assert truth["hot_column"][:, c].sum() == r1 - r0 + 1
    assert truth["hot_column"].sum() == r1 - r0 + 1


def test_injection_bookkeeping():
    f, _ = simulate_frame((256, 256), seed=1)
    inj = inject_cosmic_rays(f, n_hits=60, seed=2)
    assert inj.image.dtype == np.float32 and inj.mask.dtype == bool and inj.hit_id.dtype == np.int32
    # the image is the frame plus the hit charge; the mask is that charge above the threshold
    assert np.allclose(inj.image, f + inj.charge, atol=1e-2)
    assert np.array_equal(inj.mask, inj.charge >= inj.threshold_e)
    assert np.array_equal(inj.mask, inj.hit_id > 0)
    assert len(inj.hits) == 60 and set(inj.hits["kind"]) <= {"spot", "track", "worm"}
    assert inj.hits["n_pixels"].sum() == inj.mask.sum()
    assert inj.hits["energy_e"].sum() == pytest.approx(float(inj.charge.sum(), ), rel=1e-4)
    # every hit's pixels: the ids in the map are those in the table
    ids = set(np.unique(inj.hit_id)) - {0}
    assert ids == set(inj.hits.loc[inj.hits["n_pixels"] > 0, "id"])
    # threshold: twice the pixel noise of the frame
    assert inj.threshold_e == pytest.approx(2 * np.sqrt(105.0 + 25.0), rel=0.08)
    again = inject_cosmic_rays(f, n_hits=60, seed=2)
    assert np.array_equal(again.image, inj.image)


def test_incidence_is_cos_weighted_and_spots_follow_geometry():
    f = np.zeros((400, 400), np.float32)
    inj = inject_cosmic_rays(f, n_hits=1500, worm_fraction=0.0, thickness_um=20.0, pixel_size_um=15.0,
                             mask_threshold_e=20.0, seed=4)
    h = inj.hits
    cos_t = np.cos(np.radians(h["theta_deg"].to_numpy()))
    # cos(theta)^2 is uniform on [0, 1] for an isotropic flux through a plane
    assert stats.kstest(cos_t**2, "uniform").pvalue > 0.001
    # spot fraction: projected length t tan(theta)/pixel <= 2 px  <=>  cos(theta) >= 1/sqrt(1 + 1.5^2)
    expect = 1.0 - 1.0 / (1.0 + 1.5**2)
    frac = float((h["kind"] == "spot").mean())
    assert abs(frac - expect) < 4 * np.sqrt(expect * (1 - expect) / len(h))
    # path length in silicon = thickness / cos(theta)
    assert np.allclose(h["path_um"], 20.0 / cos_t, rtol=1e-6)
    # azimuths uniform
    assert stats.kstest(h["angle_deg"] / 180.0, "uniform").pvalue > 0.001


def test_energy_is_landau_like_per_micron():
    f = np.zeros((300, 300), np.float32)
    inj = inject_cosmic_rays(f, n_hits=1500, worm_fraction=0.0, seed=9, mask_threshold_e=5.0)
    h = inj.hits[inj.hits["z"] == 1]
    per_um = (h["energy_generated_e"] / h["path_um"]).to_numpy()
    # median of a Moyal with loc 75 and scale 15 (independent computation)
    assert np.median(per_um) == pytest.approx(stats.moyal.median(loc=75.0, scale=15.0), rel=0.05)
    assert stats.skew(per_um) > 1.0  # long high-energy tail
    # helium deposits about 4x a proton's at the same path
    he = inj.hits[inj.hits["z"] == 2]
    if len(he) > 20:
        ratio = np.median(he["energy_generated_e"] / he["path_um"]) / np.median(per_um)
        assert 3.0 < ratio < 5.0


def test_rate_gives_poisson_counts():
    f = np.zeros((100, 100), np.float32)
    area_cm2 = (100 * 15e-4) ** 2
    counts = [inject_cosmic_rays(f, rate_per_cm2_s=4.0, exposure_s=200.0, seed=s).params["n_hits"]
              for s in range(30)]
    mean = 4.0 * area_cm2 * 200.0  # 18 hits
    assert abs(np.mean(counts) - mean) < 4 * np.sqrt(mean / 30)


def test_long_track_length_matches_mask():
    f = np.zeros((300, 300), np.float32)
    inj = inject_cosmic_rays(f, n_hits=900, worm_fraction=0.0, mask_threshold_e=30.0, seed=12)
    h = inj.hits
    inside = (h["kind"] == "track") & (h["length_px"] > 8)
    inside &= (h[["x0", "y0"]].min(axis=1) > 40) & (h[["x0", "y0"]].max(axis=1) < 260)
    inside &= h["length_px"] < 35
    checked = 0
    for _, row in h[inside].iterrows():
        yy, xx = np.nonzero(inj.hit_id == row["id"])
        if yy.size < 5:
            continue
        extent = np.hypot(xx.max() - xx.min(), yy.max() - yy.min())
        assert abs(extent - row["length_px"]) < 3.5
        checked += 1
    assert checked >= 5


def test_worms_curl_and_deposit_whole_energy():
    f = np.zeros((300, 300), np.float32)
    inj = inject_cosmic_rays(f, n_hits=80, worm_fraction=1.0, mask_threshold_e=20.0, seed=6)
    h = inj.hits
    assert (h["kind"] == "worm").all()
    e_kev = h["energy_generated_e"] * 3.62e-3
    assert e_kev.between(80.0, 400.0).all()
    # path along the walk exceeds the end-to-end distance (curly)
    assert np.median(h["path_um"] / 15.0 / np.maximum(h["length_px"], 1e-3)) > 1.2


def test_nonfinite_pixels_get_no_hits():
    f = np.zeros((64, 64), np.float32)
    f[:, :32] = np.nan
    inj = inject_cosmic_rays(f, n_hits=40, mask_threshold_e=10.0, seed=1)
    assert not inj.mask[:, :32].any()


def test_bad_arguments():
    with pytest.raises(ValueError):
        inject_cosmic_rays(np.zeros((3, 4, 5)), n_hits=1)
    with pytest.raises(ValueError):
        inject_cosmic_rays(np.zeros((10, 10)))
