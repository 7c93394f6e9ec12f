"""Parametric mineral spectra: band positions and depths are exactly what the table says."""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.simulate import (
    FAMILIES,
    absorption_spectrum,
    family_params,
    library_from_families,
    mineral_spectrum,
)

WL = np.arange(350.0, 2650.0, 1.0)


def test_table_has_the_documented_families_and_centres():
    assert len(FAMILIES) >= 12
    c = {k: f.centres_um for k, f in FAMILIES.items()}
    assert 2.28 <= max(c["fe_mg_smectite"]) <= 2.40 and any(2.29 <= x <= 2.31 for x in c["fe_mg_smectite"])
    assert 2.21 in c["al_smectite"] and {2.165, 2.205} <= set(c["kaolinite"])
    assert {2.30, 2.50} <= set(c["mg_carbonate"]) and 1.05 in c["olivine"]
    assert {1.435, 2.281} <= set(c["co2_ice"]) and 0.86 in c["hematite"] and 2.265 in c["jarosite"]
    for f in FAMILIES.values():
        assert len(f.centres_um) == len(f.fwhm_um) == len(f.depths) and all(0 < d < 1 for d in f.depths)


def test_isolated_band_depth_is_exact():
    # continuum removal with the known continuum: 1 - R/C at the band centre equals the depth
    for name in ("hematite", "plagioclase", "co2_ice"):
        fam = FAMILIES[name]
        for scale in (0.5, 1.0, 1.7):
            p = family_params(name, depth_scale=scale)
            wl = np.array([1000.0 * c for c in p["centres_um"]])
            r = absorption_spectrum(wl, p)
            level, slope = fam.continuum
            cont = level + slope * (wl / 1000.0 - 1.5)
            np.testing.assert_allclose(1.0 - r / cont, np.minimum(np.array(fam.depths) * scale, 0.95), rtol=1e-9)


def test_band_minimum_sits_at_the_centre():
    p = family_params("al_smectite", continuum=(0.4, 0.0))
    r = absorption_spectrum(WL, p)
    window = (WL > 2150) & (WL < 2270)
    assert WL[window][np.argmin(r[window])] == pytest.approx(2210.0, abs=1.0)
    # flat continuum away from bands
    assert r[WL == 700.0][0] == pytest.approx(0.4, rel=1e-6)


def test_continuum_and_jitter():
    a = mineral_spectrum("olivine", WL, continuum=(0.3, 0.1))
    base = mineral_spectrum("olivine", WL, continuum=(0.3, 0.0))
    assert a[-1] > base[-1]  # positive slope reddens
    j1 = mineral_spectrum("olivine", WL, rng=np.random.default_rng(1))
    j2 = mineral_spectrum("olivine", WL, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(j1, j2)
    assert not np.allclose(j1, mineral_spectrum("olivine", WL))
    with pytest.raises(OrbitmlInputError, match="unknown mineral family"):
        mineral_spectrum("unobtainium", WL)
    with pytest.raises(OrbitmlInputError, match="continuum"):
        mineral_spectrum("hematite", WL, continuum=(0.1, -1.0))


def test_library_from_families_records_exact_parameters():
    lib = library_from_families(WL, ["kaolinite", "jarosite"], variants=4, seed=7)
    assert len(lib) == 8 and lib.names[0] == "kaolinite_0" and lib.metadata["family"][5] == "jarosite"
    for spec, p in zip(lib.spectra, lib.metadata["params"], strict=True):
        np.testing.assert_array_equal(spec, absorption_spectrum(WL, p))
    np.testing.assert_array_equal(lib.spectra[0], mineral_spectrum("kaolinite", WL))  # variant 0 = table
    again = library_from_families(WL, ["kaolinite", "jarosite"], variants=4, seed=7)
    np.testing.assert_array_equal(lib.spectra, again.spectra)
    other = library_from_families(WL, ["kaolinite", "jarosite"], variants=4, seed=8)
    assert not np.array_equal(lib.spectra, other.spectra)
    sub = lib["jarosite"]
    assert sub.metadata["family"] == ["jarosite"] * 4 and len(sub.metadata["params"]) == 4
    assert np.all((lib.spectra > 0) & (lib.spectra < 1))
