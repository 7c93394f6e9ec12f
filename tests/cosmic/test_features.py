"""Per-hit features (orbitml.cosmic.features) on shapes with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.cosmic.features import FEATURE_COLUMNS, hit_table, label_hits, replace_masked_median


def _frame(shape=(40, 40), bg=10.0):
    return np.full(shape, bg, np.float32)


def test_horizontal_line():
    sci = _frame()
    sci[20, 5:12] += 100.0
    mask = sci > 50
    t = hit_table(sci, _frame(), mask)
    assert len(t) == 1
    r = t.iloc[0]
    assert r["n_pixels"] == 7 and r["energy_e"] == pytest.approx(700.0) and r["peak_e"] == pytest.approx(100.0)
    assert r["x"] == pytest.approx(8.0) and r["y"] == pytest.approx(20.0)
    assert r["length_px"] == pytest.approx(7.0) and r["width_px"] == pytest.approx(1.0)
    assert r["orientation_deg"] == pytest.approx(0.0, abs=1e-6) or r["orientation_deg"] == pytest.approx(180.0)
    # second moments of 7 equal pixels: var = (7^2 - 1)/12 + 1/12 (pixel width)
    assert r["mxx"] == pytest.approx(48 / 12 + 1 / 12) and r["myy"] == pytest.approx(1 / 12)
    assert r["curvature"] == pytest.approx(1.0)
    assert r["column_frac"] == pytest.approx(1 / 7)


def test_vertical_and_diagonal_orientation():
    sci = _frame()
    sci[5:15, 30] += 50.0
    for k in range(8):
        sci[20 + k, 5 + k] += 80.0
    t = hit_table(sci, _frame(), sci > 40).sort_values("x").reset_index(drop=True)
    assert len(t) == 2
    diag, vert = t.iloc[0], t.iloc[1]
    assert vert["orientation_deg"] == pytest.approx(90.0) and vert["column_frac"] == 1.0
    assert vert["bbox_h"] == 10 and vert["bbox_w"] == 1
    # y grows with x: 45 degrees from +x towards +y; extent along it (n-1) sqrt(2) + 1
    assert diag["orientation_deg"] == pytest.approx(45.0)
    assert diag["length_px"] == pytest.approx(7 * np.sqrt(2) + 1)
    assert diag["curvature"] == pytest.approx(1.0, abs=0.05)


def test_curved_hit_has_curvature():
    sci = _frame((50, 50))
    # a U: down one column, along a row, up another
    sci[10:30, 10] += 60
    sci[30, 10:25] += 60
    sci[10:31, 25] += 60
    t = hit_table(sci, _frame((50, 50)), sci > 30)
    assert len(t) == 1
    # skeleton length ~ 20 + 15 + 20 = 55 px, end-to-end 15 px
    assert 2.8 < t.iloc[0]["curvature"] < 4.2


def test_gaussian_blob_moments_and_sharpness():
    yy, xx = np.mgrid[0:41, 0:41]
    sig = 2.0
    blob = 5000 * np.exp(-((xx - 20.3) ** 2 + (yy - 19.6) ** 2) / (2 * sig**2))
    sci = 10 + blob.astype(np.float32)
    mask = blob > 5
    t = hit_table(sci, _frame((41, 41)), mask)
    r = t.iloc[0]
    w = blob * mask
    assert r["x"] == pytest.approx((w * xx).sum() / w.sum()) and r["y"] == pytest.approx((w * yy).sum() / w.sum())
    assert r["mxx"] == pytest.approx(sig**2 + 1 / 12, rel=0.05)
    assert r["elongation"] == pytest.approx(1.0, abs=0.02)
    # a smooth PSF: the peak is not much above its neighbours (a cosmic-ray spot would be)
    assert r["sharpness"] < 2.0


def test_eight_connectivity_and_energy_excess():
    sci = _frame()
    clean = _frame()
    sci[10, 10] = 110
    sci[11, 11] = 60  # diagonal neighbour: same component
    sci[30, 30] = 40
    mask = sci > 20
    lab, n = label_hits(mask)
    assert n == 2
    t = hit_table(sci, clean, mask).sort_values("y")
    assert list(t["n_pixels"]) == [2, 1]
    assert t.iloc[0]["energy_e"] == pytest.approx(100 + 50)
    assert t.iloc[1]["energy_e"] == pytest.approx(30)


def test_empty_mask_and_shape_errors():
    t = hit_table(_frame(), _frame(), np.zeros((40, 40), bool))
    assert len(t) == 0 and list(t.columns) == FEATURE_COLUMNS
    with pytest.raises(ValueError):
        hit_table(_frame(), _frame((30, 30)), np.zeros((40, 40), bool))


def test_replace_masked_median():
    img = np.arange(100, dtype=np.float32).reshape(10, 10)
    mask = np.zeros((10, 10), bool)
    mask[5, 5] = True
    out = replace_masked_median(img, mask, pad=1)
    ring = img[4:7, 4:7].ravel()
    ring = np.delete(ring, 4)
    assert out[5, 5] == pytest.approx(np.median(ring))
    assert np.array_equal(np.delete(out.ravel(), 55), np.delete(img.ravel(), 55))
