"""``orbitml tiles ...``: tile indexes for scanning workflows and tiled filtering of large images."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from orbitml.cli import _tiling_opts as opt
from orbitml.cli._common import console
from orbitml.errors import OrbitmlInputError

app = typer.Typer(help="Large-scene engine: tile indexes and tiled, seamless filtering.", no_args_is_help=True)


@app.command("chunk")
def chunk(
    image: Path = typer.Argument(..., help="Raster to cut into tiles (GeoTIFF, ISIS3, PDS3, ENVI ...)."),
    out: Path = typer.Option(..., "--out", help="Tile index: .csv or .geojson (footprints in the image CRS)."),
    size: int = typer.Option(1024, "--size", min=1, help="Tile size in pixels."),
    overlap: int = typer.Option(0, "--overlap", min=0, help="Pixels shared by neighbouring tiles."),
    max_black: float = typer.Option(None, "--max-black", min=0.0, max=1.0,
                                    help="Skip tiles with a larger fraction of black/nodata pixels (0: any)."),
    center_black: float = typer.Option(None, "--center-black", min=0.0, max=1.0,
                                       help="Skip tiles with any black pixel in their central fraction C."),
    black_value: float = typer.Option(0.0, "--black-value", help="Pixel value counted as black."),
    overwrite: bool = opt.OVERWRITE,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Cut IMAGE into fixed tiles (edges covered by shifted-back tiles) and write the tile index."""
    from orbitml.io.provenance import write_run_info
    from orbitml.tiling import TileChunker

    if max_black is not None and center_black is not None:
        raise OrbitmlInputError("give --max-black or --center-black, not both")
    policy = ("center", center_black) if center_black is not None else max_black
    # without a black policy no pixel is read: the index needs only the shape and the transform
    index = TileChunker(size=size, overlap=overlap, black_policy=policy, black_value=black_value).tiles(
        image, scan=policy is not None)
    index.write(out, overwrite=overwrite)
    write_run_info(out.parent, "orbitml tiles chunk", {"size": size, "overlap": overlap, "max_black": max_black,
                   "center_black": center_black, "black_value": black_value,
                   "crs_wkt": index.crs.to_wkt() if index.crs is not None else None}, inputs=[str(image)],
                   name=f"{out.name}.run.json")
    if as_json:
        from orbitml.cli._common import print_json

        print_json({"image": str(image), "out": str(out), "tiles": len(index), "kept": len(index.kept),
                    "size": size, "overlap": overlap})
    console.print(f"{len(index)} tiles, {len(index.kept)} kept -> {out}")


@app.command("smooth")
def smooth(
    image: Path = typer.Argument(..., help="Raster to filter."),
    out: Path = typer.Option(..., "--out", help="Output GeoTIFF."),
    filter_: str = typer.Option("gaussian", "--filter", help="gaussian (low-pass) or median."),
    sigma: float = typer.Option(2.0, "--sigma", min=0.01, help="Gaussian standard deviation in pixels."),
    median_size: int = typer.Option(5, "--median-size", min=1, help="Median window size in pixels."),
    tile: int = opt.TILE,
    stride: int = opt.STRIDE,
    weights: str = opt.WEIGHTS,
    batch_size: int = opt.BATCH,
    workers: int = opt.WORKERS,
    scheduler: str = opt.SCHEDULER,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Filter IMAGE tile by tile with seamless weighted stitching (equals the whole-image filter)."""
    import numpy as np

    from orbitml.io.provenance import write_run_info
    from orbitml.tiling import GaussianSmooth, MedianSmooth, predict

    if filter_ == "gaussian":
        op = GaussianSmooth(sigma)
    elif filter_ == "median":
        op = MedianSmooth(median_size)
    else:
        raise OrbitmlInputError(f"unknown filter {filter_!r}; choose gaussian or median")
    stride = opt.resolve_stride(tile, stride)
    margin = op.halo
    if stride <= tile and tile - 2 * margin < stride:
        need = stride + 2 * margin
        raise OrbitmlInputError(f"{op!r} needs {margin} px of context at each tile edge: use --tile >= {need} "
                                f"or a --stride <= {tile - 2 * margin}")
    predict(image, op, tile=tile, stride=stride, weights=weights, margin=margin, batch_size=batch_size, out=out,
            fill_value=math.nan if filter_ == "gaussian" else 0.0, workers=workers, scheduler=scheduler,
            overwrite=overwrite, progress=True, tags={"orbitml_operator": repr(op)}, out_dtype=np.float32)
    write_run_info(out.parent, "orbitml tiles smooth", {"filter": filter_, "sigma": sigma, "median_size": median_size,
                   "tile": tile, "stride": stride, "weights": weights, "workers": workers,
                   "scheduler": scheduler}, inputs=[str(image)], name=f"{out.name}.run.json")
    console.print(f"{op!r} applied in {tile} px tiles (stride {stride}) -> {out}")
