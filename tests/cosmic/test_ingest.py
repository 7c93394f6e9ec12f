import numpy as np
import pytest

from orbitml.cosmic.ingest import frame_list, iter_frames, parse_section, read_frame, remove_overscan
from orbitml.errors import OrbitmlInputError
from tests.conftest import shared_file
from tests.cosmic.conftest import write_fits


def test_parse_section_is_one_based_inclusive_x_first():
    rs, cs = parse_section("[4:13,1:520]", (520, 536))
    assert (rs.start, rs.stop, cs.start, cs.stop) == (0, 520, 3, 13)
    with pytest.raises(OrbitmlInputError, match="outside"):
        parse_section("[1:600,1:10]", (520, 536))
    with pytest.raises(OrbitmlInputError, match="parse"):
        parse_section("1:10,1:10")


def test_overscan_removed_row_by_row_and_trimmed():
    rng = np.random.default_rng(0)
    bias = 300.0 + 5.0 * np.arange(40)[:, None]  # a bias ramp along rows
    raw = np.tile(bias, (1, 30)) + rng.normal(0, 0.5, (40, 30))
    raw[:, 8:] += 100.0  # the science area
    out, level = remove_overscan(raw, "[2:6,1:40]", "[9:30,1:40]")
    assert out.shape == (40, 22)
    assert np.allclose(out, 100.0, atol=2.0)  # ramp gone, signal kept
    assert abs(level - bias.mean()) < 1.0


def test_saao_raw_frame(shared_data):
    fr = read_frame(shared_file("ccd/saao1m_a8280271_raw.fits"))
    assert fr.shape == (520, 512)  # TRIMSEC [17:528,1:520]
    assert (fr.gain, fr.read_noise) == (1.9, 5.0)
    assert fr.exptime == pytest.approx(150.04)
    assert fr.time.startswith("2013-07-13T00:57:33")
    assert fr.sources["gain"] == "header"
    from astropy.io import fits

    raw = fits.getdata(shared_file("ccd/saao1m_a8280271_raw.fits")).astype(float)  # BZERO applied
    expect = raw[:, 16:528] - np.median(raw[:, 3:13])
    assert abs(np.median(fr.data) - np.median(expect)) < 3.0
    assert 150 < fr.bias_level < 400


def test_gmos_defaults_and_sky(shared_data):
    fr = read_frame(shared_file("ccd/gmos_S20190808S0048_cutout.fits"))
    assert fr.hdu == "SCI" and fr.shape == (150, 200)
    assert fr.gain == 1.933 and fr.sources["gain"] == "default"
    assert any("no gain keyword" in n for n in fr.notes)
    assert fr.background is not None and fr.variance is not None
    fr2 = read_frame(shared_file("ccd/gmos_S20190808S0048_cutout.fits"), gain=2.5)
    assert fr2.gain == 2.5 and fr2.sources["gain"] == "override"


def test_hirise_pds3_edr(shared_data):
    fr = read_frame(shared_file("mars/hirise/PSP_001446_1790_BG12_0.IMG"))
    assert fr.shape == (5000, 256) and fr.instrument == "hirise"
    assert fr.time.startswith("2006-11-17T03:27:53")
    assert fr.exptime is None and any("exposure" in n for n in fr.notes)


def test_mdis_like_pds3_detached(tmp_path):
    img = (np.arange(64 * 48).reshape(48, 64) % 4000 + 50).astype(">u2")
    (tmp_path / "EN0001.IMG").write_bytes(img.tobytes())
    lbl = """PDS_VERSION_ID = PDS3
RECORD_TYPE = FIXED_LENGTH
RECORD_BYTES = 128
FILE_RECORDS = 48
^IMAGE = "EN0001.IMG"
INSTRUMENT_ID = "MDIS-NAC"
START_TIME = 2011-04-01T12:00:00.5
EXPOSURE_DURATION = 25 <MS>
OBJECT = IMAGE
  LINES = 48
  LINE_SAMPLES = 64
  SAMPLE_TYPE = MSB_UNSIGNED_INTEGER
  SAMPLE_BITS = 16
END_OBJECT = IMAGE
END
"""
    (tmp_path / "EN0001.LBL").write_text(lbl)
    fr = read_frame(tmp_path / "EN0001.LBL")
    assert fr.instrument == "mdis" and fr.pixel_size_um == 14.0
    assert fr.exptime == pytest.approx(0.025)
    assert np.array_equal(fr.data, img.astype(np.float32))
    assert fr.time.startswith("2011-04-01T12:00:00.5")
    # folder listing keeps the label, not its .IMG
    assert [s.path.name for s in frame_list([tmp_path])] == ["EN0001.LBL"]


def test_bad_inputs_are_clear(tmp_path):
    with pytest.raises(OrbitmlInputError, match="zero"):
        read_frame(write_fits(tmp_path / "zero.fits", np.zeros((20, 20), np.float32)))
    with pytest.raises(OrbitmlInputError, match="saturation"):
        read_frame(write_fits(tmp_path / "sat.fits", np.full((20, 20), 65535, np.uint16),
                              {"SATURATE": 65000}))
    with pytest.raises(OrbitmlInputError, match="3-D cube"):
        read_frame(write_fits(tmp_path / "cube.fits", np.ones((3, 20, 20), np.float32)))
    (tmp_path / "broken.fits").write_bytes(b"SIMPLE  =                    T" + b"\0" * 50)
    with pytest.raises(OrbitmlInputError, match="broken.fits.*FITS"):
        read_frame(tmp_path / "broken.fits")
    with pytest.raises(OrbitmlInputError, match="no such file"):
        read_frame(tmp_path / "missing.fits")


def test_batch_skips_bad_frame_and_csv_overrides(tmp_path):
    rng = np.random.default_rng(1)
    write_fits(tmp_path / "a.fits", rng.normal(100, 5, (16, 16)).astype(np.float32), {"EXPTIME": 10.0})
    (tmp_path / "b.fits").write_bytes(b"not fits at all")
    (tmp_path / "list.csv").write_text("path,gain,exptime\na.fits,3.0,\nb.fits,,\n")
    res = list(iter_frames(frame_list([tmp_path / "list.csv"])))
    assert res[0][1] is not None and res[0][1].gain == 3.0 and res[0][1].exptime == 10.0
    assert res[1][1] is None and "b.fits" in str(res[1][2])
