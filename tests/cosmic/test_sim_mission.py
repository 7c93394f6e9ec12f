"""Space-mission frames: companding, coronagraph background, line-scan (TDI) streak hits; long-slit spectra."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from orbitml.simulate.ccd import (
    compand_sqrt,
    decompand_sqrt,
    inject_cosmic_rays,
    robust_noise,
    simulate_frame,
    simulate_mission_frame,
)


def test_companding_round_trip_within_half_a_code():
    dn = np.arange(4096)
    code = compand_sqrt(dn)
    assert code.dtype == np.uint8 and code[0] == 0 and code[-1] == 255
    assert np.all(np.diff(code.astype(int)) >= 0)  # monotonic
    back = decompand_sqrt(code)
    # the error is at most half the bin width, which grows as sqrt(DN) (square-root law)
    width = 4095.0 * ((np.minimum(code + 0.5, 255) / 255) ** 2 - (np.maximum(code - 0.5, 0) / 255) ** 2)
    assert np.all(np.abs(back - dn) <= 0.5 * width + 1e-3)
    assert compand_sqrt(decompand_sqrt(code)).tolist() == code.tolist()


def test_mdis8_chain_has_at_most_256_levels_and_keeps_the_photon_noise():
    f, info = simulate_mission_frame("mdis8", (96, 96), seed=2)
    out = info["chain"](f)
    assert np.unique(out).size <= 256
    f12, info12 = simulate_mission_frame("mdis12", (96, 96), seed=2)
    assert np.array_equal(f, f12)  # same scene, only the read-out differs
    assert np.unique(info12["chain"](f12)).size > 256


def test_lasco_occulter_is_dark_and_corona_falls_off():
    f, info = simulate_mission_frame("lasco", (128, 128), seed=1)
    assert info["gain"] > 1
    yy, xx = np.mgrid[0:128, 0:128]
    r = np.hypot(xx - 64, yy - 64)
    centre, ring, outer = np.median(f[r < 10]), np.median(f[(r > 30) & (r < 36)]), np.median(f[(r > 50) & (r < 56)])
    assert centre < 0.1 * ring and outer < ring


def test_tdi_hits_are_streaks_along_the_scan():
    base, info = simulate_mission_frame("hirise_tdi", (128, 128), seed=3)
    inj = inject_cosmic_rays(base, n_hits=15, tdi_streak_px=(6.0, 12.0), pixel_size_um=12.0, seed=4)
    assert set(inj.hits["kind"]) == {"streak"} and np.allclose(inj.hits["angle_deg"], 90.0)
    boxes = [sl for sl in ndi.find_objects(inj.hit_id) if sl is not None]
    tall = [(s[0].stop - s[0].start) > (s[1].stop - s[1].start) for s in boxes]
    assert np.mean(tall) > 0.8  # extended along y (the lines), narrow across
    dn = info["chain"](inj.image) / info["gain"]
    assert dn.max() <= 255 + 1e-3 and np.allclose(dn, np.round(dn), atol=1e-3)
    # the default (area CCD) injection is unchanged by the new keyword
    a = inject_cosmic_rays(base, n_hits=5, seed=9)
    b = inject_cosmic_rays(base, n_hits=5, seed=9, tdi_streak_px=None)
    assert np.array_equal(a.image, b.image)


def test_longslit_sky_lines_run_along_the_slit_read_out_in_16_bits():
    seen = set()
    for seed in range(12):
        f, info = simulate_mission_frame("longslit", (120, 160), seed=seed)
        assert f.shape == (120, 160) and 1.0 <= info["gain"] <= 3.0 and 3.0 <= info["read_noise_e"] <= 8.0
        # the brighter axis-mean profile is the spectrum (lines); the other axis is the slit, along which
        # each line stays nearly constant: the profile along the dispersion varies far more
        prof_x, prof_y = f.mean(axis=0), f.mean(axis=1)
        disp_axis = 1 if np.ptp(prof_x) > np.ptp(prof_y) else 0
        seen.add(disp_axis)
        spec = f.mean(axis=0 if disp_axis == 1 else 1)
        line = int(np.argmax(spec))
        cut = f[:, line] if disp_axis == 1 else f[line, :]
        mid = cut[cut.size // 4: 3 * cut.size // 4]  # inside the slit whatever its ends
        assert np.median(mid) > 0.5 * spec[line]
        dn = info["chain"](f) / info["gain"]
        assert np.allclose(dn, np.round(dn), atol=1e-3) and dn.max() <= 65535
    assert seen == {0, 1}  # dispersion along x in some frames, along y in others
    a, _ = simulate_mission_frame("longslit", (64, 64), seed=3)
    b, _ = simulate_mission_frame("longslit", (64, 64), seed=3)
    assert np.array_equal(a, b)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown mission kind"):
        simulate_mission_frame("juno", (32, 32))


def test_block_noise_measures_the_pixel_noise_under_structure():
    from orbitml.cosmic.detect import block_noise

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    smooth = 500.0 * np.exp(-((xx - 64) ** 2 + (yy - 64) ** 2) / 800.0)
    sigma = np.where(xx < 64, 3.0, 9.0)
    img = smooth + rng.normal(0.0, 1.0, (128, 128)) * sigma
    nm = block_noise(img)
    assert abs(np.median(nm[:, :24]) - 3.0) < 0.4 and abs(np.median(nm[:, -24:]) - 9.0) < 1.0
    frame, _ = simulate_frame((64, 64), sky_e=400.0, read_noise_e=5.0, seed=1)
    assert abs(np.median(block_noise(frame)) - robust_noise(frame)) < 0.1 * robust_noise(frame)
