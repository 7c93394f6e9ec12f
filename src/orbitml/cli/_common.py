"""Helpers shared by the CLI modules: console, error reporting, progress."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

console = Console(stderr=True, soft_wrap=True)  # never wrap messages: paths must stay whole
out = Console(soft_wrap=True)


def print_json(obj: Any) -> None:
    """Print JSON on stdout (no rich markup, so it pipes cleanly)."""
    print(json.dumps(obj, indent=2, default=str))


def ensure_outdir(path: Path, overwrite: bool = True) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path
