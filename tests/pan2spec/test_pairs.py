import json

import numpy as np
import pytest
import rasterio

from orbitml.cli.main import cli_run
from orbitml.pan2spec.align import ShiftField
from orbitml.pan2spec.pairs import body_of, build_pair, load_pair, select_bands
from orbitml.simulate.pan2spec import MARS_EQC_WKT, simulate_pair


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    d = tmp_path_factory.mktemp("raw")
    return simulate_pair(d, ctx_shape=(160, 160), seed=5, shift=(1.6, -2.2), shift_gradient=(0.0, 0.8))


def test_simulated_files_are_georeferenced(raw):
    with rasterio.open(raw.ctx_path) as c, rasterio.open(raw.crism_path) as s:
        assert body_of(c.crs) == "Mars" and c.crs == s.crs and s.nodata == 65535
        assert abs(s.transform.a) == 3 * abs(c.transform.a)
        assert float(s.tags(1)["wavelength"]) == raw.wavelengths[0]
        data = s.read(1)
    assert (data == 65535).any() and (data != 65535).mean() > 0.8  # ragged nodata edges
    again = simulate_pair(raw.ctx_path.parent.parent / "again", ctx_shape=(160, 160), seed=5, shift=(1.6, -2.2),
                          shift_gradient=(0.0, 0.8))
    assert again.crism_path.read_bytes() == raw.crism_path.read_bytes()


def test_build_recovers_the_misregistration(raw, tmp_path):
    pair = build_pair(raw.ctx_path, raw.crism_path, tmp_path, name="p", dem_path=raw.dem_path)
    q = pair.stats["quality"]
    true_c = raw.shift_at(79.5, 79.5)
    assert np.allclose(q["global_shift_px"], true_c, atol=0.3)
    # the local correction follows the true (non-constant) shift field better than one global shift
    def field_errors(pr):
        qq = pr.stats["quality"]
        g = qq["shift_field_grid"]
        field = ShiftField(tuple(g["shape"]), np.array(qq["shift_field_coef"]))
        row = g["shape"][0] / 2
        est = [field.at(row, f * g["shape"][1]) for f in (0.2, 0.5, 0.8)]
        true = [raw.shift_at(row + g["row"], f * g["shape"][1] + g["col"]) for f in (0.2, 0.5, 0.8)]
        return np.abs(np.subtract(est, true)).max()

    glob = build_pair(raw.ctx_path, raw.crism_path, tmp_path, name="g", n_windows=1)
    assert field_errors(pair) < 0.25 and field_errors(pair) < field_errors(glob)
    assert q["n_windows_used"] >= 6
    assert q["residual_shift_px"] < 0.25
    # aligned CRISM correlates better with the (blurred) truth than the unaligned one
    unal = build_pair(raw.ctx_path, raw.crism_path, tmp_path, name="u", align=False)
    r0, c0 = pair.stats["ctx_window"]["row"], pair.stats["ctx_window"]["col"]
    h, w = pair.stats["shape"]
    truth = raw.truth[2, r0: r0 + h, c0: c0 + w]

    def corr(p):
        with rasterio.open(p.crism) as ds, rasterio.open(p.valid) as vs:
            band, v = ds.read(3), vs.read(1).astype(bool)
        rr, cc = p.stats["ctx_window"]["row"] - r0, p.stats["ctx_window"]["col"] - c0
        t = truth[rr: rr + band.shape[0], cc: cc + band.shape[1]]
        v = v[: t.shape[0], : t.shape[1]]
        return np.corrcoef(band[: t.shape[0], : t.shape[1]][v], t[v])[0, 1]

    assert corr(pair) > corr(unal) + 0.01
    # cut to the CRISM footprint, every file on one grid, stats from the data
    fp = raw.footprint
    assert h <= fp[1] - fp[0] and w <= fp[3] - fp[2]
    with rasterio.open(pair.ctx) as a, rasterio.open(pair.crism) as b, rasterio.open(pair.dem) as d:
        assert a.transform == b.transform == d.transform and a.crs == b.crs == d.crs
        crism = b.read()
        assert [float(b.tags(i + 1)["wavelength"]) for i in range(3)] == [592.0, 533.0, 442.0]
    with rasterio.open(pair.valid) as vs:
        v = vs.read(1).astype(bool)
    assert np.isfinite(crism[:, v]).all() and v.mean() > 0.8
    assert pair.stats["crism"][0]["mean"] == pytest.approx(float(crism[0][v].mean()), rel=1e-5)
    lo, hi = pair.stats["crism_clip"][0]
    assert crism[0][v].min() >= lo and crism[0][v].max() <= hi
    assert pair.stats["simulated"] and load_pair(pair.folder).wavelengths == [592.0, 533.0, 442.0]
    assert (pair.folder / "quality.png").exists()


def test_select_bands():
    wl = np.array([436.1, 442.6, 533.0, 592.5, 1080.0, 2503.0])
    assert select_bands(wl, (592.0, 533.0, 442.0)) == [3, 2, 1]
    with pytest.raises(ValueError, match="no band within"):
        select_bands(wl, (3500.0,))


def _rewrite(src, dst, **changes):
    with rasterio.open(src) as ds:
        prof, data, tags = ds.profile, ds.read(), [ds.tags(i + 1) for i in range(ds.count)]
    prof.update({k: v for k, v in changes.items() if k in ("crs", "transform")})
    if "data" in changes:
        data = changes["data"](data)
    with rasterio.open(dst, "w", **prof) as out:
        out.write(data)
        if changes.get("keep_tags", True):
            for i, t in enumerate(tags):
                out.update_tags(i + 1, **t)
    return dst


def test_build_refusals(raw, tmp_path, capsys):
    out = tmp_path / "pairs"
    base = ["pan2spec", "build", str(raw.ctx_path)]
    with rasterio.open(raw.crism_path) as ds:
        tf = ds.transform
    far = _rewrite(raw.crism_path, tmp_path / "far.tif", transform=tf * tf.translation(10_000, 0))
    earth = _rewrite(raw.crism_path, tmp_path / "earth.tif", crs="EPSG:32612")
    nowl = _rewrite(raw.crism_path, tmp_path / "nowl.tif", keep_tags=False)
    empty = _rewrite(raw.crism_path, tmp_path / "empty.tif",
                     data=lambda a: np.where(np.arange(a.shape[2]) < a.shape[2] - 6, 65535, a).astype(a.dtype))
    cases = [(far, [], "do not overlap"), (earth, [], "Earth"), (nowl, [], "no wavelength table"),
             (empty, [], "valid pixels"), (raw.crism_path, ["--bands", "3900"], "no band within")]
    for path, extra, msg in cases:
        assert cli_run([*base, str(path), "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert msg in err and str(path.name) in err and err.count("\n") == 1
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
    # the same product with its wavelength table passed explicitly builds
    assert cli_run([*base, str(nowl), "--out", str(out), "--wavelengths", str(raw.wavelengths_path)]) == 0
    stats = json.loads(next(out.iterdir()).joinpath("stats.json").read_text())
    assert stats["crism_band_indices"] == [3, 2, 1]
    assert MARS_EQC_WKT.split(",")[0] in stats["crs_wkt"] or "Mars" in stats["crs_wkt"]
