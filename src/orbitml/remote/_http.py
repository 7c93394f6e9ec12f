"""One place for HTTP: the httpx client, timeouts, and retry-with-backoff (tenacity) on 5xx, 429 and
dropped connections.  Credentials in URLs never reach a message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from orbitml import __version__
from orbitml.remote.records import RemoteError, check_url, redact

T = TypeVar("T")
USER_AGENT = f"orbitml/{__version__} (+https://github.com/orbitml)"
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 5


class TransientHTTPError(Exception):
    """A status worth retrying (5xx, 429)."""

    def __init__(self, status: int, url: str):
        self.status = status
        self.url = url
        super().__init__(f"HTTP {status} from {redact(url)}")


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientHTTPError | httpx.TransportError)


def make_client(timeout: float = DEFAULT_TIMEOUT, connect_timeout: float | None = None,
                max_connections: int = 8) -> httpx.Client:
    """An httpx client with explicit timeouts, redirects followed, and a bounded connection pool."""
    t = httpx.Timeout(timeout, connect=connect_timeout if connect_timeout is not None else min(timeout, 30.0))
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.Client(timeout=t, limits=limits, follow_redirects=True, max_redirects=10,
                        headers={"User-Agent": USER_AGENT})


def retrying(call: Callable[[], T], retries: int = DEFAULT_RETRIES, backoff: float = 0.5,
             max_wait: float = 30.0) -> T:
    """Run ``call``; on a transient failure wait (exponential backoff) and run it again, ``retries``
    extra times at most.  The last exception propagates."""
    r = Retrying(stop=stop_after_attempt(max(1, retries + 1)),
                 wait=wait_exponential(multiplier=backoff, max=max_wait),
                 retry=retry_if_exception(is_transient), reraise=True)
    return r(call)


def describe_failure(exc: BaseException, url: str) -> str:
    u = redact(url)
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out talking to {u} ({type(exc).__name__})"
    if isinstance(exc, TransientHTTPError):
        return f"server error HTTP {exc.status} from {u} (retries exhausted)"
    if isinstance(exc, httpx.TransportError):
        return f"connection to {u} failed: {type(exc).__name__}: {exc}"
    return f"{u}: {exc}"


def get_json(client: httpx.Client, url: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None,
             retries: int = DEFAULT_RETRIES, backoff: float = 0.5, what: str = "service") -> Any:
    """GET ``url`` and decode JSON, retrying transient failures; raise :class:`RemoteError` otherwise."""
    check_url(url)

    def once() -> Any:
        resp = client.get(url, params=params)
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TransientHTTPError(resp.status_code, url)
        if resp.status_code >= 400:
            raise RemoteError(f"{what} answered HTTP {resp.status_code} for {redact(str(resp.url))}: "
                              f"{_snippet(resp.text)}")
        try:
            return resp.json()
        except ValueError:
            raise RemoteError(f"{what} at {redact(url)} did not answer JSON: {_snippet(resp.text)}") from None

    try:
        return retrying(once, retries=retries, backoff=backoff)
    except (TransientHTTPError, httpx.TransportError) as exc:
        raise RemoteError(f"{what}: {describe_failure(exc, url)}") from None


def _snippet(text: str, n: int = 160) -> str:
    t = " ".join(text.split())
    return t if len(t) <= n else t[:n] + "..."
