"""Large-scene engine: tile grids, blending weights, weighted stitching, streaming and dask apply,
training patch samplers and the tile chunker for scanning workflows.

Public API::

    grid(height, width, tile, stride=None, overlap=None, transform=None) -> TileGrid
    weights(kind, h, w)                       uniform | gaussian | hann
    predict(scene_or_path, fn, *, tile, stride, weights="gaussian", ...)
    predict_many(paths, fn, out_dir, *, tile, ..., workers=None, scheduler=None)
    PatchSampler, GridSampler                 training / validation patches (torch Dataset compatible)
    TileChunker                               fixed tiles + black/nodata policy + CSV/GeoJSON index
    GaussianSmooth, MedianSmooth              built-in picklable operators for predict
"""

from orbitml.tiling.chunker import ChunkTile, TileChunker, TileIndex
from orbitml.tiling.filters import GaussianSmooth, MedianSmooth
from orbitml.tiling.predict import dask_client, predict, predict_many
from orbitml.tiling.samplers import GridSampler, PatchSampler
from orbitml.tiling.sources import open_source
from orbitml.tiling.windows import WEIGHT_KINDS, Tile, TileGrid, grid, reflect_index, weights

__all__ = [
    "WEIGHT_KINDS",
    "ChunkTile",
    "GaussianSmooth",
    "GridSampler",
    "MedianSmooth",
    "PatchSampler",
    "Tile",
    "TileChunker",
    "TileGrid",
    "TileIndex",
    "dask_client",
    "grid",
    "open_source",
    "predict",
    "predict_many",
    "reflect_index",
    "weights",
]
