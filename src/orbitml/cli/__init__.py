"""The ``orbitml`` command-line program (typer + rich)."""
