"""Summary parameters: known band depths on simulated spectra, hand calculation on the real MTRDR."""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.crism.params import compute_parameters, summary_parameters
from orbitml.crism.params_table import PARAMETERS
from orbitml.errors import OrbitmlInputError
from tests.conftest import shared_file

REQUIRED = """R770 RBR BD530_2 SH600_2 SH770 BD640_2 BD860_2 BD920_2 RPEAK1 BDI1000VIS R440 IRR1 BDI1000IR
OLINDEX3 R1330 BD1300 LCPINDEX2 HCPINDEX2 VAR ISLOPE1 BD1400 BD1435 BD1500_2 ICER1_2 BD1750_2 BD1900_2
BD1900R2 BDI2000 BD2100_2 BD2165 BD2190 MIN2200 BD2210_2 D2200 BD2230 BD2250 MIN2250 BD2265 BD2290 D2300
BD2355 SINDEX2 ICER2_2 MIN2295_2480 MIN2345_2537 BD2500_2 BD3000 BD3100 BD3200 BD3400_2 CINDEX2 BD2600
IRR2 IRR3 R530 R600 R1080 R1506 R2529 R3920""".split()

# CRISM-like band centres: 6.55 nm spacing from 400 to 4000 nm
WL = np.arange(400.0, 4000.0, 6.55)


def _absorbed(centre, depth, width, slope=0.0, power=2.0, base=0.3):
    """Linear continuum times one absorption ``1 - depth * exp(-|dx/width|^power)``."""
    cont = base + slope * (WL - 2000.0) / 1000.0
    band = 1.0 - depth * np.exp(-np.abs((WL - centre) / width) ** power)
    return cont * band


def test_table_has_every_required_parameter_with_full_rows():
    upper = {k.upper() for k in PARAMETERS}
    assert not [n for n in REQUIRED if n.upper() not in upper]
    for p in PARAMETERS.values():
        assert len(p.wavelengths) == len(p.kernels) and p.description and p.indicates
        assert all(k >= 1 for k in p.kernels)
        if p.form == "INDEX":
            assert len(p.weights) == len(p.wavelengths) - 2
            assert abs(sum(p.weights) - 1.0) < 1e-9


@pytest.mark.parametrize("slope", [0.0, 0.08])
def test_flat_bottomed_absorptions_give_their_depth_exactly(slope):
    # flat-bottomed bands (super-Gaussian, power 20) wide enough to cover every centre band
    X = np.stack([_absorbed(1955, 0.2, 70, slope, power=20),
                  _absorbed(2310, 0.15, 45, slope, power=20),
                  _absorbed(2310, 0.0, 30, slope)])
    r = compute_parameters(X, WL, ["BD1900_2", "D2300", "BD2290"])
    np.testing.assert_allclose(r["BD1900_2"], [0.2, 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(r["D2300"], [0.0, 0.15, 0.0], atol=1e-5)
    # a featureless sloped continuum has zero depth everywhere
    np.testing.assert_allclose(r.values[2], 0.0, atol=1e-9)


def test_gaussian_absorption_depth_is_recovered_within_tolerance():
    depth = 0.25
    X = np.stack([_absorbed(1930, depth, 40), _absorbed(2310, depth, 45), _absorbed(2210, depth, 20)])
    r = compute_parameters(X, WL, ["BD1900_2", "D2300", "BD2210_2"])
    # BD1900_2 averages 1930 and 1985 nm: the Gaussian's value at 1985 is exp(-(55/40)^2) of the depth
    expect_19 = 0.5 * depth + 0.5 * depth * np.exp(-((1985 - 1930) / 40) ** 2)
    assert r["BD1900_2"][0] == pytest.approx(expect_19, abs=0.01)
    assert 0.85 * depth < r["D2300"][1] <= depth
    # a narrow band: the 5-band median kernel takes a value 1 band off the minimum, so the depth is
    # under-estimated but bounded by exp(-(13/20)^2) of it
    assert 0.65 * depth < r["BD2210_2"][2] <= depth
    assert abs(r["BD1900_2"][1]) < 1e-3 and abs(r["D2300"][0]) < 0.02


def test_peak_slope_variance_and_ratios_on_analytic_spectra():
    x = WL / 1000.0
    peaked = 0.3 - 2.0 * (x - 0.752) ** 2
    line = 0.1 + 0.05 * x
    r = compute_parameters(np.stack([peaked, line]), WL, ["RPEAK1", "ISLOPE1", "VAR", "RBR", "IRR2"])
    assert r["RPEAK1"][0] == pytest.approx(0.752, abs=0.001)
    assert r["ISLOPE1"][1] == pytest.approx(-0.05, rel=1e-6)  # (R1815 - R2530) / Δλ(µm)
    assert r["VAR"][1] == pytest.approx(0.0, abs=1e-12)
    i770, i440 = np.argmin(abs(WL - 770)), np.argmin(abs(WL - 440))
    assert r["RBR"][1] == pytest.approx(line[i770] / line[i440])


def test_unsorted_wavelengths_give_the_same_values():
    X = np.stack([_absorbed(1930, 0.2, 40, 0.05), _absorbed(2300, 0.1, 30)])
    a = compute_parameters(X, WL, None, warn=False)
    b = compute_parameters(X[:, ::-1], WL[::-1], None, warn=False)
    np.testing.assert_array_equal(np.isnan(a.values), np.isnan(b.values))
    np.testing.assert_allclose(a.values, b.values, equal_nan=True)
    # the band used for 1930 nm is recorded in the caller's band order
    used = [u for u in b.bands_used["BD1900_2"] if u[0] == 1930.0][0]
    assert WL[::-1][used[1]] == pytest.approx(used[2]) and abs(used[2] - 1930) < 3.3


def test_missing_coverage_nan_with_warning_or_error_when_asked():
    vnir = WL[WL < 1000]
    X = np.full((2, vnir.size), 0.2)
    with pytest.warns(RuntimeWarning, match="BD1900_2"):
        r = compute_parameters(X, vnir)
    assert np.isnan(r["BD1900_2"]).all() and "BD1900_2" in r.missing
    assert np.isfinite(r["RBR"]).all()
    with pytest.raises(OrbitmlInputError, match="D2300"):
        compute_parameters(X, vnir, ["RBR", "D2300"])
    with pytest.raises(OrbitmlInputError, match="unknown summary parameter"):
        compute_parameters(X, vnir, ["NOPE"])


# --- the real MTRDR subset -------------------------------------------------------------------

@pytest.fixture(scope="module")
def mtrdr():
    import rasterio

    from orbitml.scene import make_scene

    tif = shared_file("crism/frt0000932c_07_if164j_mtr3_subsampled.tif")
    wl = np.loadtxt(shared_file("crism/frt0000932c_mtr3_wavelengths_nm.csv"), delimiter=",", skiprows=1)[:, 1]
    with rasterio.open(tif) as ds:
        data, crs, transform, nodata = ds.read(), ds.crs, ds.transform, ds.nodata
    return make_scene(data, wavelength=wl, crs=crs, transform=transform, nodata=nodata), data, wl


def _med(spec, wl, target, k):
    i = int(np.argmin(np.abs(wl - target)))
    lo = i - k // 2  # a kernel at the end of the data is truncated
    return float(np.median(spec[max(lo, 0):lo + k])), float(wl[i])


def test_real_mtrdr_parameters_match_hand_calculation(mtrdr):
    scene, data, wl = mtrdr
    names = ["BD1900_2", "RBR", "SINDEX2", "D2300", "MIN2295_2480", "BD2210_2"]
    out = summary_parameters(scene, names)
    assert list(out.coords["band_name"].values) == names
    assert out.rio.crs == scene.rio.crs and out.rio.transform() == scene.rio.transform()
    valid = ~(data == 65535).all(axis=0)
    assert np.isnan(out.values[:, ~valid]).all() and np.isfinite(out.values[:, valid]).all()

    for (y, x) in [tuple(v) for v in np.argwhere(valid)[[0, 57, -1]]]:
        s = data[:, y, x].astype(np.float64)
        # BD1900_2: continuum 1850-2067 (5-band medians), centres 1930 and 1985
        r1850, w1850 = _med(s, wl, 1850, 5)
        r2067, w2067 = _med(s, wl, 2067, 5)
        depth = []
        for c in (1930, 1985):
            rc, wc = _med(s, wl, c, 5)
            b = (wc - w1850) / (w2067 - w1850)
            depth.append(1 - rc / ((1 - b) * r1850 + b * r2067))
        assert out.sel(band=1).values[y, x] == pytest.approx(np.mean(depth), rel=1e-5, abs=1e-7)
        # RBR = R770 / R440
        assert out.sel(band=2).values[y, x] == pytest.approx(_med(s, wl, 770, 5)[0] / _med(s, wl, 440, 5)[0],
                                                             rel=1e-5)
        # SINDEX2 = 1 - (a R2120 + b R2400) / R2290, kernels 5, 7, 3
        (r1, w1), (rc, wc), (r2, w2) = _med(s, wl, 2120, 5), _med(s, wl, 2290, 7), _med(s, wl, 2400, 3)
        b = (wc - w1) / (w2 - w1)
        sindex2 = 1 - ((1 - b) * r1 + b * r2) / rc
        assert out.sel(band=3).values[y, x] == pytest.approx(sindex2, rel=1e-5, abs=1e-7)
        # D2300, continuum 1815-2530 (kernel 5)
        (ra, wa), (rb, wb) = _med(s, wl, 1815, 5), _med(s, wl, 2530, 5)

        def rel(t, k, ra=ra, wa=wa, rb=rb, wb=wb, s=s):
            r, w = _med(s, wl, t, k)
            return r / (ra + (rb - ra) * (w - wa) / (wb - wa))

        num = rel(2290, 3) + rel(2320, 3) + rel(2330, 3)
        d2300 = 1 - num / (rel(2120, 5) + rel(2170, 5) + rel(2210, 5))
        assert out.sel(band=4).values[y, x] == pytest.approx(d2300, rel=1e-5, abs=1e-7)

        # MIN2295_2480 = min(BD2295[2165, 2364], BD2480[2364, 2570]), all kernels 5
        def bd(sh, c, lo, s=s):
            (r1, w1), (rc, wc), (r2, w2) = _med(s, wl, sh, 5), _med(s, wl, c, 5), _med(s, wl, lo, 5)
            b = (wc - w1) / (w2 - w1)
            return 1 - rc / ((1 - b) * r1 + b * r2)

        assert out.sel(band=5).values[y, x] == pytest.approx(min(bd(2165, 2295, 2364), bd(2364, 2480, 2570)),
                                                             rel=1e-5, abs=1e-7)
        assert out.sel(band=6).values[y, x] == pytest.approx(bd(2165, 2210, 2290), rel=1e-5, abs=1e-7)


def test_real_mtrdr_whole_table_runs_and_flags_uncovered(mtrdr):
    scene, _, _ = mtrdr
    with pytest.warns(RuntimeWarning, match="R3920"):  # this product ends at 3897 nm
        out = summary_parameters(scene)
    names = list(out.coords["band_name"].values)
    assert len(names) == len(PARAMETERS)
    assert np.isnan(out.values[names.index("R3920")]).all()
    rpeak = out.values[names.index("RPEAK1")]
    assert np.nanmin(rpeak) >= 0.6 and np.nanmax(rpeak) <= 0.83  # µm, inside the fitted range


def test_demo_section_indicators_peak_on_their_minerals(tmp_path):
    from orbitml.crism import demo_params
    from orbitml.report.demo import DemoContext

    ctx = DemoContext(out=tmp_path, quick=True)
    demo_params.section(ctx)
    assert (tmp_path / "crism_params" / "parameters.tif").exists()
    assert (tmp_path / "crism_params" / "browse" / "MAF.png").exists()
    sec = ctx.report.sections[-1]
    assert len(sec.figures) == len(demo_params.PRODUCTS)
    # each indicator is higher where its mineral dominates and follows its abundance (simulator truth)
    sim = demo_params.simulate(40, seed=0)
    rows = demo_params.indicator_rows(sim, summary_parameters(sim.scene, list(demo_params.INDICATORS.values())))
    assert len(rows) == 5
    for r in rows:
        assert r["median where dominant"] > r["median elsewhere"] + 0.02, r
        assert r["corr. with abundance"] > 0.4, r
