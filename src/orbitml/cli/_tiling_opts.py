"""Typer options shared by every command that runs the tiling engine (tiles, pan2spec, ice, ...).

Use as defaults: ``tile: int = TILE``; the engine (``orbitml.tiling``) never imports the CLI.
"""

from __future__ import annotations

import typer

TILE = typer.Option(256, "--tile", min=1, help="Tile size in pixels (square).")
STRIDE = typer.Option(None, "--stride", min=1,
                      help="Step between tiles in pixels; default: half the tile (s=2, overlapping tiles).")
WEIGHTS = typer.Option("gaussian", "--weights", help="Blending weights: gaussian, hann or uniform.")
BATCH = typer.Option(8, "--batch-size", min=1, help="Tiles per model call.")
WORKERS = typer.Option(None, "--workers", min=1, help="Run on a local dask cluster of N worker processes.")
SCHEDULER = typer.Option(None, "--scheduler", help="Run on an existing dask scheduler (tcp://host:port).")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing output.")
DEVICE = typer.Option(None, "--device", help="torch device for models (cpu, cuda).")


def resolve_stride(tile: int, stride: int | None) -> int:
    """The CLI default: overlapping tiles with s=2 (stride = tile // 2)."""
    return max(1, tile // 2) if stride is None else int(stride)
