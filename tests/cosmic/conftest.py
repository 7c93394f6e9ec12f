"""Small frame writers shared by the cosmic tests (B part)."""

from __future__ import annotations

import pytest


def write_fits(path, data, header=None, extensions=None):
    from astropy.io import fits

    hdr = fits.Header()
    for k, v in (header or {}).items():
        hdr[k] = v
    hdus = [fits.PrimaryHDU(data, header=hdr)]
    for name, arr in (extensions or {}).items():
        hdus.append(fits.ImageHDU(arr, name=name))
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.fixture
def sim_frame():
    """A 96x96 simulated sky frame (electrons) with 6 injected hits and its exact truth."""
    from orbitml.simulate.ccd import inject_cosmic_rays, simulate_frame

    frame, _ = simulate_frame((96, 96), sky_e=200.0, read_noise_e=5.0, n_stars=2, seed=3)
    inj = inject_cosmic_rays(frame, n_hits=6, seed=4)
    return frame, inj
