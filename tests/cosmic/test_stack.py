import numpy as np
import pytest

from orbitml.cosmic.evaluate import hit_metrics
from orbitml.cosmic.stack import stack_masks
from orbitml.errors import OrbitmlInputError


def _stack(n, seed=0):
    from orbitml.simulate.ccd import inject_cosmic_rays

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64]
    scene = 150.0 + 4000.0 * np.exp(-((yy - 30) ** 2 + (xx - 20) ** 2) / 4.0)  # a star in every frame
    frames, truths, ids = [], [], []
    for i in range(n):
        f = rng.poisson(scene * (1.0 + 0.2 * i)).astype(np.float32) + rng.normal(0, 5, scene.shape)
        inj = inject_cosmic_rays(f, n_hits=4, seed=seed + 10 + i)
        frames.append(inj.image)
        truths.append(inj.mask)
        ids.append(inj.hit_id)
    return np.stack(frames), np.stack(truths), np.stack(ids)


@pytest.mark.parametrize("n", [2, 5])
def test_stack_finds_hits_not_the_star(n):
    frames, truth, ids = _stack(n)
    masks, _ = stack_masks(frames, 5.0, k=5.0)
    hm = hit_metrics(masks, ids)
    assert hm["recall"] >= 0.75
    assert hm["precision"] >= 0.9
    star = np.zeros((64, 64), bool)
    star[27:34, 17:24] = True
    assert not (masks & star[None] & ~truth).any()  # exposure-scaled star core never flagged


def test_stack_needs_two_frames():
    with pytest.raises(OrbitmlInputError, match="at least 2"):
        stack_masks(np.zeros((1, 8, 8)), 5.0)
