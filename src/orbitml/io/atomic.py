"""Atomic output: write to a temporary name beside the target, rename when complete.

A crash or an exception leaves no file that looks finished.  Use for every product::

    with atomic_path(out, overwrite=False) as tmp:
        write_something(tmp)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from orbitml.errors import OrbitmlInputError


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise OrbitmlInputError("output exists; use --overwrite to replace it", path)
    if path.is_dir() and path.suffix:
        raise OrbitmlInputError("output is an existing folder; give a file name (or remove the folder)", path)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True, siblings: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it (and ``siblings``) into place.

    ``siblings`` are extra suffixes written beside the main file that must move with it, e.g.
    ``(".hdr",)`` for ENVI (the temporary header is ``<tmp stem>.hdr``), or ``(".aux.xml",)``.
    """
    path = check_writable(path, overwrite)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")

    def sib(p: Path, suf: str) -> Path:
        return p.with_suffix(suf) if suf.startswith(".") and suf.count(".") == 1 else Path(str(p) + suf)

    try:
        yield tmp
        for suf in siblings:
            s = sib(tmp, suf)
            if s.exists():
                os.replace(s, sib(path, suf))
        if tmp.is_dir():
            if path.exists():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    except BaseException:
        for p in [tmp, *(sib(tmp, s) for s in siblings), Path(str(tmp) + ".aux.xml")]:
            with contextlib.suppress(OSError):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        raise
    finally:
        aux = Path(str(tmp) + ".aux.xml")
        with contextlib.suppress(OSError):
            aux.unlink()
