"""Small GeoTIFF fixtures for the tiling tests (Mars equirectangular CRS)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

MARS_EQC = CRS.from_proj4("+proj=eqc +lat_ts=0 +lon_0=0 +R=3396190 +units=m +no_defs")
TRANSFORM = Affine(6.0, 0.0, 1_200_000.0, 0.0, -6.0, -300_000.0)


def write_tif(path, data, nodata=None, crs=MARS_EQC, transform=TRANSFORM, descriptions=None):
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    prof = dict(driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                dtype=data.dtype, crs=crs, transform=transform, nodata=nodata)
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(data)
        for b, d in enumerate(descriptions or [], start=1):
            ds.set_band_description(b, d)
    return path


@pytest.fixture
def mars_tif(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.integers(1, 255, size=(1, 75, 93), dtype=np.uint8)
    data[0, 10:20, 30:45] = 0  # nodata block
    return write_tif(tmp_path / "mars.tif", data, nodata=0), data
