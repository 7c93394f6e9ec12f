"""The class table and band selection by wavelength."""

import numpy as np
import pytest

from orbitml.crism import bands as cb
from orbitml.crism import classes as cc
from orbitml.errors import OrbitmlInputError
from tests.conftest import shared_file


def test_class_table_has_40_codes_and_33_trained_classes():
    assert sorted(cc.CLASSES) == list(range(1, 41))
    assert len({c.name for c in cc.CLASSES.values()}) == 40
    trained = {c.train_as for c in cc.CLASSES.values()} - {40}  # plagioclase is not in the data set
    assert len(trained) == 33
    # aliases point at classes that train as themselves
    for c in cc.CLASSES.values():
        assert cc.CLASSES[c.train_as].train_as == c.train_as
        assert cc.CLASSES[c.merge_as].merge_as == c.merge_as


def test_alias_and_merge_maps():
    codes = np.array([21, 22, 24, 32, 28, 36, 6, 0])
    assert cc.to_train_codes(codes).tolist() == [15, 19, 23, 31, 27, 34, 6, 0]
    assert cc.to_merged_codes(np.array([18, 20, 37, 14])).tolist() == [14, 19, 5, 14]
    b = cc.broad_codes(np.array([14, 18, 0]))
    assert b[0] == b[1] != 0 and b[2] == 0
    assert cc.broad_names()[b[0] - 1] == "Al smectite"


def test_nominal_grid():
    wl = cb.nominal_wavelengths()
    assert wl.size == 350 and np.all(np.diff(wl) > 0)
    assert wl[0] == pytest.approx(1021.0) and wl[247] == pytest.approx(2648.34)
    assert wl[248] == pytest.approx(2806.97) and wl[-1] == pytest.approx(3476.92)
    spacing = np.diff(wl[:248])
    assert 6.5 < spacing.min() and spacing.max() < 6.7
    assert cb.main_band_mask(wl).sum() == 248 and cb.l_band_mask(wl).sum() == 350


def test_subsets_follow_crism_ml_layout():
    wl = cb.nominal_wavelengths(248)
    subs = cb.ensemble_subsets(wl)
    assert len(subs) == 15
    inter = subs[:4]
    assert [s.size for s in inter] == [55, 54, 54, 54]  # as crism_ml's feat_masks
    assert not set(inter[0]) & set(inter[1])  # interleaved, disjoint
    # the every-4th step restarts after each atmospheric gap: 1.64-1.73 and 1.97-2.06 um are skipped
    gaps = (wl > 1640) & (wl < 1730) | (wl > 1970) & (wl < 2060)
    assert not any(gaps[s].any() for s in inter)
    assert all(np.all(np.diff(s) >= 4) for s in inter)
    wins = subs[4:]
    assert all(s.size == 31 and np.all(np.diff(s) == 1) for s in wins)
    assert min(wl[s[0]] for s in wins) == pytest.approx(1309.5, abs=4)
    assert max(wl[s[-1]] for s in wins) == pytest.approx(2628.5, abs=4)
    assert cb.bland_subset(wl).size == 216  # 91 + 36 + 89 bands as in crism_ml


def test_match_bands_any_order_and_errors():
    wl = cb.nominal_wavelengths()
    rev = wl[::-1] + 0.3  # TRR3: decreasing order
    idx, nfill = cb.match_bands(rev, wl)
    assert nfill == 0 and np.allclose(rev[idx], wl + 0.3)
    with pytest.raises(OrbitmlInputError, match="no product band"):
        cb.match_bands(np.linspace(400, 1000, 100), wl)


def test_real_mtrdr_table_selects_l_bands():
    p = shared_file("crism/frt0000932c_mtr3_wavelengths_nm.csv")
    mw = np.loadtxt(p, delimiter=",", skiprows=1)[:, 1]
    want = cb.nominal_wavelengths()
    idx, nfill = cb.match_bands(mw, want)
    # the joined MTRDR has no L band between 1010 (VNIR) and 1047 nm: 4 bands filled, never from VNIR
    assert nfill == 4
    assert np.all(mw[idx] >= 1047.0)
    assert np.abs(mw[idx[4:]] - want[4:]).max() < 1.5
