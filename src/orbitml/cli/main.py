"""Entry point: ``orbitml <command>``; workflow commands live in one module each.

Every sub-app module must stay light to import (no torch at module level) so that
``orbitml --help`` and ``orbitml info`` start quickly.
"""

from __future__ import annotations

import importlib
import sys

import click
import typer
import typer.main

from orbitml import __version__
from orbitml.errors import OrbitmlInputError

HELP_WIDTH = 120  # help text wraps here, or at the terminal's width when that is wider

app = typer.Typer(
    name="orbitml",
    help="Machine learning on planetary and space-mission imagery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
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
    allow_external: bool = typer.Option(
        False, "--allow-external-files",
        help="Let labels and VRTs read files outside their own folder (and GDAL network paths)."),
) -> None:
    """Machine learning on planetary and space-mission imagery."""
    if allow_external:
        import os

        from orbitml.io.integrity import ALLOW_ENV

        os.environ[ALLOW_ENV] = "1"


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


def _click_classes(name: str) -> tuple[type, ...]:
    """``name`` (e.g. "ClickException") from click and from the click that typer bundles, where it does."""
    found = [getattr(click.exceptions, name)]
    try:
        bundled = importlib.import_module("typer._click.exceptions")
        if hasattr(bundled, name):
            found.append(getattr(bundled, name))
    except ModuleNotFoundError:
        pass
    return tuple(dict.fromkeys(found))


_CLICK_ERRORS = _click_classes("ClickException")
_CLICK_EXIT = (*_click_classes("Exit"), typer.Exit)
_CLICK_ABORT = (*_click_classes("Abort"), typer.Abort)
_NO_ARGS = _click_classes("NoArgsIsHelpError")


def _plain_arguments(cmd) -> None:
    """Positional arguments shown as ``PATHS...`` / ``CUBE`` in usage and help, in every command.

    Typer's own display puts required arguments in braces (``{paths}``) and adds the Python
    annotation (``<list[Path]>``); this names them the way every other command-line tool does.
    """
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:  # older typer: click's display is already plain
        return
    import re

    class _Option(TyperOption):
        def display_type_rich(self, ctx=None):  # <list[str]> -> <str> (the option repeats)
            shown = super().display_type_rich(ctx)
            return re.sub(r"<list\[(\w+)\]>", lambda m: f"<{m.group(1).lower()}>", shown) if shown else shown

    class _Argument(TyperArgument):
        def _usage_display_name(self) -> str:
            name = self.metavar or self.name.upper()
            return name if self.required else f"[{name}]"

        def display_type_rich(self, ctx=None) -> str:
            return ""

    def walk(c) -> None:
        if hasattr(c, "rich_markup_mode"):
            c.rich_markup_mode = None
        for p in getattr(c, "params", []):
            if isinstance(p, TyperArgument) and not isinstance(p, _Argument):
                if p.metavar is None:
                    p.metavar = (p.name or "arg").upper() + ("..." if p.nargs == -1 else "")
                p.__class__ = _Argument
            elif isinstance(p, TyperOption) and not isinstance(p, _Option):
                p.__class__ = _Option
        for sub in (getattr(c, "commands", None) or {}).values():
            walk(sub)

    walk(cmd)


def _command():
    import shutil

    cmd = typer.main.get_command(app)
    _plain_arguments(cmd)
    width = max(HELP_WIDTH, shutil.get_terminal_size((HELP_WIDTH, 24)).columns)
    cmd.context_settings = {**(cmd.context_settings or {}), "max_content_width": width, "terminal_width": width}
    return cmd


def _usage_line(exc) -> str:
    """One line for a command-line parsing mistake: the message and where to find help."""
    msg = " ".join(str(exc.format_message()).split())
    ctx = getattr(exc, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None and getattr(ctx, "command_path", None) else ""
    return f"orbitml: error: {msg}{where}"


def _quiet_warnings() -> None:
    """Warnings as one line each (no source lines); a raster without georeferencing is not worth one."""
    import warnings

    try:
        from rasterio.errors import NotGeoreferencedWarning

        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    except ImportError:  # pragma: no cover - rasterio is a dependency
        pass
    warnings.formatwarning = lambda message, category, *a, **k: f"orbitml: warning: {message}\n"


def _exit_code(code: int) -> int:
    """Typer turns Ctrl-C into Exit(130), which click returns (or raises) without a word: say it."""
    if code == 130:
        print("orbitml: interrupted", file=sys.stderr)
    return code


def _read_error(exc: BaseException) -> str | None:
    """GDAL's words for pixels that could not be read lazily (a dask chunk of a truncated JP2, ...)."""
    if type(exc).__module__.split(".")[0] != "rasterio":
        return None
    from orbitml.io._gdal import read_error_reason

    return read_error_reason(exc)


def cli_run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (user errors: one line on stderr, code 2)."""
    _quiet_warnings()
    try:
        rv = _command().main(args=argv, standalone_mode=False, prog_name="orbitml")
        return _exit_code(int(rv) if isinstance(rv, int) else 0)
    except OrbitmlInputError as exc:
        print(f"orbitml: error: {exc}", file=sys.stderr)
        return 2
    except _CLICK_EXIT as exc:
        return _exit_code(int(getattr(exc, "exit_code", 0) or 0))
    except (*_CLICK_ABORT, KeyboardInterrupt):
        print("orbitml: interrupted", file=sys.stderr)
        return 130
    except _NO_ARGS as exc:  # `orbitml` or `orbitml crism` alone: the help, as asked for
        ctx = getattr(exc, "ctx", None)
        print(ctx.get_help() if ctx is not None else str(exc))
        return 0
    except _CLICK_ERRORS as exc:
        print(_usage_line(exc), file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"orbitml: error: {exc.filename}: no such file", file=sys.stderr)
        return 2
    except PermissionError as exc:
        print(f"orbitml: error: {exc.filename or ''}: permission denied", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"orbitml: error: a text file is not UTF-8 ({exc.reason} at byte {exc.start})", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, read-only file system, a GDAL read of damaged pixels ...
        reason = _read_error(exc)
        if reason is not None:
            print(f"orbitml: error: {reason}", file=sys.stderr)
            return 2
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"orbitml: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


def main() -> None:
    sys.exit(cli_run(sys.argv[1:]))


if __name__ == "__main__":
    main()
