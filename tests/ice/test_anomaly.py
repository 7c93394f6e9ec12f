import numpy as np

from orbitml.ice.anomaly import AnomalySettings, detect_defects, repair_defects
from orbitml.simulate.hirise import plant_defects, simulate_hirise


def test_planted_defects_are_found_at_their_positions():
    hits = planted = flagged = 0
    for seed in range(3):
        img, tr = simulate_hirise((256, 256), n_ice=3, n_dust=2, n_hot=25, n_lines=4, seed=seed)
        mask, rep = detect_defects(img, ~tr.nodata)
        hits += int((mask & tr.defects).sum())
        planted += int(tr.defects.sum())
        flagged += int(mask.sum())
        assert rep.pixels == int(mask.sum()) and rep.hot_pixels >= 20 and rep.lines >= 1
        assert not (mask & tr.ice).any()
    assert hits / planted >= 0.95  # recall
    assert hits / flagged >= 0.8  # precision


def test_clean_terrain_is_left_alone():
    changed = total = 0
    for seed in range(3):
        img, tr = simulate_hirise((256, 256), n_ice=4, n_dust=3, seed=10 + seed)
        out, mask, _ = repair_defects(img, ~tr.nodata)
        changed += int((out != img).sum())
        total += int((~tr.nodata).sum())
        assert np.array_equal(out[tr.ice], img[tr.ice])  # ice patches untouched
        assert np.array_equal(out[tr.nodata], img[tr.nodata])
    assert changed / total < 2e-4


def test_repair_restores_the_terrain_under_the_defects():
    clean, tr = simulate_hirise((256, 256), n_ice=2, seed=7)
    img = clean.copy()
    hot, lines = plant_defects(img, 30, 4, np.random.default_rng(1), ~tr.nodata)
    d = hot | lines
    out, mask, rep = repair_defects(img, ~tr.nodata)
    err_before = np.abs(img.astype(float) - clean)[d].mean()
    err_after = np.abs(out.astype(float) - clean)[d].mean()
    assert err_before > 50 and err_after < 12
    assert rep.hot_pixels + rep.lines >= 30


def test_disabled_settings_round_trip():
    s = AnomalySettings(k=5.0)
    assert AnomalySettings.from_dict(s.to_dict()) == s
    assert AnomalySettings.from_dict(None).enabled is False


def test_median_network_equals_numpy_median():
    from orbitml.ice.anomaly import median9

    v = np.random.default_rng(0).integers(0, 20, size=(9, 5000)).astype(np.float32)  # many ties
    assert np.array_equal(median9(list(v)), np.median(v, axis=0))
