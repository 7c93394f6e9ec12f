"""Entry point: ``orbitml <command>``; workflow commands live in one module each.

Every sub-app module must stay light to import (no torch at module level) so that
``orbitml --help`` and ``orbitml info`` start quickly.
"""

from __future__ import annotations

import importlib
import sys

import click
import typer

from orbitml import __version__
from orbitml.errors import OrbitmlInputError

app = typer.Typer(
    name="orbitml",
    help="Machine learning on planetary and space-mission imagery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (command name, module holding a typer app called `app`); order = order in --help
SUBAPPS: list[tuple[str, str]] = [
    ("library", "orbitml.cli.library"),
    ("unmix", "orbitml.cli.unmix"),
    ("tiles", "orbitml.cli.tiles"),
    ("crism", "orbitml.cli.crism"),
    ("cosmic", "orbitml.cli.cosmic"),
    ("minmap", "orbitml.cli.minmap"),
    ("pan2spec", "orbitml.cli.pan2spec"),
    ("ice", "orbitml.cli.ice"),
    ("remote", "orbitml.cli.remote"),
]


def _version(value: bool) -> None:
    if value:
        print(f"orbitml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Machine learning on planetary and space-mission imagery."""


def _register() -> None:
    from orbitml.cli import core

    core.register(app)
    for name, modname in SUBAPPS:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:  # a workflow not built yet
            if exc.name == modname:
                continue
            raise
        app.add_typer(mod.app, name=name)


_register()


def cli_run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (user errors: one line on stderr, code 2)."""
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="orbitml")
        return int(rv) if isinstance(rv, int) else 0
    except OrbitmlInputError as exc:
        print(f"orbitml: error: {exc}", file=sys.stderr)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        print("orbitml: interrupted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("orbitml: interrupted", file=sys.stderr)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except FileNotFoundError as exc:
        print(f"orbitml: error: {exc.filename}: no such file", file=sys.stderr)
        return 2


def main() -> None:
    sys.exit(cli_run(sys.argv[1:]))


if __name__ == "__main__":
    main()
