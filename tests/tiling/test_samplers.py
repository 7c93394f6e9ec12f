import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.scene import make_scene
from orbitml.tiling import GridSampler, PatchSampler

from .conftest import write_tif


@pytest.fixture
def half_nodata(tmp_path):
    rng = np.random.default_rng(11)
    data = rng.random((2, 80, 60)).astype(np.float32) + 1
    data[:, :, 30:] = -1  # right half nodata
    data[0, 5, 5] = np.nan
    return write_tif(tmp_path / "half.tif", data, nodata=-1), data


def test_patches_are_windows_of_the_file_with_valid_masks(half_nodata):
    path, data = half_nodata
    s = PatchSampler(path, size=16, n=25, min_valid=0.2, seed=3)
    assert len(s) == 25
    for i in range(len(s)):
        k, r, c = s.window(i)
        patch, valid = s[i]
        assert patch.shape == (2, 16, 16) and patch.dtype == np.float32 and valid.shape == (16, 16)
        win = data[:, r:r + 16, c:c + 16]
        expect_valid = np.isfinite(win).all(0) & (win != -1).all(0)
        np.testing.assert_array_equal(valid, expect_valid)
        np.testing.assert_array_equal(patch[:, valid], win[:, valid])
        assert (patch[:, ~valid] == 0).all()
        assert valid.mean() >= 0.2


def test_seeded_reproducible_and_epochs_differ(half_nodata):
    path, _ = half_nodata
    a = PatchSampler(path, 16, 10, seed=1)
    b = PatchSampler(path, 16, 10, seed=1)
    c = PatchSampler(path, 16, 10, seed=2)
    wa = [a.window(i) for i in range(10)]
    assert wa == [b.window(i) for i in range(10)]
    assert wa != [c.window(i) for i in range(10)]
    assert [a.window(i) for i in reversed(range(10))] == wa[::-1]  # order-independent
    a.set_epoch(1)
    assert [a.window(i) for i in range(10)] != wa
    np.testing.assert_array_equal(b[3][0], PatchSampler(path, 16, 10, seed=1)[3][0])


def test_many_scenes_drawn_by_area_and_min_valid_error():
    big = make_scene(np.ones((1, 100, 100), np.float32))
    small = make_scene(np.ones((1, 20, 20), np.float32))
    s = PatchSampler([big, small], 10, 400, seed=0, min_valid=0)
    picks = np.array([s.window(i)[0] for i in range(400)])
    p_small = 11 * 11 / (91 * 91 + 11 * 11)
    assert abs((picks == 1).mean() - p_small) < 0.04
    empty = make_scene(np.full((1, 30, 30), -5.0), nodata=-5.0)
    with pytest.raises(OrbitmlInputError, match="valid pixels"):
        PatchSampler(empty, 8, 2, max_tries=5)[0]
    with pytest.raises(OrbitmlInputError, match="larger than scene"):
        PatchSampler(small, 32, 2)


def test_targets_and_torch_dataloader():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.random((1, 40, 40)).astype(np.float32)
    y = rng.random((3, 40, 40)).astype(np.float32)
    y[:, 0:10, :] = np.nan
    s = PatchSampler(make_scene(x), 8, 12, seed=5, targets=make_scene(y))
    patch, target, valid = s[0]
    _, r, c = s.window(0)
    np.testing.assert_array_equal(target[:, valid], y[:, r:r + 8, c:c + 8][:, valid])
    assert not valid[np.isnan(y[0, r:r + 8, c:c + 8])].any()
    dl = torch.utils.data.DataLoader(s.torch_dataset(), batch_size=4)
    xb, yb, mb = next(iter(dl))
    assert xb.shape == (4, 1, 8, 8) and yb.shape == (4, 3, 8, 8) and mb.dtype == torch.bool
    dl2 = torch.utils.data.DataLoader(s, batch_size=4)  # plain sampler works too
    np.testing.assert_array_equal(next(iter(dl2))[0].numpy(), xb.numpy())


def test_grid_sampler_covers_edges_and_filters(half_nodata):
    path, data = half_nodata
    g = GridSampler(path, 16, min_valid=0.2)
    rows = sorted({r for _, r, _ in g.windows})
    cols = sorted({c for _, _, c in g.windows})
    assert rows[-1] + 16 == 80  # bottom remainder covered by a shifted-back window
    assert max(cols) + 16 <= 60 and all(c < 30 for c in cols)  # all-nodata windows skipped
    for i in range(len(g)):
        _, valid = g[i]
        assert valid.mean() >= 0.2
    g0 = GridSampler(path, 16, stride=8, min_valid=0)
    assert max(c for _, _, c in g0.windows) + 16 == 60
