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
