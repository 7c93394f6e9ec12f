import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from orbitml.errors import OrbitmlInputError
from orbitml.io.classmap import UNCLASSIFIED_RGB, class_colours, read_class_table, write_class_map

NAMES = ["Unclassified", "Kaolinite", "Nontronite", "Calcite"]
CRS = "+proj=eqc +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +R=3396190 +units=m +no_defs +type=crs"


def test_colours_stable_and_unclassified_grey():
    c = class_colours(NAMES)
    assert c[0] == UNCLASSIFIED_RGB and len(set(c)) == 4
    assert class_colours(NAMES + ["Jarosite"])[:4] == c
    assert len(set(class_colours(45))) == 45


@pytest.mark.parametrize("suffix", [".tif", ".img"])
def test_class_map_round_trip(tmp_path, suffix):
    codes = np.array([[0, 1, 2], [3, 1, -1]])
    inv = np.zeros(codes.shape, bool)
    inv[0, 2] = True
    tr = Affine(18.0, 0, 1000.0, 0, -18.0, 5000.0)
    p = write_class_map(codes, tmp_path / f"cm{suffix}", NAMES, crs=CRS, transform=tr, invalid=inv,
                        attrs={"ORBITML_NOTE": "model trained on simulated data"})
    with rasterio.open(p) as ds:
        a = ds.read(1)
        assert ds.dtypes[0] == "uint8" and ds.nodata == 255
        assert ds.transform == tr and ds.crs is not None
        if suffix == ".tif":
            assert ds.colormap(1)[2][:3] == class_colours(NAMES)[2]
            assert json.loads(ds.tags()["CLASS_NAMES"]) == NAMES
            assert "simulated" in ds.tags()["ORBITML_NOTE"]
    assert a.tolist() == [[0, 1, 255], [3, 1, 255]]
    t = read_class_table(p)
    assert list(t.names) == NAMES and list(t.colours) == class_colours(NAMES)
    if suffix == ".tif":
        aux = (tmp_path / "cm.tif.aux.xml").read_text()
        assert aux.count("<Category>") == 4 and "Kaolinite" in aux
    else:
        hdr = (tmp_path / "cm.hdr").read_text()
        assert "ENVI Classification" in hdr and "classes = 4" in hdr and "tmp" not in hdr
    assert not list(tmp_path.glob(".*tmp*"))


def test_class_map_errors(tmp_path):
    with pytest.raises(OrbitmlInputError, match="only 4 class names"):
        write_class_map(np.array([[4]]), tmp_path / "x.tif", NAMES)
    with pytest.raises(OrbitmlInputError, match="2-D"):
        write_class_map(np.zeros((1, 2, 2), int), tmp_path / "x.tif", NAMES)
    assert not (tmp_path / "x.tif").exists()
