"""Typed records shared by every remote source, the search-result file, and the safety checks on
what a server hands back (URLs and file names).

A search result file is JSON::

    {"orbitml_remote": 1, "source": "ode", "query": {...}, "count": 2, "products": [Product, ...]}

and is what ``orbitml remote get`` and ``orbitml remote pair`` read.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orbitml.errors import OrbitmlInputError

RESULTS_VERSION = 1
Source = Literal["ode", "stac", "pds", "zenodo", "url"]


class RemoteError(OrbitmlInputError):
    """A remote service answered with an error, or a download failed its checks (one line for the CLI)."""


class RemoteFile(BaseModel):
    """One file of a product: where it is, what it is called, and what the source says about it."""

    model_config = ConfigDict(extra="forbid")

    url: str
    name: str = Field(description="file name (a relative path) inside the product's cache folder")
    size: int | None = Field(None, description="exact size in bytes, when the source gives it")
    size_hint: int | None = Field(None, description="approximate size in bytes (e.g. ODE KBytes)")
    md5: str | None = None
    sha256: str | None = None
    kind: str | None = Field(None, description="ODE file Type (Product, Browse, Derived, Referenced), "
                                               "STAC asset key, ...")
    roles: list[str] = Field(default_factory=list)
    description: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        check_url(v)
        return v

    @field_validator("md5", "sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().lower()
        if not re.fullmatch(r"[0-9a-f]+", v):
            raise ValueError(f"checksum is not hexadecimal: {v!r}")
        return v

    @property
    def expected_bytes(self) -> int | None:
        return self.size if self.size is not None else self.size_hint


class Product(BaseModel):
    """One product found by a search (ODE product, STAC item, Zenodo record, PDS archive product)."""

    model_config = ConfigDict(extra="forbid")

    source: Source
    product_id: str
    instrument_host: str | None = None
    instrument: str | None = None
    product_type: str | None = None
    collection: str | None = None
    target: str | None = None
    ode_id: str | None = None
    footprint: dict[str, Any] | None = Field(None, description="GeoJSON Polygon/MultiPolygon, lon/lat degrees")
    bbox: tuple[float, float, float, float] | None = Field(
        None, description="west, south, east, north (east longitude 0-360 as the source gives it)")
    start_time: datetime | None = None
    stop_time: datetime | None = None
    observation_time: datetime | None = None
    solar_longitude: float | None = None
    files: list[RemoteFile] = Field(default_factory=list)
    properties: dict[str, Any] = Field(default_factory=dict)

    @property
    def time(self) -> datetime | None:
        """The observation time (mid-point when given, else start, else stop)."""
        if self.observation_time is not None:
            return self.observation_time
        if self.start_time is not None and self.stop_time is not None:
            return self.start_time + (self.stop_time - self.start_time) / 2
        return self.start_time or self.stop_time


def check_url(url: str) -> str:
    """Accept only absolute http(s) URLs with a host; return the URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise RemoteError(f"refusing URL {redact(url)!r}: only absolute http(s) URLs are fetched")
    return url


def redact(url: str) -> str:
    """The URL without user:password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


_BAD_NAME = re.compile(r"[\x00-\x1f\x7f\\:]")


def safe_relpath(name: str, what: str = "file name") -> PurePosixPath:
    """A server-supplied (relative) file name, checked: no absolute path, no ``..``, no drive or
    backslash, no control characters, no hidden ``.``-only parts.  Raises :class:`RemoteError`."""
    if not isinstance(name, str) or not name.strip():
        raise RemoteError(f"refusing empty {what}")
    if _BAD_NAME.search(name) or name.startswith("/") or name.startswith("~"):
        raise RemoteError(f"refusing {what} {name!r}: absolute path or forbidden character")
    p = PurePosixPath(name)
    if any(part in ("", ".", "..") for part in name.split("/")) or len(p.parts) > 8:
        raise RemoteError(f"refusing {what} {name!r}: '..', '.' or empty path parts")
    if len(name) > 255 * 2:
        raise RemoteError(f"refusing {what} {name[:40]!r}...: too long")
    return p


def safe_component(name: str, what: str = "product id") -> str:
    """A single path component (no ``/``), checked like :func:`safe_relpath`."""
    p = safe_relpath(name, what)
    if len(p.parts) != 1:
        raise RemoteError(f"refusing {what} {name!r}: contains '/'")
    return str(p)


def name_from_url(url: str) -> str:
    """The last path segment of a URL (percent-decoded), e.g. the file name of a download link."""
    path = unquote(urlsplit(url).path)
    segs = [s for s in path.split("/") if s]
    if not segs:
        raise RemoteError(f"cannot take a file name from URL {redact(url)!r}")
    if segs[-1] == "content" and len(segs) >= 2:  # Zenodo: .../files/<key>/content
        return segs[-2]
    return segs[-1]


def parse_time(value: Any) -> datetime | None:
    """Parse the time strings the sources use ('2007-01-12T10:21:03.123', with or without 'Z')."""
    if value in (None, "", "N/A") or (isinstance(value, str) and value.startswith("0000-")):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    s = str(value).strip().replace("Z", "+00:00")
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def save_results(path: str | os.PathLike, products: list[Product], source: str,
                 query: dict[str, Any] | None = None, overwrite: bool = True) -> Path:
    """Write a search result file (atomic)."""
    from orbitml.io.atomic import atomic_path

    doc = {"orbitml_remote": RESULTS_VERSION, "source": source, "query": query or {},
           "count": len(products), "products": [p.model_dump(mode="json") for p in products]}
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def load_results(path: str | os.PathLike) -> list[Product]:
    """Read a search result file written by :func:`save_results` (or ``orbitml remote ... --out``)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise OrbitmlInputError("no such file", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OrbitmlInputError(f"not a JSON search result file ({exc})", path) from None
    if not isinstance(doc, dict) or doc.get("orbitml_remote") != RESULTS_VERSION or "products" not in doc:
        raise OrbitmlInputError("not an orbitml search result file (written by `orbitml remote search/stac "
                                "--out`)", path)
    try:
        return [Product.model_validate(p) for p in doc["products"]]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise OrbitmlInputError(f"bad product record at {loc}: {err['msg']}", path) from None
