"""YAML run manifests validated by pydantic: one loader for every workflow.

``load_manifest(path, Model)`` reads a YAML mapping with ``yaml.safe_load`` (no Python tags), refuses
oversized files and alias bombs, validates it against a pydantic model (workflows set
``extra="forbid"`` so unknown keys are rejected) and turns every problem into one
:class:`~orbitml.errors.OrbitmlInputError` naming the file and the offending keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from orbitml.errors import OrbitmlInputError

M = TypeVar("M", bound=BaseModel)

MAX_BYTES = 1 << 20  # a manifest is a page of settings, not a data set


MAX_NODES = 1_000_000  # expanded size; an alias bomb ("billion laughs") is far larger


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses documents whose aliases expand to more than :data:`MAX_NODES` nodes."""

    def compose_document(self):  # noqa: D102
        node = super().compose_document()
        sizes: dict[int, int] = {}

        def size(n) -> int:
            k = id(n)
            if k in sizes:
                return sizes[k]
            sizes[k] = 1  # guards recursive anchors
            if isinstance(n, yaml.SequenceNode):
                total = 1 + sum(size(c) for c in n.value)
            elif isinstance(n, yaml.MappingNode):
                total = 1 + sum(size(a) + size(b) for a, b in n.value)
            else:
                total = 1
            sizes[k] = min(total, MAX_NODES + 1)
            return sizes[k]

        if node is not None and size(node) > MAX_NODES:
            raise yaml.YAMLError(f"its aliases expand to more than {MAX_NODES:,} values")
        return node


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """The YAML mapping in ``path``; clear errors for a missing, huge, hostile or non-mapping file."""
    path = Path(path)
    if not path.is_file():
        raise OrbitmlInputError("no such manifest", path)
    if path.stat().st_size > MAX_BYTES:
        raise OrbitmlInputError(f"manifest is larger than {MAX_BYTES // 1024} KiB; is this the right file?", path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except UnicodeDecodeError:
        raise OrbitmlInputError("manifest is not UTF-8 text", path) from None
    except RecursionError:
        raise OrbitmlInputError("manifest is nested too deeply", path) from None
    except yaml.YAMLError as exc:
        msg = str(exc).replace("\n", " ")
        raise OrbitmlInputError(f"manifest is not valid YAML: {msg}", path) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise OrbitmlInputError(f"manifest must be a YAML mapping of settings, found a {type(raw).__name__}", path)
    return raw


def format_validation_error(exc: ValidationError) -> str:
    """``key.sub: message; other: message`` for a pydantic error."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ())) or "(top level)"
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def validate_manifest(raw: dict[str, Any], model: type[M], path: str | os.PathLike | None = None) -> M:
    """Validate a mapping against ``model``; one clear error naming the file and every bad key."""
    try:
        return model(**raw)
    except ValidationError as exc:
        raise OrbitmlInputError(f"invalid manifest: {format_validation_error(exc)}", path) from None
    except TypeError as exc:  # keys that are not strings
        raise OrbitmlInputError(f"invalid manifest: {exc}", path) from None


def load_manifest(path: str | os.PathLike, model: type[M]) -> M:
    """Read and validate the YAML manifest at ``path`` against the pydantic ``model``."""
    return validate_manifest(read_yaml_mapping(path), model, path)


def resolve_path(value: str | os.PathLike | None, base: str | os.PathLike) -> str | None:
    """A manifest path made absolute against the manifest's folder (``None`` stays ``None``)."""
    if value is None:
        return None
    p = Path(os.path.expanduser(os.fspath(value)))
    return str(p if p.is_absolute() else Path(base) / p)


def write_manifest(model: BaseModel, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write the validated manifest (plus ``extra``, e.g. the package version) as YAML, atomically."""
    from orbitml.io.atomic import atomic_path

    data = model.model_dump(mode="json")
    if extra:
        data = {**data, **extra}
    with atomic_path(path, overwrite=True) as tmp:
        Path(tmp).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return Path(path)
