import json

import numpy as np
import pytest
import rasterio

from orbitml.cli.main import cli_run
from orbitml.errors import OrbitmlInputError
from orbitml.ice.chunks import chunk_index, open_image
from orbitml.ice.prep import ChunkSettings, downsample, prepare_chunk
from orbitml.simulate.hirise import simulate_hirise, write_hirise
from tests.ice._data import write_rdr


def test_half_overlap_keeps_every_patch_whole_in_some_kept_chunk(tmp_path):
    img, tr = simulate_hirise((256, 256), n_ice=8, n_dust=0, ice_radius=(2, 4), margin=(0, 0), seed=2)
    p = write_hirise(tmp_path / "a.tif", img)
    st = ChunkSettings(chunk=64, input_size=64)
    assert st.overlap == 32
    idx = chunk_index(p, st)
    kept = idx.kept
    for k in range(1, len(tr.patches) + 1):
        rows, cols = np.nonzero(tr.patch_id == k)
        assert any(t.row <= rows.min() and rows.max() < t.row + 64 and t.col <= cols.min() and cols.max() < t.col + 64
                   for t in kept), f"patch {k} is cut in every kept chunk"
    # the paper's grid (no overlap) cuts at least one of them
    paper = chunk_index(p, ChunkSettings(chunk=64, input_size=64, overlap=0)).kept
    assert len(paper) == 16


def test_paper_black_policy_drops_exactly_the_chunks_with_black_pixels(tmp_path):
    img, tr = simulate_hirise((192, 192), margin=(0.05, 0.15), seed=2)
    p = write_hirise(tmp_path / "m.tif", img)
    idx = chunk_index(p, ChunkSettings(chunk=64, input_size=64))
    assert 0 < len(idx.kept) < len(idx.tiles)
    for t in idx.tiles:
        assert t.kept == (not tr.nodata[t.row:t.row + 64, t.col:t.col + 64].any())


def test_footprints_in_the_product_crs(tmp_path):
    img, _ = simulate_hirise((128, 192), margin=(0, 0), seed=1)
    p = write_hirise(tmp_path / "b.tif", img, origin=(5000.0, -3000.0), pixel_m=0.5)
    assert cli_run(["ice", "chunk", str(p), "--out", str(tmp_path / "o"), "--size", "64"]) == 0
    doc = json.loads((tmp_path / "o" / "b_chunks.geojson").read_text())
    with rasterio.open(p) as ds:
        assert doc["crs_wkt"] == ds.crs.to_wkt()
    for f in doc["features"]:
        r, c = f["properties"]["row"], f["properties"]["col"]
        ring = f["geometry"]["coordinates"][0]
        assert ring[0] == pytest.approx([5000.0 + 0.5 * c, -3000.0 - 0.5 * r])
        assert ring[2] == pytest.approx([5000.0 + 0.5 * (c + 64), -3000.0 - 0.5 * (r + 64)])
    # rows 0, 32, 64 and cols 0, 32, ..., 128: 3 x 5 chunks
    assert len(doc["features"]) == 15
    import csv

    rows = list(csv.DictReader(open(tmp_path / "o" / "b_chunks.csv")))
    assert len(rows) == 15 and {"row", "col", "left", "top", "kept"} <= set(rows[0])


def test_rdr_label_with_jp2_reads_by_windows_and_corrupt_jp2_is_one_error(tmp_path, capsys):
    img, _ = simulate_hirise((128, 128), seed=0)
    jp2, lbl = write_rdr(tmp_path, img)
    src = open_image(jp2)  # the label beside it is preferred
    assert src.crs is not None and src.name == lbl.name
    idx = chunk_index(src, ChunkSettings(chunk=32, input_size=32))
    assert max(r1 - r0 for r0, r1, _, _ in src.reads) == 32  # strips of one chunk row, never the whole image
    t = idx.kept[0]
    assert np.array_equal(idx.read(t)[0], img[t.row:t.row + 32, t.col:t.col + 32])
    bad = tmp_path / "BAD.JP2"
    bad.write_bytes(jp2.read_bytes()[: jp2.stat().st_size // 3])
    code = cli_run(["ice", "chunk", str(bad), "--out", str(tmp_path / "o"), "--size", "32"])
    err = capsys.readouterr().err
    assert code == 2 and "BAD.JP2" in err and "JPEG 2000 file is truncated" in err and err.count("\n") == 1


def test_colour_products_are_reduced_to_grayscale_and_incomplete_ones_refused(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(1, 255, size=(3, 64, 64)).astype(np.uint8)
    rgb[:, :, :5] = 0
    p = write_hirise(tmp_path / "PSP_000002_1234_COLOR.tif", rgb)
    src = open_image(p)
    g = src.read(0, 64)[0]
    want = rgb.astype(np.float32).mean(axis=0)
    want[:, :5] = 0
    assert np.allclose(g, want)
    two = write_hirise(tmp_path / "PSP_000003_1234_COLOR.tif", rgb[:2])
    with pytest.raises(OrbitmlInputError, match="colour product without its bands"):
        open_image(two)
    one = write_hirise(tmp_path / "PSP_000004_1234_COLOR.tif", rgb[0])
    with pytest.raises(OrbitmlInputError, match="found 1"):
        open_image(one)


def test_image_without_valid_pixels_is_refused(tmp_path, capsys):
    p = write_hirise(tmp_path / "black.tif", np.zeros((64, 64), np.uint8))
    assert cli_run(["ice", "chunk", str(p), "--out", str(tmp_path / "o"), "--size", "32"]) == 2
    assert "no valid pixels" in capsys.readouterr().err


def test_black_policies_are_configurable(tmp_path):
    img, tr = simulate_hirise((128, 128), margin=(0.1, 0.15), seed=5)
    p = write_hirise(tmp_path / "c.tif", img)
    n_any = len(chunk_index(p, ChunkSettings(chunk=32, input_size=32, black_policy="any")).kept)
    n_keep = len(chunk_index(p, ChunkSettings(chunk=32, input_size=32, black_policy="keep")).kept)
    n_half = len(chunk_index(p, ChunkSettings(chunk=32, input_size=32, black_policy=0.5)).kept)
    assert n_any < n_half < n_keep == 49
    with pytest.raises(OrbitmlInputError, match="black policy"):
        ChunkSettings(chunk=32, input_size=32, black_policy="sometimes")


def test_prepare_chunk_normalises_per_chunk_and_downsamples_by_block_means():
    rng = np.random.default_rng(3)
    x = rng.integers(20, 200, size=(64, 64)).astype(np.float32)
    st = ChunkSettings(chunk=64, input_size=16, anomaly={"enabled": False})
    a, _ = prepare_chunk(x, st)
    b, _ = prepare_chunk(2.0 * x + 30.0, st)  # brightness/contrast of the chunk do not matter
    assert a.shape == (1, 16, 16) and np.allclose(a, b, atol=1e-5)
    z = (x - x.mean()) / x.std()
    assert np.allclose(a[0], z.reshape(16, 4, 16, 4).mean(axis=(1, 3)), atol=1e-5)
    assert np.allclose(downsample(z, 16), a[0], atol=1e-5)
