"""Streamed fully convolutional mapping against one-patch-per-pixel evaluation; band checks; products."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orbitml.errors import OrbitmlInputError
from orbitml.minmap.mapping import CLASS_NODATA, check_bands, map_scene, per_pixel, project_block
from orbitml.minmap.model import MinmapModel
from orbitml.simulate.minmap import simulate_minmap


def _model_and_card(scene, K=3, R=4, patch=13, seed=0):
    wl = scene.coords["wavelength"].values[::10]
    fw = scene.coords["fwhm"].values[::10]
    torch.manual_seed(seed)
    m = MinmapModel(wl.size, R, K, patch=patch, width=10, c3=3, head=8)
    with torch.no_grad():
        m.proj_weight.copy_(torch.randn(wl.size, R) * 0.5)
        m.proj_bias.copy_(torch.randn(R))
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    card = {"bands": {"wavelength_nm": wl.tolist(), "fwhm_nm": fw.tolist()}, "threshold": 0.4,
            "config": {"n_classes": K}, "classes": [f"c{i}" for i in range(K)]}
    return m.eval(), card


def test_streamed_map_equals_per_pixel_patches_with_edges_and_nodata():
    sim = simulate_minmap(["kaolinite", "jarosite", "hematite"], shape=(20, 23), seed=1)
    scene = sim.scene.copy()
    scene.values[:, 5, 7] = np.nan  # one nodata pixel: nodata out, training-mean (0) in for its neighbours
    model, card = _model_and_card(scene)
    mask = np.ones((20, 23), bool)
    mask[0, :4] = False
    res = map_scene(model, card, scene, mask=mask, rows=6)  # 4 blocks, the last one short
    idx = check_bands(scene, card)
    z, valid = project_block(model, np.asarray(scene.values[idx]), scene.rio.nodata, mask)
    yx = np.argwhere(np.ones((20, 23), bool))
    prob, ab = per_pixel(model, z, yx)
    v = valid.ravel()
    np.testing.assert_allclose(res.abundances.reshape(3, -1).T[v], ab[v], atol=2e-6)
    top = prob.max(1)
    np.testing.assert_allclose(res.confidence.ravel()[v], top[v], atol=2e-6)
    want = prob.argmax(1) + 1
    want[top < 0.4] = 0
    assert np.array_equal(res.classes.ravel()[v], want[v])
    assert res.classes[5, 7] == CLASS_NODATA and not res.valid[0, :4].any()
    assert np.isnan(res.abundances[:, 5, 7]).all()


def test_model_scene_band_mismatch_is_a_clear_error():
    sim = simulate_minmap(["kaolinite", "jarosite"], shape=(4, 4), n_bands=100, seed=0)
    other = simulate_minmap(["kaolinite", "jarosite"], shape=(4, 4), n_bands=239, seed=0)
    model, card = _model_and_card(other.scene, K=2)
    with pytest.raises(OrbitmlInputError, match="do not match the model"):
        check_bands(sim.scene, card, "scene.img")


def test_stored_map_equals_in_memory_map(tmp_path):
    """With ``store`` the outputs are memory-mapped files filled block by block, identical to the in-memory run."""
    sim = simulate_minmap(["kaolinite", "jarosite", "hematite"], shape=(21, 17), seed=2)
    model, card = _model_and_card(sim.scene)
    mem = map_scene(model, card, sim.scene, rows=5)
    (tmp_path / "store").mkdir()
    disk = map_scene(model, card, sim.scene, rows=5, store=tmp_path / "store")
    assert isinstance(disk.abundances, np.memmap) and isinstance(disk.classes, np.memmap)
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [
        "abundances.npy", "classes.npy", "confidence.npy", "second.npy", "valid.npy"]
    for a, b in ((mem.classes, disk.classes), (mem.valid, disk.valid)):
        assert np.array_equal(a, b)
    for a, b in ((mem.abundances, disk.abundances), (mem.confidence, disk.confidence)):
        np.testing.assert_array_equal(a, b)
    want = np.bincount(mem.classes[mem.valid], minlength=4)
    assert disk.counts.tolist() == want.tolist() and want.sum() == 21 * 17


def _mapped_result(store, H, W, K, seed=0):
    from orbitml.minmap.mapping import MapResult, _alloc

    store.mkdir()
    rng = np.random.default_rng(seed)
    cls = _alloc(store, "classes", (H, W), np.uint8)
    ab = _alloc(store, "abundances", (K, H, W), np.float32)
    conf = _alloc(store, "confidence", (H, W), np.float32)
    for r0 in range(0, H, 100):
        n = min(100, H - r0)
        cls[r0:r0 + n] = rng.integers(0, K + 1, (n, W))
        ab[:, r0:r0 + n] = rng.random((K, n, W))
        conf[r0:r0 + n] = rng.random((n, W))
    cls[0, :10] = CLASS_NODATA
    return MapResult(cls, conf, conf, ab, cls != CLASS_NODATA)


def test_products_of_a_memory_mapped_result_are_written_by_blocks(tmp_path, monkeypatch):
    """Writing the products never reads an output array whole: numpy's traced peak does not grow with the scene.

    Memory-mapped results of 500 x 500 and 1500 x 1500 pixels (9 x the data; the large abundance
    cube is 27 MB) are written with 0.5 MB blocks; the peak (mostly the PNG's rendering) must stay about
    the same, and the products must hold exactly the mapped values.
    """
    import tracemalloc

    import dask.array as da
    import rasterio

    import orbitml.io.classmap as classmap
    import orbitml.io.write as write
    import orbitml.minmap.outputs as outputs
    from orbitml.scene import make_scene

    for mod in (classmap, write, outputs):
        monkeypatch.setattr(mod, "BLOCK_BYTES", 512 * 1024)
    monkeypatch.setattr(outputs, "MAX_FIGURE_PX", 200)  # the PNG is a decimated view of the class map
    K = 3
    card = {"classes": ["a", "b", "c"]}
    peaks = {}
    for n in (4, 500, 1500):  # the first run does the first-call imports, untraced
        res = _mapped_result(tmp_path / f"store{n}", n, n, K)
        scene = make_scene(da.zeros((1, n, n), chunks=(1, 100, n)), crs="EPSG:32611",
                           transform=(500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0))
        if n > 4:
            tracemalloc.start()
        try:
            outputs.write_products(res, scene, card, tmp_path / f"out{n}")
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peaks[1500] < 1.5 * peaks[500] + 2e6, peaks
    with rasterio.open(tmp_path / "out1500" / "abundances.img") as ds:
        assert ds.crs.to_epsg() == 32611 and ds.count == K
        np.testing.assert_array_equal(ds.read(2, window=((700, 800), (0, 1500))), res.abundances[1, 700:800])
    with rasterio.open(tmp_path / "out1500" / "class_map.tif") as ds:
        assert np.array_equal(ds.read(1), np.asarray(res.classes)) and ds.nodata == CLASS_NODATA
    with rasterio.open(tmp_path / "out1500" / "confidence.tif") as ds:
        np.testing.assert_array_equal(ds.read(1, window=((1490, 1500), (0, 1500))), res.confidence[1490:])


def test_map_and_train_open_the_scene_lazily(sim_dir, monkeypatch):
    """``minmap map`` and ``train`` read the scene by windows (dask), so its size is not bounded by memory."""
    import dask.array as da

    import orbitml.io as io
    from orbitml.minmap import manifest as mm
    from orbitml.minmap.train import prepare

    from .conftest import tiny_manifest

    seen = []
    real = io.open_scene

    def spy(path, **kw):
        sc = real(path, **kw)
        seen.append((str(path), isinstance(sc.data, da.Array)))
        return sc

    monkeypatch.setattr(io, "open_scene", spy)
    prepare(mm.load(tiny_manifest(sim_dir)), log=lambda *a: None)
    assert (str(sim_dir / "scene.img"), True) in seen
