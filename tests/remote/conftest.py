"""A local replay server for the remote tests: a threaded http.server on 127.0.0.1 (loopback only) that
answers with responses written in the tests, logs every request, honours Range, can drop a
connection mid-body or answer slowly, serves a bounded number of requests and stops by itself."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

MAX_REQUESTS = 400  # a test that needs more than this is broken
LIFETIME_S = 60.0  # the server shuts itself down after this long whatever happens


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None  # send this many body bytes, then drop the connection
    delay: float = 0.0  # seconds to wait before answering (bounded by the test)

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})


Responder = Reply | Callable[[Request], Reply] | list


def file_responder(data: bytes, *, ranges: bool = True, cut_first: int | None = None,
                   fail_first: int = 0, fail_status: int = 503, delay: float = 0.0,
                   etag: str | None = None) -> Callable[[Request], Reply]:
    """Serve ``data`` like a static file server: 206 for ``Range: bytes=N-`` (ignored when an
    ``If-Range`` does not match ``etag``), the first ``fail_first`` requests answered ``fail_status``,
    the first successful one cut after ``cut_first`` bytes."""
    state = {"n": 0, "cut": cut_first is not None}

    def respond(req: Request) -> Reply:
        state["n"] += 1
        if state["n"] <= fail_first:
            return Reply(fail_status, b"busy")
        start = 0
        m = re.match(r"bytes=(\d+)-$", req.headers.get("range", ""))
        if "if-range" in req.headers and req.headers["if-range"] != etag:
            m = None  # the file changed since the partial copy: send it whole
        if ranges and m:
            start = int(m.group(1))
            if start >= len(data):
                return Reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
        body = data[start:]
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes" if ranges else "none"}
        if etag:
            headers["ETag"] = etag
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        cut = None
        if state["cut"]:
            state["cut"] = False
            cut = cut_first
        return Reply(status, body, headers, cut_after=cut, delay=delay)

    return respond


class ReplayServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Responder] = {}
        self.log: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = Request(self.command, parts.path,
                              {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                              {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.log.append(req)
                    over = len(server.log) > MAX_REQUESTS
                reply = Reply(500, b"request budget exhausted") if over else server._reply(req)
                if reply.delay:
                    time.sleep(min(reply.delay, 5.0))
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if reply.cut_after is not None:
                    self.wfile.write(reply.body[:reply.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self.wfile.write(reply.body)

            do_GET = do_POST = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client hanging up is part of the tests
                import sys

                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._timer = threading.Timer(LIFETIME_S, self.stop)
        self._timer.daemon = True

    def start(self) -> ReplayServer:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, responder: Responder, method: str = "GET") -> None:
        self.routes[(method, path)] = responder

    def _reply(self, req: Request) -> Reply:
        r = self.routes.get((req.method if req.method != "HEAD" else "GET", req.path))
        if r is None:
            return Reply(404, b"not found")
        if isinstance(r, list):  # replies consumed in order; the last one repeats
            item = r.pop(0) if len(r) > 1 else r[0]
            return item(req) if callable(item) else item
        return r(req) if callable(r) else r

    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.log if path is None or r.path == path]


_real_connect = socket.socket.connect


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch):
    """Every remote test may talk to 127.0.0.1 / ::1 only: any other address fails the test."""

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise AssertionError(f"test tried to reach {host}: only the local replay server is allowed")
        return _real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    s = ReplayServer().start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def cache(tmp_path, monkeypatch: pytest.MonkeyPatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("ORBITML_CACHE", str(d))
    return d
