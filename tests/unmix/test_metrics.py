"""HySUPP metrics: SAD in degrees after Hungarian matching, RMSE x100, SRE in dB."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.unmix import abundance_rmse, match_endmembers, sad, sad_matrix, sre_db


def test_sad_known_angles_and_matching():
    E = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    th = np.radians(10)
    est = np.array([[0, np.cos(th), np.sin(th)], [0, 0, 2.0], [3.0, 0, 0]])  # permuted, scaled, one rotated
    r = sad(E, est)
    np.testing.assert_array_equal(r.perm, [2, 0, 1])
    np.testing.assert_allclose(r.angles_deg, [0, 10, 0], atol=1e-12)
    assert r.mean_deg == pytest.approx(10 / 3)


def test_hungarian_beats_every_permutation():
    rng = np.random.default_rng(0)
    Er, Ee = rng.uniform(size=(5, 20)), rng.uniform(size=(5, 20))
    S = sad_matrix(Er, Ee)
    best = min(sum(S[i, j] for i, j in enumerate(pm)) for pm in itertools.permutations(range(5)))
    perm = match_endmembers(Er, Ee)
    assert sum(S[i, perm[i]] for i in range(5)) == pytest.approx(best)


def test_rmse_and_sre():
    A = np.array([[0.5, 0.5], [1.0, 0.0]])
    B = np.array([[0.6, 0.4], [1.0, 0.0]])
    assert abundance_rmse(A, B) == pytest.approx(100 * np.sqrt(0.02 / 4))
    assert abundance_rmse(A, B, scale=1) == pytest.approx(np.sqrt(0.02 / 4))
    assert sre_db(A, B) == pytest.approx(10 * np.log10(1.5 / 0.02))
    assert sre_db(A, A) == np.inf
    assert abundance_rmse(A, B[:, ::-1], perm=[1, 0]) == pytest.approx(abundance_rmse(A, B))
    with pytest.raises(OrbitmlInputError):
        abundance_rmse(A, np.full_like(A, np.nan))
