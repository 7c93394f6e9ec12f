"""Demo section for the foundation: simulate a scene, write ENVI and GeoTIFF, reopen both, plot."""

from __future__ import annotations

import numpy as np
from affine import Affine

from orbitml.report.demo import DemoContext
from orbitml.report.figures import class_map_figure, false_colour_figure, spectra_figure

# A Mars equirectangular CRS (IAU sphere, metres): simulated scenes are placed on Mars, never on Earth.
MARS_EQC_WKT = (
    'PROJCS["Mars Equirectangular",GEOGCS["GCS_Mars",DATUM["D_Mars",SPHEROID["Mars_IAU_2000",3396190,0]],'
    'PRIMEM["Reference_Meridian",0],UNIT["degree",0.0174532925199433]],PROJECTION["Equirectangular"],'
    'PARAMETER["standard_parallel_1",0],PARAMETER["central_meridian",0],PARAMETER["false_easting",0],'
    'PARAMETER["false_northing",0],UNIT["metre",1]]'
)


def section(ctx: DemoContext) -> None:
    from orbitml.io import describe, open_scene, write_scene
    from orbitml.simulate.scene import simulate_scene

    size = 48 if ctx.quick else 128
    sim = simulate_scene(shape=(size, size), n_endmembers=5, snr_db=40.0, nodata_fraction=0.05, seed=ctx.seed,
                         crs=MARS_EQC_WKT, transform=Affine(18.0, 0, 4_500_000.0, 0, -18.0, -300_000.0))
    folder = ctx.folder("scene")
    envi = write_scene(sim.scene, folder / "simulated.img", format="envi", overwrite=True)
    tif = write_scene(sim.scene, folder / "simulated.tif", format="gtiff", overwrite=True)
    a, b = open_scene(envi), open_scene(tif)
    from pyproj import CRS

    same = bool(np.array_equal(np.nan_to_num(a.values, nan=-1), np.nan_to_num(b.values, nan=-1)))
    same_crs = bool(CRS(a.rio.crs.to_wkt()).equals(CRS(b.rio.crs.to_wkt()))) and a.rio.transform() == b.rio.transform()
    wl = sim.wavelength
    bands = [int(np.argmin(np.abs(wl - w))) for w in (2300.0, 1900.0, 1500.0)]
    rows = []
    for p in (envi, tif):
        d = describe(p)
        rows.append({"file": p.name, "format": d["format"], "bands": d["bands"], "size": f"{d['height']}x{d['width']}",
                     "wavelengths (nm)": f"{d['wavelength_nm'][0]:.0f}-{d['wavelength_nm'][1]:.0f}",
                     "CRS": d["crs"] if not same_crs else rows[0]["CRS"] if rows else d["crs"],
                     "nodata": d["nodata"]})
    ctx.report.add_section(
        "Scene model and I/O",
        "A simulated CRISM-like scene (smooth abundance fields of five mineral families, linear mixing, "
        f"SNR 40 dB, 5% nodata) written as ENVI and GeoTIFF and read back. Both copies identical: {same}. "
        f"Same CRS and transform: {same_crs} (ENVI keeps the CRS under the name 'Mars_Equirectangular').",
        figures=[
            ("false colour (3-sigma stretch) from the ENVI copy", false_colour_figure(a.values, bands, "ENVI", wl)),
            ("endmember spectra (truth)", spectra_figure(wl, sim.endmembers, sim.names, "endmembers")),
            ("dominant endmember (truth)", class_map_figure(sim.labels, sim.names, "dominant endmember")),
        ],
        tables=[("products", rows)],
    )
