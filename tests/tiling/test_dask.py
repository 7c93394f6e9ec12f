"""Scale-out: dask row bands are bit-identical to the in-process path; batch mode resumes."""

import numpy as np
import pytest
import rasterio

from orbitml.errors import OrbitmlInputError
from orbitml.tiling import GaussianSmooth, predict, predict_many

from .conftest import write_tif

distributed = pytest.importorskip("distributed")


def wobble(batch):
    """A non-linear, position-dependent model so that blending errors would show."""
    r = np.arange(batch.shape[2], dtype=batch.dtype)[None, None, :, None]
    return np.sin(batch * 3.0) + 0.01 * r


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cl:
        yield cl


def test_dask_bands_bit_identical_to_in_process(tmp_path, cluster):
    rng = np.random.default_rng(7)
    data = rng.random((2, 83, 61)).astype(np.float32)
    data[:, 40:44, 10:20] = -1
    path = write_tif(tmp_path / "in.tif", data, nodata=-1)
    ref = predict(path, wobble, tile=24, stride=8, out=tmp_path / "ref.tif", progress=False)
    # band_rows not a multiple of the stride or the tile: the halos must still line up
    dk = predict(path, wobble, tile=24, stride=8, out=tmp_path / "dask.tif", progress=False,
                 scheduler=cluster.scheduler_address, band_rows=13)
    with rasterio.open(ref) as a, rasterio.open(dk) as b:
        x, y = a.read(), b.read()
        pa, pb = dict(a.profile), dict(b.profile)
        assert np.isnan(pa.pop("nodata")) and np.isnan(pb.pop("nodata"))
        assert pa == pb
    assert np.isnan(x[:, 40:44, 10:20]).all()
    np.testing.assert_array_equal(x, y)  # NaN in the same places, all other bits equal
    mem = predict(path, wobble, tile=24, stride=8, progress=False, scheduler=cluster.scheduler_address,
                  band_rows=30)
    np.testing.assert_array_equal(mem.values, x)


def test_dask_filter_with_margin(cluster):
    rng = np.random.default_rng(8)
    img = rng.random((1, 70, 40))
    op = GaussianSmooth(1.0)
    kw = dict(tile=20, stride=10, margin=op.halo, out_dtype="float64", fill_value=np.nan, progress=False)
    a = predict(img, op, **kw)
    b = predict(img, op, scheduler=cluster.scheduler_address, band_rows=17, **kw)
    np.testing.assert_array_equal(a.values, b.values)


def test_predict_many_resumes_and_skips_finished(tmp_path, cluster):
    rng = np.random.default_rng(9)
    paths = [write_tif(tmp_path / f"img{i}.tif", rng.random((1, 30 + i, 35)).astype(np.float32)) for i in range(3)]
    outdir = tmp_path / "out"
    recs = predict_many(paths, wobble, outdir, tile=16, stride=8, progress=False,
                        scheduler=cluster.scheduler_address)
    assert [r["status"] for r in recs] == ["done"] * 3
    first = {r["output"]: (outdir / r["output"]).stat().st_mtime_ns for r in recs}
    # simulate an interrupted second run: one output missing, a stale temporary beside it
    (outdir / "img1_pred.tif").unlink()
    stale = outdir / ".img1_pred.deadbeef.tmp.tif"
    stale.write_bytes(b"half")
    recs = predict_many(paths, wobble, outdir, tile=16, stride=8, progress=False)
    assert [r["status"] for r in recs] == ["skipped", "done", "skipped"]
    assert not stale.exists()
    assert (outdir / "img0_pred.tif").stat().st_mtime_ns == first[str(outdir / "img0_pred.tif")]
    for p in paths:
        with rasterio.open(p) as s, rasterio.open(outdir / f"{p.stem}_pred.tif") as o:
            ref = predict(p, wobble, tile=16, stride=8, progress=False).values
            np.testing.assert_array_equal(o.read(), ref)
            assert o.crs == s.crs


def test_predict_many_reports_bad_file(tmp_path):
    good = write_tif(tmp_path / "good.tif", np.ones((1, 20, 20), np.float32))
    bad = tmp_path / "bad.tif"
    bad.write_text("not a raster")
    recs = predict_many([good, bad], wobble, tmp_path / "o", tile=8, progress=False, raise_on_error=False)
    assert recs[0]["status"] == "done" and recs[1]["status"] == "failed"
    assert "bad.tif" in recs[1]["error"]
    with pytest.raises(OrbitmlInputError, match="1 of 2 files failed"):
        predict_many([good, bad], wobble, tmp_path / "o2", tile=8, progress=False)


def test_scheduler_and_workers_together_is_an_error(tmp_path):
    with pytest.raises(OrbitmlInputError, match="not both"):
        predict(np.ones((1, 20, 20)), wobble, tile=8, workers=2, scheduler="tcp://127.0.0.1:1", progress=False)


def test_local_cluster_of_processes_matches_in_process(tmp_path):
    """predict(workers=2): a real LocalCluster of 2 processes, the picklable built-in operator."""
    rng = np.random.default_rng(10)
    data = rng.random((1, 64, 48)).astype(np.float32)
    path = write_tif(tmp_path / "p.tif", data)
    op = GaussianSmooth(1.0)
    kw = dict(tile=24, stride=12, margin=op.halo, progress=False, band_rows=20)
    a = predict(path, op, **kw)
    b = predict(path, op, workers=2, **kw)
    np.testing.assert_array_equal(a.values, b.values)
