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
    # BD1900_2 (CAT's hyperspectral form) is the depth at 1930 nm alone; the paper's two-centre mean
    # would give 0.5 * depth * (1 + exp(-(55/40)^2)) = 0.144 here
    assert r["BD1900_2"][0] == pytest.approx(depth, abs=0.02)
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


def _near(wl, target):
    return int(np.argmin(np.abs(wl - target)))


def _med(spec, wl, target, k):
    """CAT's crism_sumutil_single: median of bands i - k//2 .. i + k//2 (clamped), /EVEN."""
    i = _near(wl, target)
    lo, hi = max(0, i - k // 2), min(wl.size - 1, i + k // 2)
    return float(np.median(spec[lo:hi + 1])), float(wl[i])


def _bd(s, wl, sh, c, lo, ks=5, kc=5, kl=5):
    (r1, w1), (rc, wc), (r2, w2) = _med(s, wl, sh, ks), _med(s, wl, c, kc), _med(s, wl, lo, kl)
    b = (wc - w1) / (w2 - w1)
    return 1 - rc / ((1 - b) * r1 + b * r2)


def _span(wl, lo, hi):
    return np.arange(_near(wl, lo), _near(wl, hi) + 1)


def _hand_cat(s, wl):
    """The parameters corrected to CAT's forms, one spectrum, written out from the IDL routines."""
    out = {"BD1900_2": _bd(s, wl, 1850, 1930, 2067)}
    # BD1900r2: continuum R1815-R2132 (kernel 5), six single bands in, six out
    (ra, wa), (rb, wb) = _med(s, wl, 1815, 5), _med(s, wl, 2132, 5)

    def cr(t):
        r, w = _med(s, wl, t, 1)
        return r / (ra + (rb - ra) / (wb - wa) * (w - wa))

    out["BD1900r2"] = 1 - sum(map(cr, (1908, 1914, 1921, 1928, 1934, 1941))) / sum(
        map(cr, (1862, 1869, 1875, 2112, 2120, 2126)))
    # OLINDEX3: (Rc - R)/|Rc| at 1210, 1250, 1263, 1276, 1330, weights .1 .1 .2 .2 .4, all kernels 7
    (ra, wa), (rb, wb) = _med(s, wl, 1750, 7), _med(s, wl, 1862, 7)
    ol = 0.0
    for t, wt in zip((1210, 1250, 1263, 1276, 1330), (0.1, 0.1, 0.2, 0.2, 0.4), strict=True):
        r, w = _med(s, wl, t, 7)
        rc = rb + (rb - ra) / (wb - wa) * (w - wb)
        ol += wt * (rc - r) / abs(rc)
    out["OLINDEX3"] = ol
    # BDCARB (CAT since 2011): centres are means of 2320/2330 and 2520/2530
    R = {t: _med(s, wl, t, 5)[0] for t in (2230, 2320, 2330, 2390, 2520, 2530, 2600)}
    W = {t: float(wl[_near(wl, t)]) for t in R}
    a = ((W[2330] + W[2320]) / 2 - W[2230]) / (W[2390] - W[2230])
    c = ((W[2530] + W[2520]) / 2 - W[2390]) / (W[2600] - W[2390])
    out["BDCARB"] = 1 - np.sqrt(((R[2320] + R[2330]) / 2) / ((1 - a) * R[2230] + a * R[2390])
                                * ((R[2520] + R[2530]) / 2) / ((1 - c) * R[2390] + c * R[2600]))
    # BDI1000IR / BDI2000: 75th percentile of 1330..1875 at its median wavelength, median (no /EVEN)
    # of 2430..2600 at its median wavelength
    i1, i2 = _span(wl, 1330, 1875), _span(wl, 2430, 2600)
    p1 = sorted(s[i1])[int(0.75 * i1.size)]
    m2 = sorted(s[i2])[i2.size // 2]
    w1, w2 = np.median(wl[i1]), np.median(wl[i2])
    for name, lo, hi in (("BDI1000IR", 1020, 1255), ("BDI2000", 1660, 2390)):
        idx = _span(wl, lo, hi)
        cont = m2 + (m2 - p1) / (w2 - w1) * (wl[idx] - w2)
        y = 1 - s[idx] / cont
        x = wl[idx] / 1000
        out[name] = sum((x[j + 1] - x[j]) * (y[j] + y[j + 1]) / 2 for j in range(idx.size - 1))
    # VAR: the line through R1014 and R2287; squared residuals over the bands 1021..2253
    ia, ib = _near(wl, 1014), _near(wl, 2287)
    idx = _span(wl, 1021, 2253)
    line = s[ia] + (s[ib] - s[ia]) / (wl[ib] - wl[ia]) * (wl[idx] - wl[ia])
    out["VAR"] = float(((line - s[idx]) ** 2).sum())
    # BD3400_2: even kernels 10 read 11 bands centred (CAT), not i-5..i+4
    out["BD3400_2"] = _bd(s, wl, 3250, 3420, 3630, 10, 15, 10)
    # RPEAK1: 4th-order fit through 11 single bands, maximum on a 1001-point grid (CAT)
    pts = [_near(wl, t) for t in (442, 533, 600, 710, 740, 775, 800, 833, 860, 892, 925)]
    x = wl[pts] / 1000
    coef = np.polyfit(x, s[pts], 4)
    grid = np.linspace(x.min(), x.max(), 1001)
    model = np.polyval(coef, grid)
    out["RPEAK1"] = grid[np.argmax(model)]
    idx = _span(wl, 833, 1023)
    y, xx = 1 - s[idx] / model.max(), wl[idx] / 1000
    out["BDI1000VIS"] = sum((xx[j + 1] - xx[j]) * (y[j] + y[j + 1]) / 2 for j in range(idx.size - 1))
    return out


CAT_PARAMS = ["BD1900_2", "BD1900r2", "OLINDEX3", "BDCARB", "BDI1000IR", "BDI2000", "VAR", "BD3400_2",
              "RPEAK1", "BDI1000VIS"]


def test_real_mtrdr_cat_parameters_match_hand_calculation(mtrdr):
    scene, data, wl = mtrdr
    out = summary_parameters(scene, CAT_PARAMS)
    valid = ~(data == 65535).all(axis=0)
    assert np.isfinite(out.values[:, valid]).all()
    for (y, x) in [tuple(v) for v in np.argwhere(valid)[[0, 57, 211, -1]]]:
        hand = _hand_cat(data[:, y, x].astype(np.float64), wl)
        for j, name in enumerate(CAT_PARAMS):
            tol = 5e-4 if name == "RPEAK1" else 0.0  # RPEAK1: one step of the 1001-point grid
            assert out.values[j, y, x] == pytest.approx(hand[name], rel=2e-5, abs=max(tol, 2e-7)), name
    # where the fit matters: on this MTRDR the CAT peak lies outside the 632-709 nm gap for most pixels
    rp = out.values[CAT_PARAMS.index("RPEAK1")][valid]
    assert np.mean((rp > 0.632) & (rp < 0.709)) < 0.27


def test_real_mtrdr_parameters_match_hand_calculation(mtrdr):
    scene, data, wl = mtrdr
    names = ["RBR", "SINDEX2", "D2300", "MIN2295_2480", "BD2210_2"]
    out = summary_parameters(scene, names)
    assert list(out.coords["band_name"].values) == names
    assert out.rio.crs == scene.rio.crs and out.rio.transform() == scene.rio.transform()
    valid = ~(data == 65535).all(axis=0)
    assert np.isnan(out.values[:, ~valid]).all() and np.isfinite(out.values[:, valid]).all()

    for (y, x) in [tuple(v) for v in np.argwhere(valid)[[0, 57, -1]]]:
        s = data[:, y, x].astype(np.float64)
        # RBR = R770 / R440
        assert out.sel(band=1).values[y, x] == pytest.approx(_med(s, wl, 770, 5)[0] / _med(s, wl, 440, 5)[0],
                                                             rel=1e-5)
        # SINDEX2 = 1 - (a R2120 + b R2400) / R2290, kernels 5, 7, 3
        (r1, w1), (rc, wc), (r2, w2) = _med(s, wl, 2120, 5), _med(s, wl, 2290, 7), _med(s, wl, 2400, 3)
        b = (wc - w1) / (w2 - w1)
        sindex2 = 1 - ((1 - b) * r1 + b * r2) / rc
        assert out.sel(band=2).values[y, x] == pytest.approx(sindex2, rel=1e-5, abs=1e-7)
        # D2300, continuum 1815-2530 (kernel 5)
        (ra, wa), (rb, wb) = _med(s, wl, 1815, 5), _med(s, wl, 2530, 5)

        def rel(t, k, ra=ra, wa=wa, rb=rb, wb=wb, s=s):
            r, w = _med(s, wl, t, k)
            return r / (ra + (rb - ra) * (w - wa) / (wb - wa))

        num = rel(2290, 3) + rel(2320, 3) + rel(2330, 3)
        d2300 = 1 - num / (rel(2120, 5) + rel(2170, 5) + rel(2210, 5))
        assert out.sel(band=3).values[y, x] == pytest.approx(d2300, rel=1e-5, abs=1e-7)
        # MIN2295_2480 = min(BD2295[2165, 2364], BD2480[2364, 2570]), all kernels 5
        assert out.sel(band=4).values[y, x] == pytest.approx(
            min(_bd(s, wl, 2165, 2295, 2364), _bd(s, wl, 2364, 2480, 2570)), rel=1e-5, abs=1e-7)
        assert out.sel(band=5).values[y, x] == pytest.approx(_bd(s, wl, 2165, 2210, 2290), rel=1e-5, abs=1e-7)


def test_real_mtrdr_whole_table_runs_and_flags_uncovered(mtrdr):
    scene, _, _ = mtrdr
    with pytest.warns(RuntimeWarning, match="R3920"):  # this product ends at 3897 nm
        out = summary_parameters(scene)
    names = list(out.coords["band_name"].values)
    assert len(names) == len(PARAMETERS)
    assert np.isnan(out.values[names.index("R3920")]).all()
    rpeak = out.values[names.index("RPEAK1")]
    assert np.nanmin(rpeak) >= 0.442 and np.nanmax(rpeak) <= 0.926  # µm, inside the fitted range


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
