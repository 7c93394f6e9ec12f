"""``orbitml cosmic ...``: cosmic-ray hits in CCD frames.

Commands live in three modules, each with ``register(app)``: ``cosmic_detect`` (detect, train, models),
``cosmic_catalog`` (catalog, rate) and ``cosmic_evaluate`` (evaluate against VOC boxes).
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Cosmic-ray hits: detect, categorise, catalogue and rate over a mission.",
                  no_args_is_help=True)

for _name in ("orbitml.cli.cosmic_detect", "orbitml.cli.cosmic_catalog", "orbitml.cli.cosmic_evaluate"):
    try:
        importlib.import_module(_name).register(app)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
