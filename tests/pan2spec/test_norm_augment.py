import numpy as np
import pytest
import torch

from orbitml.pan2spec.data import AUGMENTATIONS, PairPatches, augment
from orbitml.pan2spec.normalise import Normaliser, pooled, standardise
from orbitml.pan2spec.pairs import load_pair
from orbitml.pan2spec.predict import Pan2SpecPredictor


def test_pooled_stats_equal_direct_computation():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 2, 500), rng.normal(-3, 0.5, 200)
    got = pooled([[{"mean": a.mean(), "std": a.std()}], [{"mean": b.mean(), "std": b.std()}]], [a.size, b.size])
    both = np.concatenate([a, b])
    assert got[0]["mean"] == pytest.approx(both.mean()) and got[0]["std"] == pytest.approx(both.std())


def test_image_standardisation_and_invalid_pixels():
    rng = np.random.default_rng(1)
    x = rng.normal(5, 3, (2, 20, 20))
    valid = rng.random((20, 20)) > 0.3
    z = standardise(x, valid)
    assert np.allclose(z[:, valid].mean(1), 0, atol=1e-6) and np.allclose(z[:, valid].std(1), 1, atol=1e-5)
    assert (z[:, ~valid] == 0).all()


class _Identity(torch.nn.Module):
    task, n_bands = "regression", 1

    def forward(self, x):
        return x


def test_predictor_global_inverse_round_trip():
    x = torch.tensor([[[[1.0, 2.0], [float("nan"), 4.0]]]])
    fn = Pan2SpecPredictor(_Identity(), "global", [{"mean": 2.0, "std": 4.0}], [{"mean": 0.3, "std": 0.1}])
    y = fn(x)[0, 0]
    expect = (np.array([1.0, 2.0, 4.0]) - 2.0) / 4.0 * 0.1 + 0.3
    assert np.allclose(y.numpy().ravel()[[0, 1, 3]], expect)
    # patch-wise: each tile standardised by its own valid pixels
    p = Pan2SpecPredictor(_Identity(), "patch")(x)[0, 0].numpy().ravel()[[0, 1, 3]]
    v = np.array([1.0, 2.0, 4.0])
    assert np.allclose(p, (v - v.mean()) / v.std(), atol=1e-6)


def test_augmentations_ranges_frequencies_and_no_flips():
    d = 40
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:d, 0:d]
    x = (xx * 1.0 + 0.3 * yy)[None].astype(np.float32)  # a ramp: a flip reverses it
    y = np.stack([x[0], -x[0]])
    v = np.ones((d, d), bool)
    counts = dict.fromkeys(AUGMENTATIONS, 0)
    for _ in range(400):
        xa, ya, va, kind, par = augment(x, y, v, rng)
        counts[kind] += 1
        if kind == "none":
            assert xa is x
        elif kind == "rotate":
            assert -20 <= par <= 20 and not va[0, 0] or abs(par) < 1
            assert np.allclose(ya[0][va], xa[0][va], atol=1e-4)  # input and target move together
        elif kind == "crop":
            assert 3 * d / 5 <= par[2] <= 4 * d / 5 and va.all()
        elif kind == "erase":
            r0, c0, s = par
            assert d / 5 <= s <= 2 * d / 5 and (xa[:, r0: r0 + s, c0: c0 + s] == 0).all()
            assert np.array_equal(ya, y)
        if kind != "erase":
            ok = va
            same = np.corrcoef(xa[0][ok], x[0][ok])[0, 1] if ok.sum() > 10 else 1
            flipped = np.corrcoef(xa[0][ok], x[0, :, ::-1][ok])[0, 1] if ok.sum() > 10 else -1
            assert same > flipped  # never mirrored
    assert all(70 < c < 130 for c in counts.values()), counts


def test_pair_patches(sim_data):
    root, res = sim_data
    pairs = [load_pair(root / p) for p in res["pairs"][:2]]
    ds = PairPatches(pairs, 32, Normaliser("image"), n=12, augment=True, seed=4)
    x, y, v = ds[3]
    assert x.shape == (1, 32, 32) and y.shape == (3, 32, 32) and v.dtype == torch.bool
    assert v.float().mean() > 0.2 * 0.6  # > 20% valid before augmentation (rotations lose corners)
    x2, y2, v2 = ds[3]
    assert torch.equal(x, x2) and torch.equal(v, v2)  # item depends only on (seed, epoch, i)
    ds.set_epoch(1)
    assert not torch.equal(ds[3][0], x)
    grid = PairPatches(pairs[1:], 32, Normaliser("image"), grid=True)
    assert len(grid) >= 9
