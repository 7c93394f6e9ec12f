"""Error types shared by every layer.

A user mistake (a missing file, a label that disagrees with its data, a wavelength table of the
wrong length, a bad argument) raises :class:`OrbitmlInputError`.  The CLI turns it into one line on
stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import os


class OrbitmlError(Exception):
    """Base class for orbitml errors."""


class OrbitmlInputError(OrbitmlError, ValueError):
    """Bad input from the user: names the file (when there is one) and what is wrong with it."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 band"``, ``"2 bands"``: a number with its noun in the right form for messages."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
