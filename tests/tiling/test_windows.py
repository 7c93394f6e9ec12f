import math

import numpy as np
import pytest
from affine import Affine

from orbitml.errors import OrbitmlInputError
from orbitml.tiling import grid, reflect_index, weights


def test_gaussian_weights_exact_values_pixel_centres():
    w = weights("gaussian", 4, 6)
    r = np.array([-0.75, -0.25, 0.25, 0.75])  # 2 (i + 0.5) / 4 - 1
    c = (2 * (np.arange(6) + 0.5) / 6) - 1
    assert w.shape == (4, 6)
    assert w[0, 0] == pytest.approx(math.exp(-(0.75**2 + c[0] ** 2)), rel=1e-15)
    np.testing.assert_allclose(w, np.exp(-(r[:, None] ** 2 + c[None, :] ** 2)), rtol=1e-15)
    # not uniform, symmetric, peak at the centre, exp(-2) is the infimum at the corners
    assert w.max() / w.min() > 2.0
    np.testing.assert_array_equal(w, w[::-1, ::-1])
    big = weights("gaussian", 256, 256)
    assert big[0, 0] == pytest.approx(math.exp(-2 * (255 / 256) ** 2))
    assert big[127, 127] == pytest.approx(math.exp(-2 * (1 / 256) ** 2))


def test_hann_and_uniform_weights():
    h = weights("hann", 4, 4)
    s = np.sin(np.pi * (np.arange(4) + 0.5) / 4) ** 2
    np.testing.assert_allclose(h, np.outer(s, s), rtol=1e-15)
    assert h.min() > 0 and h.max() / h.min() > 10
    assert np.array_equal(weights("uniform", 3, 5), np.ones((3, 5)))
    with pytest.raises(OrbitmlInputError, match="unknown weights"):
        weights("box", 3)


def test_reflect_index_matches_numpy_reflect_pad():
    x = np.arange(5)
    padded = np.pad(x, 12, mode="reflect")
    np.testing.assert_array_equal(reflect_index(np.arange(-12, 17), 5), padded)
    np.testing.assert_array_equal(reflect_index(np.arange(-3, 3), 1), np.zeros(6))


@pytest.mark.parametrize("h,w,tile,stride", [(100, 77, 32, 16), (64, 64, 64, 64), (50, 90, 20, 7), (33, 40, 33, 11)])
def test_grid_covers_image_with_reflection_margin(h, w, tile, stride):
    g = grid(h, w, tile, stride)
    pad = (tile - stride) // 2
    assert g.row_offsets[0] == -pad and g.col_offsets[0] == -pad
    assert np.all(np.diff(g.row_offsets) == stride)
    assert g.row_offsets[-1] + tile >= h + pad and g.col_offsets[-1] + tile >= w + pad
    # minimal: one tile fewer would not reach
    if len(g.row_offsets) > 1:
        assert g.row_offsets[-2] + tile < h + pad
    cover = np.zeros((h, w), int)
    for t in g:
        rs, cs = t.inner(h, w)
        cover[rs, cs] += 1
    assert cover.min() >= 1
    assert len(g) == len(list(g)) == g.shape[0] * g.shape[1]


def test_grid_bounds_follow_transform_and_overlap_argument():
    tr = Affine(20.0, 0, 1000.0, 0, -20.0, 5000.0)
    g = grid(100, 100, 50, overlap=10, transform=tr)
    assert g.stride == 40
    t = g[0]
    assert (t.row, t.col) == (-5, -5)
    assert t.bounds == (1000.0 - 100.0, 5000.0 - 45 * 20.0, 1000.0 + 45 * 20.0, 5000.0 + 100.0)
    assert t.window.width == 50 and t.window.row_off == -5


@pytest.mark.parametrize("kw,msg", [
    (dict(tile=200), "larger than the image"),
    (dict(tile=32, stride=40), "larger than the tile"),
    (dict(tile=32, stride=10, overlap=4), "disagree"),
    (dict(tile=32, stride=0), "at least 1"),
])
def test_grid_bad_input(kw, msg):
    with pytest.raises(OrbitmlInputError, match=msg):
        grid(100, 120, **kw)
