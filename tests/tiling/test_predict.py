import numpy as np
import pytest
import rasterio
from scipy import ndimage

from orbitml.errors import OrbitmlInputError
from orbitml.scene import make_scene
from orbitml.tiling import GaussianSmooth, MedianSmooth, predict
from orbitml.tiling.sources import FileSource

from .conftest import MARS_EQC, TRANSFORM, write_tif


def identity(batch):
    return batch


def const(batch):
    return np.full((batch.shape[0], 2) + batch.shape[2:], 0.1, dtype=batch.dtype)


@pytest.mark.parametrize("kind", ["uniform", "gaussian", "hann"])
@pytest.mark.parametrize("stride", [24, 12, 8, 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_identity_and_constant_are_exact(kind, stride, dtype):
    rng = np.random.default_rng(stride)
    img = rng.normal(size=(2, 61, 50)).astype(dtype)  # not multiples of the tile
    sc = make_scene(img)
    out = predict(sc, identity, tile=24, stride=stride, weights=kind, out_dtype=dtype, progress=False)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.values, img)
    c = predict(sc, const, tile=24, stride=stride, weights=kind, out_dtype=dtype, progress=False)
    assert c.shape == (2, 61, 50)
    assert np.all(c.values == dtype(0.1))


def test_blending_is_a_weighted_mean_not_a_copy():
    """A model whose output depends on the tile position blends with the Gaussian weights."""
    img = np.zeros((1, 40, 40))

    def tile_mean_of_rows(batch):  # output = row index inside the tile: different in every tile
        r = np.arange(batch.shape[2], dtype=float)[None, None, :, None]
        return np.broadcast_to(r, batch.shape).copy()

    out = predict(make_scene(img), tile_mean_of_rows, tile=20, stride=10, weights="gaussian",
                  out_dtype="float64", progress=False).values[0]
    # independent computation for pixel row 15 (pad 5: tiles start at -5, 5, 15, 25)
    from orbitml.tiling import weights
    w = weights("gaussian", 20, 20)[:, 10]  # column 10 of a tile, same for all column offsets
    contrib = [(15 - y0, w[15 - y0]) for y0 in (-5, 5, 15) if 0 <= 15 - y0 < 20]
    expect = sum(v * wt for v, wt in contrib) / sum(wt for _, wt in contrib)
    assert out[15, 15] == pytest.approx(expect, rel=1e-12)
    u = predict(make_scene(img), tile_mean_of_rows, tile=20, stride=10, weights="uniform",
                out_dtype="float64", progress=False).values[0]
    assert u[15, 15] == pytest.approx(np.mean([v for v, _ in contrib]), rel=1e-12)
    assert u[15, 15] != pytest.approx(out[15, 15], rel=1e-3)


def test_nodata_stays_nodata_and_gets_zero_weight():
    rng = np.random.default_rng(1)
    img = rng.random((1, 50, 45)).astype(np.float32)
    img[0, 5:9, 20:30] = -9999
    img[0, 30, 40] = np.nan
    sc = make_scene(img, nodata=-9999)
    seen = []

    def spy(batch):
        seen.append(batch.copy())
        return batch * 2

    out = predict(sc, spy, tile=16, stride=8, out_dtype="float32", progress=False).values[0]
    bad = (img[0] == -9999) | np.isnan(img[0])
    assert np.isnan(out[bad]).all()
    np.testing.assert_array_equal(out[~bad], 2 * img[0][~bad])
    assert all(np.isfinite(b).all() and (b != -9999).all() for b in seen)  # the model sees fill_value 0


def test_uint8_integer_nodata_in_and_integer_out():
    rng = np.random.default_rng(2)
    img = rng.integers(1, 200, size=(1, 40, 33), dtype=np.uint8)
    img[0, :3, :3] = 0
    sc = make_scene(img, nodata=0)
    out = predict(sc, identity, tile=16, stride=8, out_dtype="uint8", out_nodata=255, progress=False)
    assert out.dtype == np.uint8 and out.rio.nodata == 255
    expect = np.where(img == 0, 255, img)
    np.testing.assert_array_equal(out.values, expect)
    f = predict(sc, identity, tile=16, stride=8, progress=False)
    np.testing.assert_array_equal(f.values[0][img[0] > 0], img[0][img[0] > 0].astype(np.float32))


def test_geotiff_round_trip_carries_crs_transform_nodata_descriptions(tmp_path, mars_tif):
    path, data = mars_tif
    out = tmp_path / "pred.tif"
    res = predict(path, const, tile=32, stride=16, out=out, out_bands=["albedo", "slope"], progress=False)
    assert res == out
    with rasterio.open(out) as ds:
        assert ds.crs == MARS_EQC and ds.transform == TRANSFORM
        assert ds.count == 2 and ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
        assert ds.descriptions == ("albedo", "slope")
        assert ds.profile["tiled"]
        arr = ds.read()
    bad = data[0] == 0
    assert np.isnan(arr[:, bad]).all()
    assert np.all(arr[:, ~bad] == np.float32(0.1))
    # identity from disk equals identity in memory and the input
    out2 = predict(path, identity, tile=32, stride=16, out=tmp_path / "id.tif", progress=False)
    with rasterio.open(out2) as ds:
        np.testing.assert_array_equal(ds.read(1)[~bad], data[0][~bad])
    assert not list(tmp_path.glob(".*tmp*"))


def test_reads_by_windows_never_whole_image(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    data = rng.random((1, 300, 64)).astype(np.float32)
    path = write_tif(tmp_path / "tall.tif", data)
    rows_read = []
    orig = FileSource.read

    def spy(self, r0, r1, c0=0, c1=None):
        rows_read.append(r1 - r0)
        return orig(self, r0, r1, c0, c1)

    monkeypatch.setattr(FileSource, "read", spy)
    out = predict(path, identity, tile=32, stride=16, progress=False, out_dtype="float32")
    np.testing.assert_array_equal(out.values, data)
    assert max(rows_read) <= 32


def test_output_exists_wrong_shape_and_interrupted_run(tmp_path, mars_tif):
    path, _ = mars_tif
    out = tmp_path / "o.tif"
    out.write_bytes(b"old")
    with pytest.raises(OrbitmlInputError, match="exists"):
        predict(path, identity, tile=32, out=out, progress=False)
    assert out.read_bytes() == b"old"
    with pytest.raises(OrbitmlInputError, match=r"returned shape \(2, 1, 16, 16\)"):
        predict(path, lambda b: b[:, :, :16, :16], tile=32, stride=32, batch_size=2, progress=False)
    with pytest.raises(OrbitmlInputError, match="expected out_bands=3"):
        predict(path, identity, tile=32, out_bands=3, progress=False)
    calls = []

    def dies(batch):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return batch

    new = tmp_path / "new.tif"
    with pytest.raises(KeyboardInterrupt):
        predict(path, dies, tile=16, stride=16, batch_size=1, out=new, progress=False)
    assert not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mars.tif", "o.tif"]  # no temporaries left


@pytest.mark.parametrize("kind", ["gaussian", "uniform"])
def test_tiled_gaussian_filter_equals_whole_image_filter(kind):
    rng = np.random.default_rng(5)
    img = rng.random((2, 70, 53))
    op = GaussianSmooth(sigma=1.5)
    out = predict(make_scene(img), op, tile=32, stride=16, margin=op.halo, weights=kind, out_dtype="float64",
                  fill_value=np.nan, progress=False)
    ref = ndimage.gaussian_filter(img, sigma=(0, 1.5, 1.5), mode="mirror")
    np.testing.assert_allclose(out.values, ref, rtol=0, atol=1e-12)
    med = MedianSmooth(5)
    out = predict(make_scene(img), med, tile=24, stride=12, margin=med.halo, out_dtype="float64", progress=False)
    np.testing.assert_array_equal(out.values, ndimage.median_filter(img, size=(1, 5, 5), mode="mirror"))


def test_dask_backed_scene_and_torch_module():
    torch = pytest.importorskip("torch")
    import dask.array as da

    torch.manual_seed(0)
    rng = np.random.default_rng(6)
    img = rng.random((1, 45, 38)).astype(np.float32)
    sc = make_scene(da.from_array(img, chunks=(1, 16, 16)))
    conv = torch.nn.Conv2d(1, 3, 3, padding=1, padding_mode="reflect")
    conv.train()
    out = predict(sc, conv, tile=16, stride=8, margin=1, progress=False)
    assert conv.training  # the caller's mode is restored
    with torch.no_grad():
        ref = conv(torch.from_numpy(img[None])).numpy()[0]
    np.testing.assert_allclose(out.values, ref, rtol=1e-5, atol=1e-6)


def test_tile_larger_than_image_and_bad_margin():
    sc = make_scene(np.zeros((1, 20, 30)))
    with pytest.raises(OrbitmlInputError, match="larger than the image"):
        predict(sc, identity, tile=25, progress=False)
    with pytest.raises(OrbitmlInputError, match="margin"):
        predict(sc, identity, tile=16, stride=8, margin=5, progress=False)


def test_tiny_convnet_tiled_equals_whole_image_forward():
    torch = pytest.importorskip("torch")
    from orbitml.nn.tiny import TinyConvNet

    net = TinyConvNet(2, 3, width=4, depth=2, seed=1)
    assert torch.equal(net.net[0].weight, TinyConvNet(2, 3, width=4, depth=2, seed=1).net[0].weight)
    img = np.random.default_rng(12).random((2, 37, 41)).astype(np.float32)
    out = predict(make_scene(img), net, tile=16, stride=8, margin=net.halo, out_bands=["a", "b", "c"],
                  progress=False)
    with torch.no_grad():
        ref = net(torch.from_numpy(img[None])).numpy()[0]
    # away from the image border (where each layer of the whole-image net reflects its own input)
    h = net.halo
    np.testing.assert_allclose(out.values[:, h:-h, h:-h], ref[:, h:-h, h:-h], rtol=1e-5, atol=1e-6)
    assert list(out.coords["band_name"].values) == ["a", "b", "c"]


def test_geotiff_output_spanning_several_block_rows(tmp_path):
    rng = np.random.default_rng(13)
    data = rng.random((2, 600, 40)).astype(np.float32)  # 600 rows: 2 full 256-row blocks and a remainder
    path = write_tif(tmp_path / "tall.tif", data)
    for compress in ("deflate", None):
        out = predict(path, wobble_np, tile=32, stride=16, out=tmp_path / f"o_{compress}.tif", compress=compress,
                      progress=False)
        with rasterio.open(out) as ds:
            assert ds.block_shapes[0] == (256, 256)
            got = ds.read()
        np.testing.assert_array_equal(got, predict(path, wobble_np, tile=32, stride=16, progress=False).values)


def wobble_np(batch):
    return np.cos(batch * 2.0)
