import numpy as np
import pytest
from scipy import ndimage as ndi

from orbitml.cosmic.detect import block_background, clean_frame, detect_lacosmic
from orbitml.cosmic.evaluate import false_regions_outside, hit_metrics
from orbitml.cosmic.ingest import Frame, read_frame
from tests.conftest import shared_file

GMOS_BOXES = [(slice(41, 72), slice(142, 161)), (slice(117, 147), slice(35, 43))]


def _frame(data_e, gain=2.0, rn=5.0):
    data = np.asarray(data_e, np.float32) / gain
    return Frame(path="sim", data=data, gain=gain, read_noise=rn, exptime=100.0, time=None, pixel_size_um=15.0,
                 instrument="generic", saturation_adu=np.inf, bad=np.zeros(data.shape, bool))


def test_gmos_both_known_cosmic_rays_found(shared_data):
    fr = read_frame(shared_file("ccd/gmos_S20190808S0048_cutout.fits"))
    for bkg in ("provided", "median", "none"):
        det = detect_lacosmic(fr, background=bkg)
        false, hit = false_regions_outside(det.mask, GMOS_BOXES)
        assert hit == [True, True], bkg
        assert false <= 1, bkg
        lab, _ = ndi.label(det.mask, structure=np.ones((3, 3)))
        objs = ndi.find_objects(lab)
        # the published boxes are the bounding boxes of the two hits (to within a pixel)
        for rs, cs in GMOS_BOXES:
            assert any(abs(o[0].start - rs.start) <= 1 and o[0].stop == rs.stop and o[1] == cs for o in objs)


def test_gain_is_passed_through():
    # the same electrons expressed in ADU with two different gains give the same mask
    from orbitml.simulate.ccd import inject_cosmic_rays, simulate_frame

    base, _ = simulate_frame((80, 80), sky_e=300.0, read_noise_e=5.0, seed=1)
    inj = inject_cosmic_rays(base, n_hits=5, seed=2)
    m1 = detect_lacosmic(_frame(inj.image, gain=1.0)).mask
    m2 = detect_lacosmic(_frame(inj.image, gain=4.0)).mask
    assert np.array_equal(m1, m2)
    hm = hit_metrics(m1, inj.hit_id)
    assert hm["recall"] >= 0.6 and hm["precision"] >= 0.8
    # a wrong (10x too high) gain under-predicts the noise (sqrt(10 N) vs 10 sqrt(N)): sky noise is flagged
    wrong = Frame(**{**_frame(inj.image, gain=1.0).__dict__, "gain": 10.0})
    assert detect_lacosmic(wrong).mask.sum() > 5 * m1.sum()


def test_saturated_pixels_never_flagged():
    rng = np.random.default_rng(0)
    img = rng.normal(1000, 30, (60, 60)).astype(np.float32)
    img[30, 30] = 60000.0  # a single hot saturated pixel looks like a hit
    fr = _frame(img, gain=1.0)
    assert detect_lacosmic(fr).mask[30, 30]
    fr.saturation_adu = 50000.0
    fr.bad = img >= 50000
    assert not detect_lacosmic(fr).mask[30, 30]


def test_clean_frame_local_median():
    data = np.arange(100, dtype=np.float32).reshape(10, 10)
    mask = np.zeros((10, 10), bool)
    mask[5, 5] = True
    out = clean_frame(data, mask)
    win = data[3:8, 3:8].ravel().tolist()
    win.remove(55.0)
    assert out[5, 5] == pytest.approx(np.median(win))
    assert np.array_equal(out[~mask], data[~mask])
    big = np.zeros((10, 10), bool)
    big[:, 2:9] = True  # wider than the first window: it grows
    assert np.all(np.isfinite(clean_frame(data, big)))


def test_block_background_recovers_smooth_sky():
    yy, xx = np.mgrid[0:128, 0:160]
    sky = 100 + 0.2 * yy + 0.1 * xx
    img = sky + np.random.default_rng(0).normal(0, 2, sky.shape)
    img[50:53, 60:63] += 5000  # a star does not pull the background up
    bkg = block_background(img, box=32)
    assert np.abs(bkg - sky)[32:-32, 32:-32].max() < 2.0  # within one noise sigma; corners see a clipped median
    assert np.abs(bkg - sky).max() < 6.0
