"""Generate good and broken input files for the bad-input suite (every file is written by code, here).

``make_kit(root)`` writes a few small good inputs (a CRISM-range ENVI cube, a one-band GeoTIFF, a FITS
frame, a spectral library, a wavelength table, a manifest) and, for each kind of input, a set of broken
or hostile variants of them.  It returns ``(good, bad)``: ``good[kind]`` is a path, ``bad[kind]`` maps a
case name to a path.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from rasterio import Affine

from orbitml.simulate.pan2spec import MARS_EQC_WKT

WAVELENGTHS = np.linspace(1000.0, 2600.0, 17)  # 100 nm apart: holds the fc bands


def _envi(folder: Path, name: str = "cube", data=None, wl=WAVELENGTHS, **edits) -> Path:
    from orbitml.io import write_scene
    from orbitml.scene import make_scene

    folder.mkdir(parents=True, exist_ok=True)
    if data is None:
        rng = np.random.default_rng(0)
        data = (0.2 + 0.2 * rng.random((len(WAVELENGTHS), 20, 24))).astype(np.float32)
    img = write_scene(make_scene(data, wavelength=wl, crs=MARS_EQC_WKT, transform=Affine(18, 0, 100, 0, -18, 700)),
                      folder / f"{name}.img")
    hdr = img.with_suffix(".hdr")
    text = hdr.read_text()
    for key, value in edits.items():
        key = key.replace("_", " ")
        text, n = re.subn(rf"^{key}\s*=.*$", f"{key} = {value}", text, flags=re.M)
        if not n:
            text += f"\n{key} = {value}\n"
    hdr.write_text(text)
    return img


def _truncate(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _pds3(folder: Path, pointer: str, lines: int = 16, samples: int = 16, stype: str = "MSB_UNSIGNED_INTEGER",
          data: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "img.raw").write_bytes(data if data is not None else bytes(range(256)) * (lines * samples // 256 + 1))
    lbl = folder / "img.lbl"
    lbl.write_text(f"""PDS_VERSION_ID = PDS3
RECORD_TYPE = FIXED_LENGTH
RECORD_BYTES = {samples}
FILE_RECORDS = {lines}
^IMAGE = {pointer}
OBJECT = IMAGE
  LINES = {lines}
  LINE_SAMPLES = {samples}
  SAMPLE_TYPE = {stype}
  SAMPLE_BITS = 8
END_OBJECT = IMAGE
END
""")
    return lbl


def _huge_envi(folder: Path) -> Path:
    """A valid ENVI cube of 3 x 100,000 x 100,000 float32 (112 GiB) over a sparse file: no disk used."""
    folder.mkdir(parents=True, exist_ok=True)
    img = folder / "huge.img"
    with open(img, "wb") as fh:
        fh.truncate(3 * 100_000 * 100_000 * 4)
    img.with_suffix(".hdr").write_text(
        "ENVI\nsamples = 100000\nlines = 100000\nbands = 3\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 4\ninterleave = bsq\nbyte order = 0\nwavelength units = Nanometers\n"
        "wavelength = {1000, 1500, 2300}\n")
    return img


def _fits(path: Path, shape=(64, 64)) -> Path:
    from astropy.io import fits

    rng = np.random.default_rng(1)
    data = (100 + 5 * rng.standard_normal(shape)).astype(np.float32)
    hdr = fits.Header({"EXPTIME": 10.0, "GAIN": 1.0, "RDNOISE": 5.0})
    fits.PrimaryHDU(data, header=hdr).writeto(path, overwrite=True)
    return path


def _gdal_write(path: Path, driver: str, data: np.ndarray) -> Path:
    import warnings

    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", driver=driver, width=data.shape[2], height=data.shape[1], count=data.shape[0],
                           dtype=data.dtype.name) as ds:
            ds.write(data)
    return path


def _vrt_escape(folder: Path, secret: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    vrt = folder / "x.vrt"
    vrt.write_text(f"""<VRTDataset rasterXSize="16" rasterYSize="16">
  <VRTRasterBand dataType="Byte" band="1" subClass="VRTRawRasterBand">
    <SourceFilename relativetoVRT="0">{secret}</SourceFilename>
    <ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset><LineOffset>16</LineOffset>
  </VRTRasterBand>
</VRTDataset>""")
    return vrt


def make_kit(root: Path) -> tuple[dict[str, Path], dict[str, dict[str, Path]]]:
    from orbitml.io import write_scene
    from orbitml.scene import make_scene
    from orbitml.spectra.library import SpectralLibrary, write_library

    root = Path(root)
    good: dict[str, Path] = {}
    bad: dict[str, dict[str, Path]] = {"raster": {}, "library": {}, "wavelengths": {}, "manifest": {}, "model": {},
                                       "table": {}}
    g = root / "good"
    good["cube"] = _envi(g)
    rng = np.random.default_rng(2)
    # a map-projected CTX-like band (6 m pixels) whose footprint holds the cube's (18 m pixels)
    good["band"] = write_scene(make_scene((50 + 10 * rng.random((1, 128, 128))).astype(np.float32), crs=MARS_EQC_WKT,
                                          transform=Affine(6, 0, 0, 0, -6, 768)), g / "band.tif")
    good["fits"] = _fits(g / "frame.fits")
    lib = SpectralLibrary(0.2 + 0.3 * rng.random((4, 40)), np.linspace(900.0, 2700.0, 40),
                          names=["a1", "a2", "b1", "b2"])
    good["library"] = write_library(lib, g / "lib.csv")
    good["wavelengths"] = g / "wl.csv"
    good["wavelengths"].write_text("wavelength_nm\n" + "\n".join(f"{v:g}" for v in WAVELENGTHS) + "\n")
    good["unlabelled"] = _envi(g / "nowl", wl=None)

    b = root / "bad"
    r = bad["raster"]
    r["missing"] = b / "missing" / "nothing.img"
    (b / "empty").mkdir(parents=True)
    r["empty"] = b / "empty" / "empty.img"
    r["empty"].write_bytes(b"")
    (b / "text").mkdir()
    r["text"] = b / "text" / "notes.tif"
    r["text"].write_text("this is not an image\n" * 20)
    r["envi_truncated"] = _truncate(_envi(b / "etrunc", "etrunc"), 0.5)
    r["envi_complex"] = _envi(b / "ecomplex", "ecomplex", data_type=6)
    r["envi_byte_order"] = _envi(b / "eorder", "eorder", byte_order=7)
    r["envi_nan_wavelength"] = _envi(b / "enan", "enan", wavelength="{" + ", ".join(
        ["nan"] + [f"{v:g}" for v in WAVELENGTHS[1:]]) + "}")
    r["envi_negative_lines"] = _envi(b / "eneg", "eneg", lines=-20)
    r["gtiff_truncated"] = _truncate(write_scene(make_scene(rng.random((2, 600, 600)).astype(np.float32)),
                                                 b / "gtrunc" / "gtrunc.tif"), 0.6)
    (b / "secret.raw").write_bytes(bytes(range(256)))
    r["pds3_outside"] = _pds3(b / "pds3out", '"../secret.raw"')
    r["pds3_absolute"] = _pds3(b / "pds3abs", f'"{b / "secret.raw"}"')
    r["pds3_negative_lines"] = _pds3(b / "pds3neg", '"img.raw"', lines=-16)
    r["pds3_sample_type"] = _pds3(b / "pds3type", '"img.raw"', stype="WEIRD_INTEGER")
    r["pds3_truncated"] = _pds3(b / "pds3trunc", '"img.raw"', data=bytes(100))
    r["vrt_outside"] = _vrt_escape(b / "vrt", b / "secret.raw")
    r["fits_truncated"] = _truncate(_fits(b / "ftrunc.fits", (128, 128)), 0.5)
    r["huge"] = _huge_envi(b / "huge")
    pix = np.arange(2 * 40 * 50, dtype=np.float32).reshape(2, 40, 50)
    r["isis3_truncated"] = _truncate(_gdal_write(b / "isis" / "trunc.cub", "ISIS3", pix), 0.93)
    cub = _gdal_write(b / "isis" / "wide.cub", "ISIS3", pix)
    cub.write_bytes(cub.read_bytes().replace(b"Samples = 50", b"Samples = 90000", 1))
    r["isis3_absurd_samples"] = cub
    r["jp2_truncated"] = _truncate(_gdal_write(b / "jp2" / "trunc.jp2", "JP2OpenJPEG",
                                               (pix[:1] % 251).astype(np.uint8)), 0.6)

    lb = bad["library"]
    lb["missing"] = b / "lib" / "nothing.csv"
    (b / "lib").mkdir()
    lb["nan_wavelengths"] = b / "lib" / "nanwl.csv"
    lb["nan_wavelengths"].write_text("name,nan,nan,nan\na,0.1,0.2,0.3\n")
    lb["non_utf8"] = b / "lib" / "latin.csv"
    lb["non_utf8"].write_bytes(b"name,1000,1100,1200\n\xff\xfe,0.1,0.2,0.3\n")
    lb["text"] = b / "lib" / "prose.csv"
    lb["text"].write_text("Dear colleague, please find the spectra attached.\n")
    sli = write_library(lib, b / "lib" / "trunc.sli")
    lb["sli_truncated"] = _truncate(sli, 0.5)
    lb["empty"] = b / "lib" / "empty.csv"
    lb["empty"].write_text("")

    wv = bad["wavelengths"]
    (b / "wl").mkdir()
    for name, text in {"nan": "wavelength_nm\n" + "nan\n" * 17, "short": "wavelength_nm\n1000\n1100\n",
                       "words": "wavelength_nm\n" + "blue\n" * 17,
                       "negative": "wavelength_nm\n" + "".join(f"{-v:g}\n" for v in WAVELENGTHS)}.items():
        wv[name] = b / "wl" / f"{name}.csv"
        wv[name].write_text(text)
    wv["non_utf8"] = b / "wl" / "latin.csv"
    wv["non_utf8"].write_bytes(b"wavelength\n\xff\xfe1000\n" + b"1100\n" * 16)
    wv["missing"] = b / "wl" / "nothing.csv"

    m = bad["manifest"]
    (b / "man").mkdir()
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    for name, text in {
        "billion_laughs": laughs,
        "deep": "a: " + "[" * 5000 + "]" * 5000 + "\n",
        "python_tag": "seed: !!python/object/apply:os.system ['echo pwned']\n",
        "not_a_mapping": "- 1\n- 2\n",
        "unknown_key": "no_such_setting_anywhere: 3\n",
        "bad_yaml": "a: [1, 2\nb: }\n",
    }.items():
        m[name] = b / "man" / f"{name}.yaml"
        m[name].write_text(text)
    m["non_utf8"] = b / "man" / "latin.yaml"
    m["non_utf8"].write_bytes(b"seed: 1\nname: \xff\xfe\n")
    m["missing"] = b / "man" / "nothing.yaml"

    md = bad["model"]
    (b / "models").mkdir()
    md["missing"] = b / "models" / "nothing"
    md["empty_folder"] = b / "models" / "empty"
    md["empty_folder"].mkdir()
    for name, card in {"card_list": "[1, 2, 3]", "card_garbage": "{not json", "card_empty": "{}"}.items():
        d = b / "models" / name
        d.mkdir()
        for fname in ("model.json", "card.json"):
            (d / fname).write_text(card)
        (d / "model.safetensors").write_bytes(b"\x00" * 64)
        (d / "model.npz").write_bytes(b"PK\x03\x04 truncated")
        md[name] = d
    md["weights_file_garbage"] = b / "models" / "card_garbage" / "model.safetensors"

    t = bad["table"]
    (b / "tables").mkdir()
    tables = {"empty": "", "prose": "not, a\ntable at all\n\x00\x01", "json_truncated": '{"results": [{"a": '}
    for name, text in tables.items():
        t[name] = b / "tables" / f"{name}.csv"
        t[name].write_text(text)
    t["bad_value"] = b / "tables" / "badvalue.csv"
    t["bad_value"].write_text("image,has_ice\na.tif,perhaps\n")
    t["non_utf8"] = b / "tables" / "latin.csv"
    t["non_utf8"].write_bytes(b"image,has_ice\n\xff\xfe.tif,1\n")
    t["missing"] = b / "tables" / "nothing.csv"
    return good, bad


def existing_file(folder: Path) -> Path:
    """A file where a command's output would go (fresh per test: a command might damage it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "taken.out"
    path.write_text("an existing file\n")
    return path
