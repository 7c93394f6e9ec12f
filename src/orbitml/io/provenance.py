"""Provenance written beside every output: the manifest, the seed, versions."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from orbitml import __version__

_PACKAGES = ("numpy", "scipy", "xarray", "rasterio", "dask", "scikit-learn", "torch", "astropy", "astroscrappy")


def versions() -> dict[str, str]:
    out = {"orbitml": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for p in _PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_run_info(
    outdir: str | os.PathLike,
    command: str,
    params: dict[str, Any] | None = None,
    seed: int | None = None,
    inputs: list[str] | None = None,
    name: str = "run.json",
) -> Path:
    """Write ``run.json`` (command, parameters/manifest, seed, inputs, versions, time) into ``outdir``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    info = {
        "command": command,
        "params": params or {},
        "seed": seed,
        "inputs": [str(i) for i in (inputs or [])],
        "versions": versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = outdir / name
    tmp = path.with_name(f".{name}.tmp")
    tmp.write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path
