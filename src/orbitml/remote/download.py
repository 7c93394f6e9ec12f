"""Downloads: parallel (bounded), resumable (HTTP Range), retried with backoff (tenacity) on 5xx/429 and
dropped connections, with timeouts, a per-file size cap, size and md5/sha256 checks, atomic (a
``<name>.part`` file renamed into place only once complete and checked), into a cache reused across runs.

Cache layout: ``<cache>/<source>/<product id>/<file name as the server names it>``, so a downloaded
product keeps its archive name and opens with ``orbitml info`` and the workflows without renaming.
The cache is ``$ORBITML_CACHE``, else ``$XDG_CACHE_HOME/orbitml``, else ``~/.cache/orbitml``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from orbitml.remote import _http
from orbitml.remote.records import Product, RemoteError, check_url, redact, safe_component, safe_relpath

DEFAULT_MAX_BYTES = 64 * 1024**3  # 64 GiB: larger than any single PDS product orbitml reads
CHUNK = 1 << 20
PRODUCT_RECORD = ".orbitml-product.json"


def default_cache_dir() -> Path:
    env = os.environ.get("ORBITML_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "orbitml"


@dataclass
class FetchItem:
    url: str
    dest: Path
    product_id: str
    source: str
    size: int | None = None
    size_hint: int | None = None
    md5: str | None = None
    sha256: str | None = None
    cached: bool = False

    @property
    def part(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part")

    @property
    def expected_bytes(self) -> int | None:
        return self.size if self.size is not None else self.size_hint


@dataclass
class FetchResult:
    item: FetchItem
    status: str  # cached | downloaded | resumed | failed | cancelled
    path: Path | None = None
    nbytes: int = 0
    error: str | None = None


@dataclass
class Plan:
    items: list[FetchItem] = field(default_factory=list)
    cache_dir: Path = field(default_factory=default_cache_dir)

    @property
    def to_fetch(self) -> list[FetchItem]:
        return [i for i in self.items if not i.cached]

    def total_bytes(self, only_missing: bool = True) -> tuple[int, int]:
        """(known total bytes, number of files of unknown size)."""
        items = self.to_fetch if only_missing else self.items
        known = sum(i.expected_bytes or 0 for i in items)
        return known, sum(1 for i in items if i.expected_bytes is None)


def _refuse_links(cache: Path, path: Path) -> None:
    """Refuse a target that is a link, or lies under a link, or resolves outside the cache."""
    root = cache.resolve()
    p = path
    while True:
        if p.is_symlink():
            raise RemoteError(f"refusing to write through the link {p}")
        if p == cache or p.parent == p:
            break
        p = p.parent
    try:
        path.resolve().relative_to(root)
    except ValueError:
        raise RemoteError(f"refusing {path}: outside the cache directory {cache}") from None


def plan(products: Iterable[Product], cache_dir: str | os.PathLike | None = None,
         kinds: Iterable[str] | None = None, names: Iterable[str] | None = None,
         verify_cached: bool = False) -> Plan:
    """What would be fetched, where it goes, and what is already in the cache (no network).

    ``kinds`` keeps files whose kind (ODE Type such as Product/Browse, STAC asset key) or role
    matches (case-insensitive); ``names`` keeps files whose name matches one of these regular
    expressions.  A file already in the cache counts as cached when its size matches the size the
    source gives (and, with ``verify_cached``, its checksum)."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = cache.expanduser()
    kset = {k.lower() for k in kinds} if kinds else None
    pats = [re.compile(n, re.IGNORECASE) for n in names] if names else None
    out = Plan(cache_dir=cache)
    seen: set[Path] = set()
    for prod in products:
        base = cache / safe_component(prod.source, "source") / safe_component(prod.product_id)
        for f in prod.files:
            if kset is not None and not ({(f.kind or "").lower(), *(r.lower() for r in f.roles)} & kset):
                continue
            if pats is not None and not any(p.search(f.name) for p in pats):
                continue
            check_url(f.url)
            dest = base / str(safe_relpath(f.name))
            if dest.name == PRODUCT_RECORD or dest.name.endswith((".part", ".part.json")):
                raise RemoteError(f"refusing file name {f.name!r}: it collides with orbitml's own cache files")
            if dest in seen:
                continue
            seen.add(dest)
            item = FetchItem(url=f.url, dest=dest, product_id=prod.product_id, source=prod.source,
                             size=f.size, size_hint=f.size_hint, md5=f.md5, sha256=f.sha256)
            item.cached = _is_cached(cache, item, verify_cached)
            out.items.append(item)
    return out


def _is_cached(cache: Path, item: FetchItem, verify: bool) -> bool:
    d = item.dest
    if d.is_symlink() or not d.is_file():
        return False
    _refuse_links(cache, d)
    if item.size is not None and d.stat().st_size != item.size:
        return False
    if verify and (item.md5 or item.sha256):
        return _checksum_problem(d, item) is None
    return True


def _checksum_problem(path: Path, item: FetchItem) -> str | None:
    hashers = {}
    if item.md5:
        hashers["md5"] = hashlib.md5(usedforsecurity=False)
    if item.sha256:
        hashers["sha256"] = hashlib.sha256()
    if not hashers:
        return None
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
    for alg, h in hashers.items():
        want = getattr(item, alg)
        got = h.hexdigest()
        if got != want:
            return f"{alg} mismatch: expected {want}, got {got}"
    return None


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class Cancelled(Exception):
    """The batch was interrupted; partial files stay for the next run."""


def _validator_path(item: FetchItem) -> Path:
    return item.part.with_name(item.part.name + ".json")


def _read_validator(item: FetchItem) -> dict[str, str]:
    try:
        v = json.loads(_validator_path(item).read_text())
    except (OSError, ValueError):
        return {}
    return v if isinstance(v, dict) and v.get("url") == item.url else {}


def _save_validator(item: FetchItem, r: httpx.Response) -> None:
    """Remember the ETag / Last-Modified of the file being fetched, so a resume can ask If-Range."""
    etag, lm = r.headers.get("ETag"), r.headers.get("Last-Modified")
    path = _validator_path(item)
    if (etag and not etag.startswith("W/")) or lm:
        path.write_text(json.dumps({"url": item.url, "etag": etag, "last_modified": lm}))
    else:
        path.unlink(missing_ok=True)


def _cleanup(item: FetchItem, part: bool = True) -> None:
    if part:
        item.part.unlink(missing_ok=True)
    _validator_path(item).unlink(missing_ok=True)


def _download(client: httpx.Client, cache: Path, item: FetchItem, *, retries: int, backoff: float,
              max_bytes: int, advance: Callable[[int], None],
              stop: threading.Event | None = None) -> FetchResult:
    item.dest.parent.mkdir(parents=True, exist_ok=True)
    _refuse_links(cache, item.dest)
    _refuse_links(cache, item.part)
    _refuse_links(cache, _validator_path(item))
    if item.size is not None and item.size > max_bytes:
        raise RemoteError(f"{item.dest.name}: {item.size} bytes exceeds the size cap of {max_bytes} bytes")
    state = {"resumed": False, "fetched": 0}

    def attempt() -> int:
        have = item.part.stat().st_size if item.part.exists() else 0
        # identity encoding: byte offsets of the file and of the transfer agree, so Range resumes it
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
            v = _read_validator(item)  # the server sends the whole file if it changed since
            if v.get("etag") and not str(v["etag"]).startswith("W/"):
                headers["If-Range"] = v["etag"]
            elif v.get("last_modified"):
                headers["If-Range"] = v["last_modified"]
        with client.stream("GET", item.url, headers=headers) as r:
            if r.status_code == 416:  # the partial file is not a prefix we can extend: start over
                item.part.unlink(missing_ok=True)
                raise _http.TransientHTTPError(416, item.url)
            if r.status_code >= 500 or r.status_code == 429:
                raise _http.TransientHTTPError(r.status_code, item.url)
            if r.status_code >= 400:
                raise RemoteError(f"HTTP {r.status_code} for {redact(item.url)}")
            total: int | None = None
            mode = "wb"
            if have and r.status_code == 206:
                m = _CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != have:
                    item.part.unlink(missing_ok=True)
                    raise _http.TransientHTTPError(206, item.url)  # a range we did not ask for
                total = None if m.group(3) == "*" else int(m.group(3))
                mode = "ab"
                state["resumed"] = True
            else:
                have = 0
                cl = r.headers.get("Content-Length")
                total = int(cl) if cl and cl.isdigit() else None
                _save_validator(item, r)
            if total is not None and total > max_bytes:
                raise RemoteError(f"{item.dest.name}: {total} bytes exceeds the size cap of {max_bytes} bytes")
            if total is not None and item.size is not None and total != item.size:
                raise RemoteError(f"{item.dest.name}: server sends {total} bytes, the record says {item.size}")
            with open(item.part, mode) as fh:
                for chunk in r.iter_raw():  # as it arrives: a cut keeps what came
                    if stop is not None and stop.is_set():
                        raise Cancelled(item.dest.name)
                    fh.write(chunk)
                    have += len(chunk)
                    state["fetched"] += len(chunk)
                    advance(len(chunk))
                    if have > max_bytes:
                        raise RemoteError(f"{item.dest.name}: more than the size cap of {max_bytes} bytes")
            if total is not None and have != total:
                raise httpx.RemoteProtocolError(f"got {have} of {total} bytes")
            return have

    try:
        nbytes = _http.retrying(attempt, retries=retries, backoff=backoff)
    except RemoteError:
        _cleanup(item)  # a permanent refusal: nothing half-written stays
        raise
    except (_http.TransientHTTPError, httpx.TransportError) as exc:
        # keep the partial file: the next run resumes it with a Range request
        raise RemoteError(f"{item.dest.name}: {_http.describe_failure(exc, item.url)}") from None
    if item.size is not None and nbytes != item.size:
        _cleanup(item)
        raise RemoteError(f"{item.dest.name}: size mismatch: expected {item.size} bytes, got {nbytes}")
    problem = _checksum_problem(item.part, item)
    if problem is not None:
        _cleanup(item)
        raise RemoteError(f"{item.dest.name}: {problem}; the file was rejected and removed")
    os.replace(item.part, item.dest)
    _cleanup(item, part=False)
    return FetchResult(item, "resumed" if state["resumed"] else "downloaded", item.dest, nbytes)


def fetch(p: Plan, *, workers: int = 4, retries: int = _http.DEFAULT_RETRIES, backoff: float = 0.5,
          timeout: float = 60.0, max_bytes: int = DEFAULT_MAX_BYTES, progress: bool = True,
          client: httpx.Client | None = None, raise_on_error: bool = True,
          products: Iterable[Product] | None = None) -> list[FetchResult]:
    """Fetch every missing file of a :func:`plan`, at most ``workers`` at a time.

    Files already cached are not requested.  A failed file does not stop the others; with
    ``raise_on_error`` a :class:`RemoteError` listing the failures is raised once all are done.
    Partial files of dropped transfers stay as ``<name>.part`` and are resumed next time; a file
    failing its size or checksum check is removed.  ``products`` (the records the plan came from)
    are written beside their files as ``.orbitml-product.json``."""
    if workers < 1:
        raise RemoteError("workers must be at least 1")
    results: list[FetchResult] = [FetchResult(i, "cached", i.dest) for i in p.items if i.cached]
    todo = p.to_fetch
    own = client is None
    cl = client or _http.make_client(timeout=timeout, max_connections=max(workers, 1))
    lock = threading.Lock()
    stop = threading.Event()
    known, _ = p.total_bytes()
    with _progress(progress, len(todo), known) as advance:
        def one(item: FetchItem) -> FetchResult:
            try:
                return _download(cl, p.cache_dir, item, retries=retries, backoff=backoff, max_bytes=max_bytes,
                                 advance=lambda n: advance(n, 0, lock), stop=stop)
            except RemoteError as exc:
                return FetchResult(item, "failed", None, 0, exc.reason)
            except Cancelled:
                return FetchResult(item, "cancelled", None, 0, "interrupted; the partial file is kept")
            finally:
                advance(0, 1, lock)

        try:
            if workers == 1 or len(todo) <= 1:
                results += [one(i) for i in todo]
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="orbitml-fetch") as pool:
                    futures = [pool.submit(one, i) for i in todo]
                    try:
                        results += [f.result() for f in futures]
                    except BaseException:  # Ctrl-C: stop every transfer at its next chunk, keep .part files
                        stop.set()
                        raise
        finally:
            if own:
                cl.close()
    if products is not None:
        _write_records(p, products)
    failed = [r for r in results if r.status == "failed"]
    if failed and raise_on_error:
        detail = "; ".join(f"{r.error}" for r in failed[:5]) + ("; ..." if len(failed) > 5 else "")
        raise RemoteError(f"{len(failed)} of {len(p.items)} files failed: {detail} (run again to resume)")
    return results


def _write_records(p: Plan, products: Iterable[Product]) -> None:
    from orbitml.io.atomic import atomic_path

    present = {(i.source, i.product_id) for i in p.items if i.dest.is_file()}
    for prod in products:
        if (prod.source, prod.product_id) not in present:
            continue
        d = p.cache_dir / prod.source / safe_component(prod.product_id)
        with contextlib.suppress(OSError), atomic_path(d / PRODUCT_RECORD) as tmp:
            tmp.write_text(json.dumps(prod.model_dump(mode="json"), indent=1) + "\n")


@contextlib.contextmanager
def _progress(enabled: bool, n_files: int, total_bytes: int):
    if not enabled or n_files == 0:
        yield lambda n, files, lock: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    console = Console(stderr=True, soft_wrap=True)
    cols = (TextColumn("[bold]fetch[/] {task.fields[files]}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*cols, console=console, transient=False) as bar:
        task = bar.add_task("fetch", total=total_bytes or None, files=f"0/{n_files}")
        done = [0]

        def advance(n: int, files: int, lock: threading.Lock) -> None:
            with lock:
                done[0] += files
                bar.update(task, advance=n, files=f"{done[0]}/{n_files}")

        yield advance
