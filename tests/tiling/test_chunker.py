import csv
import json

import numpy as np
import pytest
from rasterio.crs import CRS

from orbitml.errors import OrbitmlInputError
from orbitml.scene import make_scene
from orbitml.tiling import TileChunker
from orbitml.tiling.chunker import chunk_offsets

from .conftest import MARS_EQC, TRANSFORM, write_tif


@pytest.mark.parametrize("n,size,step", [(100, 30, 30), (90, 30, 30), (100, 30, 20), (31, 30, 10), (30, 30, 5)])
def test_offsets_cover_remainders_with_full_tiles(n, size, step):
    offs = chunk_offsets(n, size, step)
    assert offs[0] == 0 and offs[-1] + size == n
    cover = np.zeros(n, int)
    for o in offs:
        assert 0 <= o <= n - size
        cover[o:o + size] += 1
    assert cover.min() >= 1
    assert all(b - a <= step for a, b in zip(offs, offs[1:], strict=False))


def test_black_policies():
    img = np.full((1, 60, 60), 100, np.uint8)
    img[0, 0:3, 0:3] = 0  # corner of tile (0, 0): outside its centre
    img[0, 45, 45] = 0  # centre of tile (1, 1)
    sc = make_scene(img)
    idx = TileChunker(30).tiles(sc)
    assert len(idx) == 4 and len(idx.kept) == 4
    assert idx.tiles[0].black_fraction == pytest.approx(9 / 900)
    keep = {(t.i, t.j): t.kept for t in TileChunker(30, black_policy=0.0).tiles(sc).tiles}
    assert keep == {(0, 0): False, (0, 1): True, (1, 0): True, (1, 1): False}
    keep = {(t.i, t.j): t.kept for t in TileChunker(30, black_policy=("center", 0.5)).tiles(sc).tiles}
    assert keep == {(0, 0): True, (0, 1): True, (1, 0): True, (1, 1): False}
    keep = {(t.i, t.j): t.kept for t in TileChunker(30, black_policy=0.02).tiles(sc).tiles}
    assert all(keep.values())


def test_csv_and_geojson_index_in_mars_crs(tmp_path):
    data = np.ones((1, 70, 50), np.uint8)
    path = write_tif(tmp_path / "m.tif", data, nodata=0)
    idx = TileChunker(32, overlap=8).tiles(path)
    assert len(idx) == 3 * 2  # rows 0, 24, 38 ; cols 0, 18
    assert [t.row for t in idx.tiles[::2]] == [0, 24, 38] and [t.col for t in idx.tiles[:2]] == [0, 18]
    t = idx.tiles[-1]
    left, top = TRANSFORM * (t.col, t.row)
    assert (t.left, t.top) == (left, top) and t.right - t.left == 32 * 6.0 and t.top - t.bottom == 32 * 6.0
    idx.write(tmp_path / "t.csv")
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert len(rows) == 6 and float(rows[-1]["left"]) == left and rows[0]["kept"] == "True"
    idx.write(tmp_path / "t.geojson")
    doc = json.load(open(tmp_path / "t.geojson"))
    assert CRS.from_wkt(doc["crs_wkt"]) == MARS_EQC
    assert CRS.from_user_input(doc["crs"]["properties"]["name"]) == MARS_EQC
    ring = doc["features"][-1]["geometry"]["coordinates"][0]
    assert ring[0] == [left, top] and ring[0] == ring[-1] and len(ring) == 5
    assert abs(ring[0][0]) > 1000  # metres on Mars, not degrees
    with pytest.raises(OrbitmlInputError, match="exists"):
        idx.write(tmp_path / "t.csv")
    with pytest.raises(OrbitmlInputError, match="csv or .geojson"):
        idx.write(tmp_path / "t.txt")


def test_chunker_bad_input():
    with pytest.raises(OrbitmlInputError, match="larger than the image"):
        TileChunker(100).tiles(make_scene(np.ones((1, 50, 200))))
    with pytest.raises(OrbitmlInputError, match="overlap"):
        TileChunker(10, overlap=10)
    with pytest.raises(OrbitmlInputError, match="black_policy"):
        TileChunker(10, black_policy=("edge", 0.5))


def test_index_reads_tile_pixels_in_batches():
    rng = np.random.default_rng(4)
    img = rng.integers(1, 255, (2, 70, 55), dtype=np.uint8)
    img[:, 0, 0] = 0
    idx = TileChunker(32, overlap=4, black_policy=0.0).tiles(make_scene(img))
    kept = idx.kept
    assert 0 < len(kept) < len(idx)
    seen = []
    for tiles, arr in idx.batches(batch_size=3):
        assert arr.shape == (len(tiles), 2, 32, 32) and len(tiles) <= 3
        for t, a in zip(tiles, arr, strict=True):
            np.testing.assert_array_equal(a, img[:, t.row:t.row + 32, t.col:t.col + 32])
            np.testing.assert_array_equal(idx.read(t), a)
            seen.append(t.index)
    assert seen == [t.index for t in kept]


def test_batches_read_windows_no_wider_than_the_limit(monkeypatch):
    """Tiles come from windows at most MAX_WINDOW_PX wide (memory independent of the image width), same pixels."""
    import orbitml.tiling.chunker as chunker

    monkeypatch.setattr(chunker, "MAX_WINDOW_PX", 40)
    rng = np.random.default_rng(5)
    img = rng.integers(1, 255, (1, 64, 301), dtype=np.uint8)
    idx = TileChunker(32, overlap=16, black_policy=0.0).tiles(make_scene(img))
    widths = []
    real = idx.source.read

    def spy(r0, r1, c0=0, c1=None):
        block = real(r0, r1, c0, c1)
        widths.append(block.shape[-1])
        return block

    monkeypatch.setattr(idx.source, "read", spy)
    n = 0
    for tiles, arr in idx.batches(batch_size=4):
        for t, a in zip(tiles, arr, strict=True):
            np.testing.assert_array_equal(a, img[:, t.row:t.row + 32, t.col:t.col + 32])
            n += 1
    assert n == len(idx.kept) and max(widths) <= 40 and len(widths) > 3


def test_bounded_windows_and_no_scan_give_the_same_index():
    rng = np.random.default_rng(3)
    img = rng.integers(1, 255, (2, 70, 130)).astype(np.uint8)
    img[:, 5:20, 100:128] = 0
    sc = make_scene(img)
    ref = TileChunker(32, overlap=8, black_policy=0.1).tiles(sc)
    small = TileChunker(32, overlap=8, black_policy=0.1).tiles(sc, max_block_bytes=32 * 2 * 40)
    assert [(t.row, t.col, t.black_fraction, t.kept) for t in ref.tiles] == \
        [(t.row, t.col, t.black_fraction, t.kept) for t in small.tiles]
    fast = TileChunker(32, overlap=8).tiles(sc, scan=False)
    assert [(t.row, t.col) for t in fast.tiles] == [(t.row, t.col) for t in ref.tiles]
    assert all(np.isnan(t.black_fraction) and t.kept for t in fast.tiles)
    with pytest.raises(OrbitmlInputError, match="needs the pixels"):
        TileChunker(32, black_policy=0.1).tiles(sc, scan=False)
