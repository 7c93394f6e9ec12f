"""Hit rates from a catalogue (orbitml.cosmic.rates, `orbitml cosmic rate`): recover a known flux."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from orbitml.cli.main import cli_run
from orbitml.cosmic.catalog import CLASSES, build_catalog, write_catalog
from orbitml.cosmic.categorise import HitClassifier
from orbitml.cosmic.products import write_product_arrays as write_product
from orbitml.cosmic.rates import binned_rates, constancy_chi2, frame_rates, gehrels_limits, parse_classes
from orbitml.errors import OrbitmlInputError
from orbitml.simulate.ccd import inject_cosmic_rays, simulate_frame

PIX_UM, EXPTIME, SHAPE = 15.0, 100.0, (256, 256)
AREA = SHAPE[0] * SHAPE[1] * (PIX_UM * 1e-4) ** 2  # 0.147 cm^2


def _series(folder, rates_by_day, per_day=3, seed=0):
    """Products of frames whose true flux changes by day; returns their paths and true counts."""
    paths, truth = [], []
    k = 0
    for day, rate in enumerate(rates_by_day):
        for j in range(per_day):
            frame, _ = simulate_frame(SHAPE, seed=seed + k)
            inj = inject_cosmic_rays(frame, rate_per_cm2_s=rate, exposure_s=EXPTIME, pixel_size_um=PIX_UM,
                                     seed=seed + 1000 + k)
            hdr = {"EXPTIME": EXPTIME, "DATE-OBS": f"2025-01-{10 + day:02d}T{3 + 6 * j:02d}:00:00",
                   "GAIN": 1.5, "PIXSIZE": PIX_UM, "DETMETH": "stack"}
            paths.append(write_product(folder / f"f{k:02d}.cosmic.fits", inj.image / 1.5, frame / 1.5,
                                       inj.mask, hdr))
            truth.append(inj.params["n_hits"])
            k += 1
    return paths, truth


def test_gehrels_limits_known_values():
    lo, hi = gehrels_limits([0, 1, 10])
    # Gehrels (1986) table 1/3, S = 1: upper 1.841, 3.300, 14.27; lower 0, 0.173, 6.891
    assert hi == pytest.approx([1.866, 3.323, 14.27], abs=0.03)
    assert lo == pytest.approx([0.0, 0.173, 6.891], abs=0.01)


def test_recover_constant_rate_within_poisson_error(tmp_path):
    true_rate = 4.0
    paths, truth = _series(tmp_path, [true_rate], per_day=6)
    hits, frames, errors = build_catalog(paths, HitClassifier("rules"))
    assert not errors
    per, notes = frame_rates(hits, frames, CLASSES)  # count every region: classification aside
    assert not notes and len(per) == 6
    # per frame: detected regions = injected hits, but for the few that overlap or break up
    assert np.all(np.abs(per["n_hits"].to_numpy() - np.array(truth)) <= 0.05 * np.array(truth))
    s = constancy_chi2(per)
    expected_err = np.sqrt(true_rate / (6 * AREA * EXPTIME))
    assert abs(s["pooled_rate"] - true_rate) < 3 * expected_err
    assert s["pooled_err"] == pytest.approx(expected_err, rel=0.15)
    assert per["rate"].to_numpy() == pytest.approx(per["n_hits"] / (AREA * EXPTIME))


def test_recover_changing_rate_by_day(tmp_path):
    truth_rates = [2.0, 6.0, 3.0]
    paths, _ = _series(tmp_path, truth_rates, per_day=3, seed=50)
    hits, frames, _ = build_catalog(paths, HitClassifier("rules"))
    per, _ = frame_rates(hits, frames, CLASSES)
    b = binned_rates(per, "1d")
    assert len(b) == 3 and list(b["n_frames"]) == [3, 3, 3]
    assert list(b["time_start"].dt.day) == [10, 11, 12]
    for r, (_, row) in zip(truth_rates, b.iterrows(), strict=True):
        err = np.sqrt(r / (3 * AREA * EXPTIME))
        assert abs(row["rate"] - r) < 3.5 * err
        assert row["rate_lo"] < row["rate"] < row["rate_hi"]
    # mid-exposure times 03:00:50, 09:00:50, 15:00:50 -> mean 09:00:50
    assert b["time"].iloc[0] == pd.Timestamp("2025-01-10T09:00:50")
    assert constancy_chi2(b)["p_value"] < 1e-3  # a changing flux is not constant


def test_class_selection_and_missing_exposure():
    hits = pd.DataFrame({"frame": ["a", "a", "b", "b"], "class": ["spot", "star", "track", "worm"],
                         "energy_e": [1.0, 2.0, 3.0, 4.0]})
    frames = pd.DataFrame({"frame": ["a", "b", "c"], "time": ["2025-01-01T00:00:00"] * 3,
                           "exptime_s": [10.0, 10.0, np.nan], "area_cm2": [1.0, 2.0, 1.0],
                           "n_valid_pixels": [1, 2, 1]})
    per, notes = frame_rates(hits, frames, ("spot", "track", "worm"))
    assert list(per["n_hits"]) == [1, 2] and per["rate"].tolist() == pytest.approx([0.1, 0.1])
    assert len(notes) == 1 and notes[0].startswith("c:")
    assert parse_classes("track, worm") == ("track", "worm")
    with pytest.raises(OrbitmlInputError):
        parse_classes("muon")


def test_cli_rate_end_to_end(tmp_path, capsys):
    d = tmp_path / "products"
    d.mkdir()
    _series(d, [3.0, 5.0], per_day=2, seed=7)
    cat = tmp_path / "catalog.parquet"
    assert cli_run(["cosmic", "catalog", str(d), "--out", str(cat), "--classifier", "rules"]) == 0
    out = tmp_path / "rates"
    code = cli_run(["cosmic", "rate", str(cat), "--out", str(out), "--bin", "1d", "--class",
                    "spot,track,worm"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "pooled rate" in cap.out
    per = pd.read_csv(out / "rates.csv")
    binned = pd.read_csv(out / "rates_binned.csv")
    assert len(per) == 4 and len(binned) == 2
    assert binned["n_hits"].sum() == per["n_hits"].sum()
    assert (out / "rates.png").stat().st_size > 5000 and (out / "rates.run.json").is_file()
    assert (out / "hits.png").stat().st_size > 5000
    st = pd.read_csv(out / "hit_stats.csv").set_index("class")
    hits = pd.read_parquet(cat)
    for c in ("spot", "track", "worm"):
        h = hits[hits["class"] == c]
        assert st.loc[c, "n"] == len(h)
        if len(h):
            assert st.loc[c, "energy_e_median"] == pytest.approx(np.median(h["energy_e"]))
    assert st["n"].sum() == per["n_hits"].sum()
    # consistency with the binomial/Poisson pooling: bin rate = sum n / sum exposure
    first = per.iloc[:2]
    assert binned["rate"].iloc[0] == pytest.approx(first["n_hits"].sum() / first["exposure_cm2_s"].sum())
    assert cli_run(["cosmic", "rate", str(cat), "--out", str(out)]) == 2  # exists, no --overwrite
    assert cli_run(["cosmic", "rate", str(cat), "--out", str(out), "--class", "muon"]) == 2
    assert cli_run(["cosmic", "rate", str(tmp_path / "nope.csv"), "--out", str(out)]) == 2
    assert cli_run(["cosmic", "rate", str(cat), "--out", str(tmp_path / "r2"), "--bin", "fortnightly"]) == 2


def test_write_catalog_rejects_suffix(tmp_path):
    with pytest.raises(OrbitmlInputError):
        write_catalog(pd.DataFrame(), pd.DataFrame(), tmp_path / "x.json")


def test_chi2_constant_rate_is_calibrated():
    rng = np.random.default_rng(0)
    ex = np.full(40, 10.0)
    n = rng.poisson(5.0 * ex)
    s = constancy_chi2(pd.DataFrame({"n_hits": n, "exposure_cm2_s": ex}))
    assert s["dof"] == 39 and s["p_value"] > 0.001
    assert s["chi2"] == pytest.approx(stats.chisquare(n, np.full(40, n.mean()))[0])
