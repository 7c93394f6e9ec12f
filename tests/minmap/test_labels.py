"""Labelled scene pixels as training data: label reading, the spatial-block split, patches, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from orbitml.errors import OrbitmlInputError
from orbitml.minmap.labels import block_split, read_labels, scene_patches

from .conftest import tiny_manifest


def test_block_split_holds_out_whole_blocks_with_a_margin():
    rng = np.random.default_rng(0)
    lab = np.where(rng.random((100, 120)) < 0.3, rng.integers(1, 4, (100, 120)), 0).astype(np.int16)
    halo, block = 3, 20
    sp = block_split(lab, block, 0.25, halo, seed=1)
    assert sp.n_blocks == 30 and 0 < sp.val_blocks < 30
    bid = lambda yx: set(((yx[:, 0] // block) * 6 + yx[:, 1] // block).tolist())  # noqa: E731
    assert not bid(sp.train) & bid(sp.val)  # no block in both
    # every pixel of a validation block is in the validation split, and no training pixel lies within
    # `halo` (Chebyshev) of a validation block pixel
    vb = bid(sp.val)
    yy, xx = np.nonzero(lab > 0)
    in_vb = np.isin((yy // block) * 6 + xx // block, list(vb))
    assert in_vb.sum() == len(sp.val)
    cells = np.argwhere(np.isin((np.arange(100)[:, None] // block) * 6 + np.arange(120)[None] // block, list(vb)))
    d = np.abs(sp.train[:, None, :] - cells[None]).max(-1).min(1)
    assert d.min() > halo
    assert sp.dropped_near_val == int((~in_vb).sum()) - len(sp.train) > 0
    frac = len(sp.val) / (lab > 0).sum()
    assert 0.25 <= frac < 0.25 + 1.5 / 30 * 4  # whole blocks: at most about one block over the target
    again = block_split(lab, block, 0.25, halo, seed=1)
    assert np.array_equal(again.val, sp.val)  # seeded
    capped = block_split(lab, block, 0.25, halo, seed=1, max_per_class=10)
    assert np.bincount(lab[capped.train[:, 0], capped.train[:, 1]]).max() <= 10


def test_block_split_needs_two_blocks():
    lab = np.zeros((30, 30), np.int16)
    lab[2:5, 2:5] = 1
    with pytest.raises(OrbitmlInputError, match="one 16 x 16 block"):
        block_split(lab, 16, 0.25, 2, 0)


def test_scene_patches_are_the_mapping_inputs(sim_dir):
    """Each labelled pixel's patch equals the window the fully convolutional mapping sees around it."""
    from orbitml.io import open_scene
    from orbitml.tiling.windows import reflect_index

    scene = open_scene(sim_dir / "scene.img")
    idx = np.arange(0, scene.sizes["band"], 7)
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(idx.size, 3)), rng.normal(size=3)
    H, Wd = scene.sizes["y"], scene.sizes["x"]
    lab = np.zeros((H, Wd), np.int16)
    yx = np.array([[0, 0], [5, 23], [12, 12], [23, 1], [23, 23]])
    lab[yx[:, 0], yx[:, 1]] = [1, 2, 3, 1, 2]
    mask = np.ones((H, Wd), bool)
    mask[12, 14] = False  # a masked neighbour is 0 in the inputs
    X, y, ab = scene_patches(scene, idx, W, b, yx, lab, 7, mask, 4, budget_bytes=1)  # strips of one row
    full = np.moveaxis(np.asarray(scene.values[idx], np.float64), 0, -1) @ W + b
    full[~mask] = 0
    pad = full[reflect_index(np.arange(-3, H + 3), H)][:, reflect_index(np.arange(-3, Wd + 3), Wd)]
    order = np.argsort(yx[:, 0], kind="stable")
    for i, (r, c) in enumerate(yx[order]):
        np.testing.assert_allclose(X[i], np.moveaxis(pad[r:r + 7, c:c + 7], -1, 0), rtol=1e-5, atol=1e-5)
    assert y.tolist() == (lab[yx[order, 0], yx[order, 1]] - 1).tolist()
    assert np.isnan(ab).all() and ab.shape == (5, 4)


def test_labels_by_class_table_name_and_bad_labels(sim_dir, tmp_path):
    from orbitml.io import open_scene
    from orbitml.io.classmap import write_class_map

    scene = open_scene(sim_dir / "scene.img")
    names = sorted(p.stem for p in (sim_dir / "libraries").iterdir())
    codes = np.zeros((24, 24), int)
    codes[:, :12] = 1
    codes[:, 12:] = 2
    # a table whose order differs from the manifest's: matched by name
    tr = scene.rio.transform()
    write_class_map(codes, tmp_path / "lab.tif", ["Unclassified", names[2], names[0]], crs=scene.rio.crs,
                    transform=tr)
    lab = read_labels(tmp_path / "lab.tif", scene, names)
    assert set(np.unique(lab[:, :12]).tolist()) == {3} and set(np.unique(lab[:, 12:]).tolist()) == {1}
    write_class_map(codes, tmp_path / "other.tif", ["Unclassified", "olivine", names[0]], crs=scene.rio.crs,
                    transform=tr)
    with pytest.raises(OrbitmlInputError, match="'olivine'"):
        read_labels(tmp_path / "other.tif", scene, names)
    with pytest.raises(OrbitmlInputError, match="labels no pixel"):
        write_class_map(np.zeros((24, 24), int), tmp_path / "none.tif", ["Unclassified", *names],
                        crs=scene.rio.crs, transform=tr)
        read_labels(tmp_path / "none.tif", scene, names)
    with pytest.raises(OrbitmlInputError, match="pixels but the scene"):
        write_class_map(np.ones((20, 24), int), tmp_path / "small.tif", ["Unclassified", *names],
                        crs=scene.rio.crs, transform=tr)
        read_labels(tmp_path / "small.tif", scene, names)


def test_abundance_loss_skips_rows_without_abundances():
    from orbitml.nn.lightning_minmap import MinmapLightning
    from orbitml.nn.minmap_cnn import dice_focal_loss

    class Net(torch.nn.Module):
        def forward(self, x):
            return x[:, :3, :1, :1] * 3.0, torch.softmax(x[:, :3, :1, :1], 1)

    torch.manual_seed(0)
    lm = MinmapLightning(Net(), abundance_weight=2.0)
    lm.log = lambda *a, **k: None
    x = torch.randn(6, 4, 3, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    a = torch.softmax(torch.randn(6, 3), 1)
    a[3:] = float("nan")
    loss = lm._step((x, y, a), "train")
    logits, ab = Net()(x)
    want = dice_focal_loss(logits[:, :, 0, 0], y, gamma=2.0) + 2.0 * ((ab[:3, :, 0, 0] - a[:3]) ** 2).mean()
    assert torch.isfinite(loss) and torch.allclose(loss, want)


def test_train_with_labelled_scene_pixels(sim_dir, tmp_path):
    """The truth class raster as labels: the card records the split and the held-out scene accuracy."""
    from orbitml.minmap import manifest as mm
    from orbitml.minmap.train import train

    man_path = tiny_manifest(sim_dir, labels={"raster": "truth_classes.tif", "block": 8, "max_per_class": 40},
                             out=str(tmp_path / "model"))
    lines = []
    out = train(mm.load(man_path), man_path, log=lines.append)
    card = json.loads((out / "model.json").read_text())
    info = card["training_data"]["scene_labels"]
    assert info["n_blocks"] == 9 and 1 <= info["val_blocks"] < 9
    assert sum(info["n_train"].values()) > 0 and sum(info["n_val"].values()) > 0
    assert max(info["n_train"].values()) <= 40
    assert card["training"]["n_train_patches"] == 64 + sum(info["n_train"].values())
    assert 0 <= card["metrics"]["scene_val_acc"] <= 1
    assert any("held-out labelled scene blocks" in s for s in lines)
    assert "labelled scene pixels" in card["training_data"]["note"]
    saved = yaml.safe_load((out / "manifest.yaml").read_text())
    assert saved["labels"]["block"] == 8


def test_manifest_label_raster_must_exist(sim_dir):
    from orbitml.minmap import manifest as mm

    p = tiny_manifest(sim_dir, labels={"raster": "nope.tif"})
    with pytest.raises(OrbitmlInputError, match="label raster not found"):
        mm.load(p)
    p = tiny_manifest(sim_dir, labels={"raster": "truth_classes.tif", "blocks": 3})
    with pytest.raises(OrbitmlInputError, match="blocks"):
        mm.load(p)
