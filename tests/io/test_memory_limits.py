"""Memory bounded by design (issue 18, scope 2): windowed commands stream, whole-raster reads check first.

Rasters are sparse files (``truncate``): their declared size is large, the disk holds almost nothing, and the
memory limit (``ORBITML_MAX_MEMORY``) is set small so that the tests stay tiny.
"""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.cli.main import cli_run
from orbitml.errors import OrbitmlInputError
from orbitml.io import open_scene, write_scene
from orbitml.scene import make_scene

N = 4096  # a 64 MiB float32 band


def _sparse_envi(path, n=N, bands=1, marks=((0, 7, 0.5), (1000, 7, 1000.5), (4095, 4095, 4095.5))):
    with open(path, "wb") as fh:
        fh.truncate(bands * n * n * 4)
        for r, c, v in marks:
            fh.seek((r * n + c) * 4)
            fh.write(np.float32(v).tobytes())
    path.with_suffix(".hdr").write_text(f"ENVI\nsamples = {n}\nlines = {n}\nbands = {bands}\nheader offset = 0\n"
                                        "data type = 4\ninterleave = bsq\nbyte order = 0\n")
    return path


@pytest.mark.parametrize("suffix", [".img", ".tif"])
def test_convert_streams_a_raster_larger_than_the_limit(tmp_path, monkeypatch, suffix):
    import tracemalloc

    src = _sparse_envi(tmp_path / "big.img")
    small = _sparse_envi(tmp_path / "small.img", n=8, marks=())
    assert cli_run(["convert", str(small), str(tmp_path / f"warm{suffix}")]) == 0  # imports out of the count
    monkeypatch.setenv("ORBITML_MAX_MEMORY", "16M")
    out = tmp_path / f"out{suffix}"
    tracemalloc.start()
    try:
        assert cli_run(["convert", str(src), str(out)]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"convert of a 64 MiB raster peaked at {peak / 2**20:.1f} MiB"
    back = open_scene(out, chunks=1024)
    assert back.shape == (1, N, N)
    for r, c, v in ((0, 7, 0.5), (1000, 7, 1000.5), (4095, 4095, 4095.5)):
        assert float(back.data[0, r, c].compute()) == v
    assert float(back.data.sum().compute()) == pytest.approx(0.5 + 1000.5 + 4095.5)


def _pds3(tmp_path):
    (tmp_path / "img.raw").write_bytes(bytes(range(256)) * 4)
    lbl = tmp_path / "img.lbl"
    lbl.write_text('PDS_VERSION_ID = PDS3\nRECORD_TYPE = FIXED_LENGTH\nRECORD_BYTES = 32\nFILE_RECORDS = 32\n'
                   '^IMAGE = "img.raw"\nOBJECT = IMAGE\n  LINES = 32\n  LINE_SAMPLES = 32\n'
                   '  SAMPLE_TYPE = MSB_UNSIGNED_INTEGER\n  SAMPLE_BITS = 8\nEND_OBJECT = IMAGE\nEND\n')
    return lbl


def _fits(tmp_path):
    from astropy.io import fits

    path = tmp_path / "f.fits"
    fits.PrimaryHDU(np.arange(32 * 32, dtype=np.float32).reshape(32, 32)).writeto(path)
    return path


@pytest.mark.parametrize("make,need", [
    (lambda p: _sparse_envi(p / "e.img", n=32, marks=((3, 4, 2.5),)), "4.0 KiB"),
    (lambda p: write_scene(make_scene(np.ones((1, 32, 32), np.float32)), p / "g.tif"), "4.0 KiB"),
    (_pds3, "1.0 KiB"),
    (_fits, "4.0 KiB"),
])
def test_whole_reads_check_the_limit_first(tmp_path, monkeypatch, make, need):
    path = make(tmp_path)
    whole = open_scene(path)  # under the default limit: read whole
    monkeypatch.setenv("ORBITML_MAX_MEMORY", "512")
    with pytest.raises(OrbitmlInputError, match="ORBITML_MAX_MEMORY") as info:
        open_scene(path)
    assert path.name in str(info.value) and f"needs {need}" in str(info.value) and "512 bytes" in str(info.value)
    if path.suffix != ".fits":  # FITS is always read whole; the others stream by windows under any limit
        lazy = open_scene(path, chunks=8)
        np.testing.assert_array_equal(lazy.values, whole.values)


def test_huge_sparse_cube_refused_by_whole_cube_commands(tmp_path, capsys):
    """A valid 3 x 100,000 x 100,000 float32 cube (112 GiB) under the default 8 GiB limit."""
    from orbitml.cli.crism_classify import _open_image
    from tests.data.bad_inputs import _huge_envi

    img = _huge_envi(tmp_path)
    with pytest.raises(OrbitmlInputError, match=r"needs 447\.0 GiB in memory, more than the limit of 8\.0 GiB"):
        _open_image(img, None)  # crism classify and crism ratio
    with pytest.raises(OrbitmlInputError, match=r"needs 111\.8 GiB"):
        open_scene(img)
    assert cli_run(["info", str(img), "--json"]) == 0  # the shape needs no pixel
    assert '"height": 100000' in capsys.readouterr().out


def test_memory_limit_parsing(monkeypatch):
    from orbitml.io.integrity import max_memory

    for text, value in (("8G", 8 * 2**30), ("512M", 512 * 2**20), ("2e9", 2_000_000_000), ("1.5GiB", 3 * 2**29)):
        monkeypatch.setenv("ORBITML_MAX_MEMORY", text)
        assert max_memory() == value
    monkeypatch.setenv("ORBITML_MAX_MEMORY", "lots")
    with pytest.raises(OrbitmlInputError, match="ORBITML_MAX_MEMORY"):
        max_memory()
