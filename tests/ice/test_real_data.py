"""Real HiRISE EDR channels and ISIS crops from ../shared/data through `ice chunk` and `ice scan`."""

import csv
import json

import numpy as np
import pytest

from orbitml.cli.main import cli_run
from orbitml.ice import chunks as chunks_mod
from orbitml.tiling.chunker import chunk_offsets
from tests.conftest import shared_file
from tests.ice.conftest import TINY_MODEL

EDRS = ["mars/hirise/PSP_001446_1790_BG12_0.IMG", "mars/hirise/PSP_001331_2260_IR10_1.IMG"]
CUBES = ["mars/hirise/PSP_009404_2635_RED_NLstretch_1m_o_forPDS_cropped.cub",
         "mars/hirise/PSP_002118_1510_1m_o_forPDS_cropped.cub"]


@pytest.fixture(scope="module")
def edr_model(tmp_path_factory):
    """A small model for 128 px chunks (input 16 px), trained for one epoch on simulated tiles."""
    from orbitml.ice.simdata import simulate_dataset
    from orbitml.ice.train import load_train_manifest, train

    out = tmp_path_factory.mktemp("edrsim")
    simulate_dataset(out, n_train=4, n_heldout=0, shape=(256, 256), chunk=128, input_size=16, seed=1, epochs=1,
                     model=TINY_MODEL)
    man = load_train_manifest(out / "train.yaml")
    train(man)
    return man.out


@pytest.fixture()
def reads(monkeypatch):
    """Every window the ice code reads: (rows, cols)."""
    seen = []
    orig = chunks_mod.GraySource.read

    def rec(self, r0, r1, c0=0, c1=None):
        c1 = self.width if c1 is None else c1
        seen.append((r1 - r0, c1 - c0, self.height, self.width))
        return orig(self, r0, r1, c0, c1)

    monkeypatch.setattr(chunks_mod.GraySource, "read", rec)
    return seen


def _pixels(path):
    from orbitml.io import open_scene

    return np.asarray(open_scene(path).data[0])


@pytest.mark.parametrize("rel,scan", [(EDRS[0], True), (EDRS[1], False)])
def test_edr_chunk_and_scan_end_to_end(rel, scan, request, tmp_path, reads):
    p = shared_file(rel)
    px = _pixels(p)
    h, w = px.shape
    assert cli_run(["ice", "chunk", str(p), "--out", str(tmp_path / "c"), "--size", "128"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "c" / f"{p.stem}_chunks.csv")))
    assert len(rows) == len(chunk_offsets(h, 128, 64)) * len(chunk_offsets(w, 128, 64))
    for r in rows:  # no-data policy (the paper's): a chunk is dropped iff it has a black (0) or no-data (255) pixel
        win = px[int(r["row"]):int(r["row"]) + 128, int(r["col"]):int(r["col"]) + 128]
        assert (r["kept"] == "True") == (not ((win == 0) | (win == 255)).any())
    gj = json.loads((tmp_path / "c" / f"{p.stem}_chunks.geojson").read_text())
    assert "crs" not in gj  # an EDR has no map projection: footprints are in pixel coordinates
    f = gj["features"][5]["geometry"]["coordinates"][0]
    assert f[0] == [gj["features"][5]["properties"]["col"], gj["features"][5]["properties"]["row"]]
    assert reads and max(r for r, _, _, _ in reads) <= 128  # chunk rows only
    if not scan:  # the second channel: chunking only (keeps the test folder fast)
        return
    edr_model = request.getfixturevalue("edr_model")
    assert cli_run(["ice", "scan", str(p), "--model", edr_model, "--out", str(tmp_path / "s")]) == 0
    s = json.loads((tmp_path / "s" / f"{p.stem}.scan.json").read_text())
    assert s["chunks_kept"] == sum(r["kept"] == "True" for r in rows) and s["height"] == h
    assert "simulated" in s["notice"]
    # nothing loaded whole: every window is at most a strip of ~1024 rows, never the whole image
    assert reads and max(r for r, _, _, _ in reads) <= 1024 < h


@pytest.mark.parametrize("rel", CUBES)
def test_isis_crop_footprints_in_the_product_crs(rel, ice_models, tmp_path):
    import rasterio

    p = shared_file(rel)
    assert cli_run(["ice", "chunk", str(p), "--out", str(tmp_path / "c"), "--size", "32"]) == 0
    gj = json.loads((tmp_path / "c" / f"{p.stem}_chunks.geojson").read_text())
    with rasterio.open(p) as ds:
        tr, wkt = ds.transform, ds.crs.to_wkt()
        px = ds.read(1)
    assert gj["crs_wkt"] == wkt and "Mars" in wkt
    for feat in gj["features"]:
        r, c = feat["properties"]["row"], feat["properties"]["col"]
        ring = feat["geometry"]["coordinates"][0]
        assert ring[0] == pytest.approx(list(tr * (c, r))) and ring[2] == pytest.approx(list(tr * (c + 32, r + 32)))
        assert feat["properties"]["kept"] == (not (px[r:r + 32, c:c + 32] == 0).any())
    code = cli_run(["ice", "scan", str(p), "--model", ice_models["improved"][0], "--out", str(tmp_path / "s")])
    assert code == 0
    sj = json.loads((tmp_path / "s" / f"{p.stem}_chunks.geojson").read_text())
    assert sj["crs_wkt"] == wkt
    assert all((f["properties"]["prob"] is None) != f["properties"]["kept"] for f in sj["features"])


def test_corrupt_jp2_in_a_batch_is_skipped_and_alone_is_one_error(ice_models, tmp_path, capsys):
    from orbitml.simulate.hirise import simulate_hirise
    from tests.ice._data import write_rdr

    img, _ = simulate_hirise((96, 96), seed=2)
    jp2, lbl = write_rdr(tmp_path, img, "PSP_000009_1234_RED")
    bad = tmp_path / "CUT.JP2"
    bad.write_bytes(jp2.read_bytes()[: jp2.stat().st_size // 2])
    model = ice_models["improved"][0]
    assert cli_run(["ice", "scan", str(lbl), str(bad), "--model", model, "--out", str(tmp_path / "s")]) == 0
    err = capsys.readouterr().err
    assert "CUT.JP2" in err and "1 failed" in err
    assert (tmp_path / "s" / "PSP_000009_1234_RED.scan.json").exists()
    assert cli_run(["ice", "scan", str(bad), "--model", model, "--out", str(tmp_path / "s2")]) == 2
    assert "no image could be scanned" in capsys.readouterr().err
    small = tmp_path / "tiny.tif"
    from orbitml.simulate.hirise import write_hirise

    write_hirise(small, simulate_hirise((32, 32), seed=0)[0][:20])
    assert cli_run(["ice", "scan", str(small), "--model", model, "--out", str(tmp_path / "s3")]) == 2
    assert "smaller than the model's chunk size" in capsys.readouterr().err
