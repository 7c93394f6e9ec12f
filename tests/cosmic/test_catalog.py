"""Catalogue of hits from detection products (orbitml.cosmic.catalog, `orbitml cosmic catalog`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from orbitml.cli.main import cli_run
from orbitml.cosmic.catalog import (
    CLASSES,
    HIT_COLUMNS,
    build_catalog,
    read_catalog,
)
from orbitml.cosmic.categorise import HitClassifier, simulate_labelled_hits
from orbitml.cosmic.features import label_hits
from orbitml.cosmic.products import read_product
from orbitml.cosmic.products import write_product_arrays as write_product
from orbitml.errors import OrbitmlInputError
from orbitml.simulate.ccd import inject_cosmic_rays, simulate_frame

GAIN = 2.0


def _header(i: int, **kw):
    h = {"ORBSRC": f"frame{i}.fits", "EXPTIME": 100.0, "DATE-OBS": f"2024-03-0{1 + i}T12:00:00",
         "GAIN": GAIN, "RDNOISE": 5.0, "PIXSIZE": 15.0, "INSTRUME": "SIM", "DETMETH": "lacosmic",
         "ORBGAINS": "header"}
    h.update(kw)
    return h


def _product(tmp_path, i, n_hits=30, shape=(128, 128), **hkw):
    frame, _ = simulate_frame(shape, seed=100 + i)
    inj = inject_cosmic_rays(frame, n_hits=n_hits, seed=200 + i)
    path = write_product(tmp_path / f"frame{i}.cosmic.fits", inj.image / GAIN, frame / GAIN, inj.mask,
                         _header(i, **hkw))
    return path, inj


def test_product_round_trip(tmp_path):
    path, inj = _product(tmp_path, 0)
    prod = read_product(path)
    assert prod.frame == "frame0" and prod.sci.shape == (128, 128)
    assert np.array_equal(prod.mask, inj.mask)
    assert prod.header["GAIN"] == GAIN and prod.header["ORBVER"]


def test_catalog_energies_positions_and_times(tmp_path):
    path, inj = _product(tmp_path, 0, n_hits=25)
    hits, frames, errors = build_catalog([path], HitClassifier("rules"))
    assert errors == [] and list(hits.columns) == HIT_COLUMNS
    lab, n = label_hits(inj.mask)
    assert len(hits) == n
    # energy: the hit charge (electrons) over each component, computed independently
    expect = ndimage.sum(inj.charge, lab, index=hits["hit"].to_numpy())
    assert np.allclose(hits["energy_e"], expect, rtol=1e-3)
    # isolated hits: centroid near the truth centroid
    truth = inj.hits.set_index("id")
    for _, r in hits.iterrows():
        ids = np.unique(inj.hit_id[lab == r["hit"]])
        if ids.size == 1 and truth.loc[ids[0], "energy_e"] > 0.99 * r["energy_e"]:
            t = truth.loc[ids[0]]
            assert abs(t["x"] - r["x"]) < 0.6 and abs(t["y"] - r["y"]) < 0.6
    assert np.allclose(hits[[f"p_{c}" for c in CLASSES]].sum(axis=1), 1.0)
    f = frames.iloc[0]
    assert f["time"] == "2024-03-01T12:00:50.000" and f["time_start"] == "2024-03-01T12:00:00.000"
    assert f["area_cm2"] == pytest.approx(128 * 128 * (15e-4) ** 2)
    assert f["n_regions"] == n and sum(f[f"n_{c}"] for c in CLASSES) == n
    assert (hits["length_um"] == hits["length_px"] * 15.0).all()


def test_valid_area_excludes_nan_and_saturated(tmp_path):
    frame, _ = simulate_frame((64, 64), seed=1)
    frame[:, :16] = np.nan
    inj = inject_cosmic_rays(frame, n_hits=5, seed=2)
    img = inj.image.copy()
    img[0:4, 40:50] = 6e4
    # EXPTIME -1 is how `cosmic detect` writes an unknown exposure
    p = write_product(tmp_path / "a.cosmic.fits", img, frame, inj.mask,
                      _header(0, GAIN=1.0, SATURATE=6e4, EXPTIME=-1.0))
    _, frames, errors = build_catalog([p], HitClassifier("rules"))
    assert not errors
    assert frames.iloc[0]["n_valid_pixels"] == 64 * 48 - 40
    assert np.isnan(frames.iloc[0]["exptime_s"])


def test_cli_catalog_skips_bad_products(tmp_path, capsys):
    d = tmp_path / "prod"
    d.mkdir()
    _product(d, 0)
    _product(d, 1)
    (d / "broken.cosmic.fits").write_bytes(b"SIMPLE  =  not really a FITS file")
    _product(d, 2, GAIN=None)  # no gain keyword in the product
    from astropy.io import fits

    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((4, 4)), name="SCI")]).writeto(
        d / "nomask.cosmic.fits")
    out = tmp_path / "cat" / "catalog.csv"
    code = cli_run(["cosmic", "catalog", str(d), "--out", str(out), "--classifier", "rules"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "broken.cosmic.fits" in cap.err and "nomask.cosmic.fits" in cap.err and "GAIN" in cap.err
    hits, frames = read_catalog(out)
    assert sorted(frames["frame"]) == ["frame0", "frame1"]
    assert set(hits["frame"]) == {"frame0", "frame1"}
    assert (tmp_path / "cat" / "catalog.run.json").is_file()
    assert "3 skipped" in cap.out
    # existing output is not replaced without --overwrite
    assert cli_run(["cosmic", "catalog", str(d), "--out", str(out), "--classifier", "rules"]) == 2
    assert cli_run(["cosmic", "catalog", str(d), "--out", str(out), "--classifier", "rules",
                    "--overwrite"]) == 0


def test_cli_catalog_parquet_with_saved_model(tmp_path, capsys):
    train = simulate_labelled_hits(3, (128, 128), seed=4)
    clf = HitClassifier(n_estimators=10).fit(train, train["truth"])
    model = clf.save(tmp_path / "hits.safetensors")
    path, _ = _product(tmp_path, 0)
    out = tmp_path / "catalog.parquet"
    assert cli_run(["cosmic", "catalog", str(path), "--out", str(out), "--model", str(model)]) == 0
    hits = pd.read_parquet(out)
    prod = read_product(path)
    from orbitml.cosmic.features import hit_table

    t = hit_table(prod.sci * GAIN, prod.clean * GAIN, prod.mask)
    assert np.allclose(hits[[f"p_{c}" for c in CLASSES]].to_numpy(), clf.predict_proba(t))


def test_cli_catalog_default_forest(tmp_path, monkeypatch, capsys):
    from orbitml.cosmic import categorise

    monkeypatch.setenv("ORBITML_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(categorise.DEFAULT_TRAINING, "n_frames", 2)
    monkeypatch.setitem(categorise.DEFAULT_TRAINING, "shape", [96, 96])
    path, inj = _product(tmp_path, 0)
    out = tmp_path / "catalog.csv"
    assert cli_run(["cosmic", "catalog", str(path), "--out", str(out)]) == 0
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1
    hits, _ = read_catalog(out)
    assert len(hits) == label_hits(inj.mask)[1]
    assert hits["is_cosmic"].mean() > 0.9  # a frame with only cosmic rays


def test_cli_catalog_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli_run(["cosmic", "catalog", str(tmp_path / "empty"), "--out", str(tmp_path / "c.csv")]) == 2
    assert "no *.cosmic.fits" in capsys.readouterr().err
    (tmp_path / "bad.cosmic.fits").write_bytes(b"junk")
    assert cli_run(["cosmic", "catalog", str(tmp_path / "bad.cosmic.fits"), "--out",
                    str(tmp_path / "c.csv"), "--classifier", "rules"]) == 2
    assert "none of the 1 products" in capsys.readouterr().err
    assert cli_run(["cosmic", "catalog", str(tmp_path), "--out", str(tmp_path / "c.txt")]) == 2
    with pytest.raises(OrbitmlInputError):
        read_catalog(tmp_path / "missing.parquet")
