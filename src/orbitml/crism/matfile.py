"""crism_ml's MATLAB training files: read (v5 via scipy, v7.3 via h5py) and write.

The Zenodo record of crism_ml holds ``CRISM_bland_unratioed.mat`` (``pixspec``, ``im_names``,
``pixims``, ``pixcrds``) and ``CRISM_labeled_pixels_ratioed.mat`` (the same plus ``pixlabs`` and
``pixpat``).  ``pixspec`` is ``(n_spectra, 350)``; ``pixims`` are 1-based indices into
``im_names`` (a cell array of strings or a char matrix).

MATLAB v7.3 files are HDF5 with a 512-byte MATLAB header in the user block; h5py sees every
array transposed (MATLAB is column-major), strings as ``uint16`` char arrays and cell arrays as
object references into ``#refs#``.  :func:`read_mat` undoes all of that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from orbitml.errors import OrbitmlInputError

LABELLED_VARS = ("pixspec", "pixlabs", "im_names", "pixims", "pixcrds", "pixpat")
BLAND_VARS = ("pixspec", "im_names", "pixims", "pixcrds")


@dataclass
class MatDataset:
    """Spectra and their bookkeeping from one crism_ml MATLAB file (0-based nothing: ids as stored)."""

    pixspec: np.ndarray
    pixims: np.ndarray
    im_names: list[str]
    pixlabs: np.ndarray | None = None
    pixcrds: np.ndarray | None = None
    pixpat: np.ndarray | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def image_names(self) -> np.ndarray:
        """Image name of every spectrum."""
        names = np.asarray(self.im_names, dtype=object)
        return names[self.pixims - 1]


# ---------------------------------------------------------------- reading
def _h5_string(f, ds) -> str:
    arr = np.asarray(ds[()])
    if arr.dtype.kind in "iu":
        return "".join(chr(c) for c in arr.T.ravel() if c)
    if arr.dtype.kind == "S":
        return b"".join(arr.ravel()).decode("utf-8", "replace")
    return str(arr)


def _h5_value(f, ds):
    import h5py

    cls = ds.attrs.get("MATLAB_class", b"")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    if cls == "cell" or ds.dtype == h5py.ref_dtype:
        refs = np.asarray(ds[()]).T.ravel()
        return [_h5_string(f, f[r]) if f[r].attrs.get("MATLAB_class", b"") in (b"char", "char")
                else np.asarray(f[r][()]).T for r in refs]
    if cls == "char":
        arr = np.asarray(ds[()]).T  # (n_strings, n_chars)
        if arr.ndim == 1:
            arr = arr[None, :]
        return ["".join(chr(c) for c in row if c).rstrip() for row in arr]
    if ds.attrs.get("MATLAB_empty", 0):
        return np.zeros((0,))
    return np.asarray(ds[()]).T


def _read_h5(path: Path, wanted) -> dict:
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        for name in wanted:
            if name in f:
                out[name] = _h5_value(f, f[name])
    return out


def _v5_strings(v) -> list[str]:
    v = np.asarray(v)
    if v.dtype == object:
        return [str(np.asarray(x).ravel()[0]) if np.asarray(x).size else "" for x in v.ravel()]
    if v.dtype.kind == "U":
        return [str(s).rstrip() for s in v.ravel()]
    return [str(s) for s in v.ravel()]


def _read_v5(path: Path, wanted) -> dict:
    import scipy.io

    try:
        raw = scipy.io.loadmat(path, variable_names=list(wanted))
    except (ValueError, TypeError, OSError) as exc:
        raise OrbitmlInputError(f"not a readable MATLAB file ({exc})", path) from None
    except NotImplementedError:
        raise OrbitmlInputError("MATLAB v7.3 file that is not valid HDF5", path) from None
    out = {}
    for k in wanted:
        if k in raw:
            out[k] = _v5_strings(raw[k]) if k == "im_names" else raw[k]
    return out


def _vector(a, name, path, n=None) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2 and 1 in a.shape:
        a = a.ravel()
    if a.ndim != 1:
        raise OrbitmlInputError(f"variable {name} should be a vector, found shape {a.shape}", path)
    if n is not None and a.size != n:
        raise OrbitmlInputError(f"variable {name} has {a.size} entries for {n} spectra", path)
    return a


def read_mat(path: str | os.PathLike, labelled: bool | None = None) -> MatDataset:
    """Read a crism_ml training file (v5 or v7.3).  ``labelled=True`` requires ``pixlabs``."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise OrbitmlInputError("no such file", path)
    wanted = LABELLED_VARS
    with open(path, "rb") as fh:
        head = fh.read(128)
    if h5py.is_hdf5(path):
        raw = _read_h5(path, wanted)
    elif head[:6] == b"MATLAB":
        raw = _read_v5(path, wanted)
    else:
        raise OrbitmlInputError("not a MATLAB .mat file (no MATLAB header, not HDF5)", path)
    missing = [v for v in ("pixspec", "pixims") if v not in raw]
    if labelled:
        missing += [v for v in ("pixlabs",) if v not in raw]
    if missing:
        raise OrbitmlInputError(f"missing variable(s) {', '.join(missing)}; found {', '.join(raw) or 'none'}", path)
    spec = np.asarray(raw["pixspec"])
    if spec.ndim != 2 or spec.dtype.kind not in "fiu":
        raise OrbitmlInputError(f"pixspec must be a numeric (n_spectra, n_bands) matrix, found {spec.shape}", path)
    n = spec.shape[0]
    pixims = _vector(raw["pixims"], "pixims", path, n).astype(np.int64)
    names = list(raw.get("im_names", []))
    if not names:
        names = [f"image{i}" for i in range(1, int(pixims.max(initial=0)) + 1)]
    if n and (pixims.min() < 1 or pixims.max() > len(names)):
        raise OrbitmlInputError(f"pixims must be 1-based indices into {len(names)} im_names, found "
                                f"{pixims.min()}..{pixims.max()}", path)
    labs = _vector(raw["pixlabs"], "pixlabs", path, n).astype(np.int64) if "pixlabs" in raw else None
    crds = np.asarray(raw["pixcrds"]) if "pixcrds" in raw else None
    if crds is not None and crds.shape[0] != n:
        crds = crds.T if crds.ndim == 2 and crds.shape[1] == n else None
    pat = _vector(raw["pixpat"], "pixpat", path, n) if "pixpat" in raw else None
    return MatDataset(pixspec=spec.astype(np.float32, copy=False), pixims=pixims, im_names=names, pixlabs=labs,
                      pixcrds=crds, pixpat=pat, source=str(path))


# ---------------------------------------------------------------- writing
def _header_73() -> bytes:
    text = (f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: "
            f"{datetime.now(UTC).strftime('%a %b %d %H:%M:%S %Y')} HDF5 schema 1.00 .").encode("ascii")
    head = text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    return head.ljust(512, b"\x00")


def _h5_write(f, name: str, value) -> None:
    import h5py

    if name == "im_names":  # cell array of char row vectors
        refs_grp = f.require_group("#refs#")
        refs = []
        for i, s in enumerate(value):
            codes = np.array([[ord(c)] for c in str(s)], dtype=np.uint16)  # MATLAB 1 x len -> h5 (len, 1)
            d = refs_grp.create_dataset(f"s{i}", data=codes)
            d.attrs["MATLAB_class"] = np.bytes_("char")
            d.attrs["MATLAB_int_decode"] = np.int32(2)
            refs.append(d.ref)
        ds = f.create_dataset(name, data=np.array([refs], dtype=h5py.ref_dtype))  # MATLAB n x 1 cell
        ds.attrs["MATLAB_class"] = np.bytes_("cell")
        return
    a = np.asarray(value)
    if a.ndim == 1:
        a = a[:, None]  # MATLAB column vector (n x 1)
    cls = {"float64": "double", "float32": "single", "int16": "int16", "int32": "int32", "int64": "int64",
           "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "int8": "int8"}[a.dtype.name]
    ds = f.create_dataset(name, data=np.ascontiguousarray(a.T))
    ds.attrs["MATLAB_class"] = np.bytes_(cls)


def write_mat(path: str | os.PathLike, data: dict, version: str = "7.3", overwrite: bool = False) -> Path:
    """Write crism_ml-style variables as a MATLAB v5 or v7.3 file (atomically)."""
    from orbitml.io.atomic import atomic_path

    keep = {k: v for k, v in data.items() if k in LABELLED_VARS}
    with atomic_path(path, overwrite=overwrite) as tmp:
        if version == "5":
            import scipy.io

            out = dict(keep)
            if "im_names" in out:
                cell = np.empty((len(out["im_names"]), 1), dtype=object)
                for i, s in enumerate(out["im_names"]):
                    cell[i, 0] = str(s)
                out["im_names"] = cell
            for k in ("pixims", "pixlabs", "pixpat"):
                if k in out:
                    out[k] = np.asarray(out[k]).reshape(-1, 1)
            scipy.io.savemat(tmp, out, do_compression=True)
        elif version == "7.3":
            import h5py

            with h5py.File(tmp, "w", userblock_size=512) as f:
                for k, v in keep.items():
                    _h5_write(f, k, v)
            with open(tmp, "r+b") as fh:
                fh.write(_header_73())
        else:
            raise OrbitmlInputError(f"unknown MAT version {version!r}; use '5' or '7.3'")
    return Path(path)
