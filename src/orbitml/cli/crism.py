"""``orbitml crism ...``: CRISM mineral classification and summary parameters.

The commands live in two modules, each with ``register(app)``: ``crism_classify`` (train, classify,
ratio, evaluate) and ``crism_params`` (params).
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="CRISM: ratioing, noise removal, HBM mineral classification, summary parameters.",
                  no_args_is_help=True)

for _name in ("orbitml.cli.crism_classify", "orbitml.cli.crism_params"):
    try:
        importlib.import_module(_name).register(app)
    except ModuleNotFoundError as _exc:  # that half not built yet
        if _exc.name != _name:
            raise
