"""crism_ml MATLAB files: v5 and v7.3 (HDF5 with MATLAB's user block, transposed arrays, cells)."""

import h5py
import numpy as np
import pytest

from orbitml.crism import matfile as mf
from orbitml.errors import OrbitmlInputError
from tests.crism import _sim


def _small():
    d = _sim.labelled()
    sel = np.flatnonzero(d["pixims"] <= 3)[::7]
    out = {k: d[k][sel] for k in ("pixspec", "pixlabs", "pixims", "pixcrds", "pixpat")}
    out["im_names"] = d["im_names"][:3]
    return out


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_round_trip(tmp_path, version):
    d = _small()
    p = mf.write_mat(tmp_path / f"L{version}.mat", d, version=version)
    r = mf.read_mat(p, labelled=True)
    np.testing.assert_array_equal(r.pixspec, d["pixspec"])
    np.testing.assert_array_equal(r.pixlabs, d["pixlabs"])
    np.testing.assert_array_equal(r.pixims, d["pixims"])
    np.testing.assert_array_equal(r.pixcrds, d["pixcrds"])
    np.testing.assert_array_equal(r.pixpat, d["pixpat"])
    assert r.im_names == list(d["im_names"])
    assert list(r.image_names[:2]) == [d["im_names"][i - 1] for i in d["pixims"][:2]]


def test_v73_layout_is_matlabs(tmp_path):
    d = _small()
    p = mf.write_mat(tmp_path / "L.mat", d, version="7.3")
    head = p.read_bytes()[:128]
    assert head.startswith(b"MATLAB 7.3 MAT-file") and head[126:128] == b"IM"
    with h5py.File(p, "r") as f:
        assert f.userblock_size == 512
        assert f["pixspec"].shape == d["pixspec"].shape[::-1]  # column-major: h5py sees the transpose
        assert f["pixspec"].attrs["MATLAB_class"] == b"single"
        assert f["pixims"].shape == (1, d["pixims"].size)
        assert f["im_names"].attrs["MATLAB_class"] == b"cell"
        first = f[f["im_names"][0, 0]]
        assert first.attrs["MATLAB_class"] == b"char" and first.dtype == np.uint16
        assert "".join(map(chr, first[()].ravel())) == d["im_names"][0]


def test_v73_char_matrix_names(tmp_path):
    """im_names stored as a MATLAB char matrix (one name per row) instead of a cell."""
    d = _small()
    p = tmp_path / "C.mat"
    mf.write_mat(p, {k: v for k, v in d.items() if k != "im_names"}, version="7.3")
    names = np.array([[ord(c) for c in n] for n in d["im_names"]], dtype=np.uint16)  # (3, 8)
    with h5py.File(p, "a") as f:
        ds = f.create_dataset("im_names", data=names.T)
        ds.attrs["MATLAB_class"] = np.bytes_("char")
    assert mf.read_mat(p).im_names == list(d["im_names"])


def test_bad_files(tmp_path):
    txt = tmp_path / "x.mat"
    txt.write_text("hello")
    with pytest.raises(OrbitmlInputError, match="not a MATLAB"):
        mf.read_mat(txt)
    with pytest.raises(OrbitmlInputError, match="no such file"):
        mf.read_mat(tmp_path / "missing.mat")
    d = _small()
    p = mf.write_mat(tmp_path / "nolab.mat", {k: v for k, v in d.items() if k != "pixlabs"}, version="5")
    with pytest.raises(OrbitmlInputError, match="pixlabs"):
        mf.read_mat(p, labelled=True)
    bad = dict(d, pixims=d["pixims"] + 10)
    p = mf.write_mat(tmp_path / "badids.mat", bad, version="7.3")
    with pytest.raises(OrbitmlInputError, match="1-based"):
        mf.read_mat(p)
    p = mf.write_mat(tmp_path / "short.mat", dict(d, pixlabs=d["pixlabs"][:-1]), version="5")
    with pytest.raises(OrbitmlInputError, match="pixlabs"):
        mf.read_mat(p)
