"""User-supplied text files (tables, headers, cards): decoding errors become one line naming the file."""

from __future__ import annotations

import os
from pathlib import Path

from orbitml.errors import OrbitmlInputError


def read_text(path: str | os.PathLike, what: str = "text file", encoding: str = "utf-8") -> str:
    """The text of ``path``; a file that is not ``encoding`` (a binary file, Latin-1) raises one clear error."""
    path = Path(path)
    try:
        with open(path, encoding=encoding, newline="") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise OrbitmlInputError(f"{what} is not {encoding.upper()} text ({exc.reason} at byte {exc.start}); "
                                "is this the right file?", path) from None
    except IsADirectoryError:
        raise OrbitmlInputError(f"is a folder, expected a {what}", path) from None
