"""Small fixture writers for the ice tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LABEL = """PDS_VERSION_ID = PDS3
RECORD_TYPE = UNDEFINED
^IMAGE = "{name}.JP2"
INSTRUMENT_ID = "HIRISE"
PRODUCT_ID = "{name}"
OBJECT = IMAGE
  LINES = {h}
  LINE_SAMPLES = {w}
  BANDS = 1
  SAMPLE_BITS = 8
  SAMPLE_TYPE = MSB_UNSIGNED_INTEGER
END_OBJECT = IMAGE
END
"""


def write_rdr(folder: Path, img: np.ndarray, name: str = "PSP_000001_1234_RED") -> tuple[Path, Path]:
    """A HiRISE-RDR-like pair: lossless JP2 in a Mars CRS + a minimal PDS3 label pointing at it."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from orbitml.simulate.hirise import MARS_EQC_WKT

    jp2 = folder / f"{name}.JP2"
    h, w = img.shape
    with rasterio.open(jp2, "w", driver="JP2OpenJPEG", width=w, height=h, count=1, dtype="uint8",
                       crs=CRS.from_wkt(MARS_EQC_WKT), transform=from_origin(100, -2000, 0.25, 0.25),
                       QUALITY=100, REVERSIBLE="YES") as ds:
        ds.write(img[None])
    lbl = folder / f"{name}.LBL"
    lbl.write_text(LABEL.format(name=name, h=h, w=w), encoding="ascii")
    return jp2, lbl
