"""Broken and hostile files: one line, exit 2, the file named, nothing written (issue: bad input)."""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.cli.main import cli_run
from orbitml.errors import OrbitmlInputError
from orbitml.io import open_scene, write_scene
from orbitml.scene import make_scene
from tests.conftest import shared_file


def _envi(tmp_path, **edits):
    """A 2 x 6 x 5 ENVI cube ``cube.img`` whose header fields are replaced or added by ``edits``."""
    from tests.data.bad_inputs import _envi as write_envi

    return write_envi(tmp_path, data=np.arange(2 * 6 * 5, dtype=np.float32).reshape(2, 6, 5), wl=[500.0, 600.0],
                      **edits)


def _fails(capsys, argv, *words):
    assert cli_run(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_good_envi_still_opens(tmp_path):
    assert open_scene(_envi(tmp_path)).shape == (2, 6, 5)


def test_truncated_envi(tmp_path, capsys):
    img = _envi(tmp_path)
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])
    _fails(capsys, ["info", str(img)], "truncated", "cube.img")
    _fails(capsys, ["convert", str(img), str(tmp_path / "out.tif")], "truncated")
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("edits,word", [
    ({"data_type": 6}, "complex"),
    ({"byte_order": 7}, "byte order"),
    ({"wavelength": "{ nan , 600 }"}, "not finite"),
    ({"lines": -6}, "not a valid image dimension"),
    ({"interleave": "xyz"}, "interleave"),
])
def test_bad_envi_headers(tmp_path, capsys, edits, word):
    img = _envi(tmp_path, **edits)
    _fails(capsys, ["info", str(img)], word)


def test_wavelength_table_of_nans(tmp_path, capsys):
    img = _envi(tmp_path)
    csv = tmp_path / "wl.csv"
    csv.write_text("wavelength_nm\nnan\nnan\n")
    _fails(capsys, ["info", str(img), "--wavelengths", str(csv)], "not finite", "wl.csv")


def test_truncated_geotiff(tmp_path, capsys):
    sc = make_scene(np.random.default_rng(0).random((1, 600, 600)).astype(np.float32))
    tif = write_scene(sc, tmp_path / "a.tif")
    data = tif.read_bytes()
    tif.write_bytes(data[: int(len(data) * 0.6)])
    _fails(capsys, ["info", str(tif)], "truncated", "a.tif")


def _pds3(tmp_path, pointer, lines=4, samples=4, stype="MSB_UNSIGNED_INTEGER"):
    """A PDS3 label ``img.lbl`` and 16 bytes of pixels ``img.raw`` (the bad-input suite's writer)."""
    from tests.data.bad_inputs import _pds3 as write_pds3

    return write_pds3(tmp_path, pointer, lines, samples, stype, data=bytes(range(16)))


def test_pds3_good_label_reads(tmp_path):
    sc = open_scene(_pds3(tmp_path, '"img.raw"'))
    assert sc.shape == (1, 4, 4) and int(sc.values[0, 3, 3]) == 15


@pytest.mark.parametrize("pointer", ['"/etc/passwd"', '"../outside.raw"'])
def test_pds3_pointer_outside_folder_refused(tmp_path, capsys, pointer):
    (tmp_path / "outside.raw").write_bytes(bytes(16))
    sub = tmp_path / "sub"
    sub.mkdir()
    lbl = _pds3(sub, pointer)
    _fails(capsys, ["info", str(lbl)], "outside its own folder")
    _fails(capsys, ["convert", str(lbl), str(tmp_path / "leak.tif")], "outside its own folder")
    assert not (tmp_path / "leak.tif").exists()


def test_pds3_pointer_outside_allowed_when_asked(tmp_path, monkeypatch):
    (tmp_path / "outside.raw").write_bytes(bytes(range(16)))
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.setenv("ORBITML_ALLOW_EXTERNAL_FILES", "1")
    assert open_scene(_pds3(sub, '"../outside.raw"')).shape == (1, 4, 4)


@pytest.mark.parametrize("kw,word", [({"lines": -4}, "not a valid image dimension"),
                                     ({"stype": "WEIRD_INTEGER"}, "SAMPLE_TYPE")])
def test_pds3_bad_label_values(tmp_path, capsys, kw, word):
    _fails(capsys, ["info", str(_pds3(tmp_path, '"img.raw"', **kw))], word)


def test_vrt_with_outside_raw_source_refused(tmp_path, capsys):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(64)))
    from tests.data.bad_inputs import _vrt_escape

    vrt = _vrt_escape(tmp_path / "sub", secret)
    _fails(capsys, ["info", str(vrt)], "outside its own folder")


def test_isis_with_absurd_samples(tmp_path, capsys):
    src = shared_file("mars/hirise/PSP_002118_1510_1m_o_forPDS_cropped.cub")
    data = src.read_bytes()
    bad = data.replace(b"  Samples = 50", b"  Samples = 90000", 1)
    assert bad != data
    cub = tmp_path / "bad.cub"
    cub.write_bytes(bad)
    assert cli_run(["info", str(cub)]) == 2
    assert "bad.cub" in capsys.readouterr().err


def test_os_errors_are_one_line(tmp_path, capsys, monkeypatch):
    # root (CI) can write into read-only folders, so the OS error is raised where the output is opened
    import orbitml.io.write as w

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "ro" / "x.tif"))

    monkeypatch.setattr(w, "write_gtiff", denied)
    img = _envi(tmp_path)
    _fails(capsys, ["convert", str(img), str(tmp_path / "ro" / "x.tif")], "permission denied", "x.tif")

    def full(*a, **k):
        raise OSError(28, "No space left on device", str(tmp_path / "x.tif"))

    monkeypatch.setattr(w, "write_gtiff", full)
    _fails(capsys, ["convert", str(img), str(tmp_path / "x.tif")], "No space left", "x.tif")


def test_non_utf8_wavelength_table(tmp_path, capsys):
    img = _envi(tmp_path)
    csv = tmp_path / "wl.csv"
    csv.write_bytes(b"wavelength\n\xff\xfe500\n600\n")
    assert cli_run(["info", str(img), "--wavelengths", str(csv)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_convert_onto_a_folder_leaves_nothing(tmp_path, capsys):
    img = _envi(tmp_path)
    (tmp_path / "out.img").mkdir()
    _fails(capsys, ["convert", str(img), str(tmp_path / "out.img"), "--overwrite"], "existing folder")
    assert not (tmp_path / "out.hdr").exists()


def test_cosmic_reads_pds3_through_the_checked_reader(tmp_path, capsys):
    from orbitml.cosmic.ingest import read_pds3_frame

    (tmp_path / "outside.raw").write_bytes(bytes(16))
    sub = tmp_path / "sub"
    sub.mkdir()
    with pytest.raises(Exception, match="outside its own folder"):
        read_pds3_frame(_pds3(sub, '"../outside.raw"'))
    with pytest.raises(Exception, match="not a valid image dimension"):
        read_pds3_frame(_pds3(tmp_path, '"img.raw"', lines=-4))
    fr = read_pds3_frame(_pds3(tmp_path, '"img.raw"'))
    assert fr.data.shape == (4, 4) and float(fr.data[3, 3]) == 15.0


def test_jpeg2000_integrity_at_open(tmp_path):
    """A JP2 whose codestream box runs past the end of the file, or a bare codestream without EOC, is refused
    when opened (GDAL itself opens both and fails only when the pixels are decoded)."""
    import rasterio

    from orbitml.io import describe, open_scene
    from orbitml.io.integrity import check_jpeg2000

    p = tmp_path / "whole.jp2"
    pix = (np.arange(200 * 300).reshape(1, 200, 300) % 251).astype(np.uint8)
    with rasterio.open(p, "w", driver="JP2OpenJPEG", width=300, height=200, count=1, dtype="uint8",
                       QUALITY=100, REVERSIBLE="YES") as ds:  # lossless
        ds.write(pix)
    check_jpeg2000(p)
    np.testing.assert_array_equal(open_scene(p).values, pix)  # a whole file opens and reads back
    data = p.read_bytes()
    for n in (len(data) - 1, len(data) // 2):
        bad = tmp_path / f"cut{n}.jp2"
        bad.write_bytes(data[:n])
        with pytest.raises(OrbitmlInputError, match="JPEG 2000 .*truncated") as err:
            describe(bad)
        assert str(bad) in str(err.value)
    k = data.index(b"jp2c") + 4  # the codestream alone, as a .j2k file
    (tmp_path / "bare.j2k").write_bytes(data[k:])
    check_jpeg2000(tmp_path / "bare.j2k")
    (tmp_path / "bare_cut.j2k").write_bytes(data[k:-10])
    with pytest.raises(OrbitmlInputError, match="no end-of-codestream"):
        check_jpeg2000(tmp_path / "bare_cut.j2k")
