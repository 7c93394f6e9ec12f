"""Fixtures for the unmixing tests: the MiSiCNet sim1/sim2 scenes (real files, read in place)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio

from tests.conftest import shared_file


def load_hsi(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Y (n, 224), E (6, 224), A (n, 6)) for sim1/sim2; Y = A E exactly."""
    Y = sio.loadmat(shared_file(f"hsi/{name}/Y_clean.mat"))["Y_clean"]
    E = sio.loadmat(shared_file(f"hsi/{name}/E.mat"))["E"]
    A = sio.loadmat(shared_file(f"hsi/{name}/A_true.mat"))["A_true"]
    return Y.reshape(-1, Y.shape[-1]), E.T.copy(), A.reshape(-1, A.shape[-1])


@pytest.fixture(scope="session", params=["sim1", "sim2"])
def hsi(request):
    return (request.param, *load_hsi(request.param))


@pytest.fixture(scope="session")
def sim1():
    return load_hsi("sim1")
