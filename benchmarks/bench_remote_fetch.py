"""Benchmark: parallel checked downloads vs the sequential urlretrieve loop of the public ODE helper.

A local server on 127.0.0.1 (loopback only; stops when the run ends) imitates an archive server:
``--latency`` seconds before each answer and a per-connection rate limit.  orbitml fetches N files
with 4 workers (md5 checked, atomic, cached); the anchor fetches the same files one after another
with ``urllib.request.urlretrieve`` (no checksum, no resume).  A second scenario cuts every transfer
at half way once: orbitml resumes with Range and moves each byte once (1.0x); a restart-from-zero loop
moves 1.5x.

    python benchmarks/bench_remote_fetch.py --quick
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from orbitml.remote import download  # noqa: E402
from orbitml.remote.records import Product, RemoteFile  # noqa: E402


def make_server(files: dict[str, bytes], latency: float, rate: float, cut_once: bool):
    cut = set(files) if cut_once else set()
    sent = {"bytes": 0}
    lock = threading.Lock()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            name = self.path.rsplit("/", 1)[-1]
            data = files.get(name)
            if data is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            time.sleep(latency)
            m = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
            start = int(m.group(1)) if m else 0
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with lock:
                drop = name in cut
                cut.discard(name)
            limit = len(body) // 2 if drop else len(body)
            step = 64 * 1024
            for i in range(0, limit, step):
                chunk = body[i:min(i + step, limit)]
                self.wfile.write(chunk)
                with lock:
                    sent["bytes"] += len(chunk)
                time.sleep(len(chunk) / rate)
            if drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, sent


def anchor_sequential(base: str, names: list[str], dest: Path, restart_on_cut: bool) -> None:
    for n in names:
        while True:
            try:
                urllib.request.urlretrieve(f"{base}/{n}", dest / n)
                break
            except Exception:
                if not restart_on_cut:
                    raise


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--rate", type=float, default=20e6, help="bytes/s per connection")
    args = ap.parse_args()
    n, size = (8, 1 << 20) if args.quick else (16, 4 << 20)
    files = {f"F{i:03d}.IMG": bytes([i % 251]) * size for i in range(n)}
    names = sorted(files)
    print(f"{n} files x {size >> 20} MiB, latency {args.latency * 1000:.0f} ms, {args.rate / 1e6:.0f} MB/s "
          f"per connection")
    for scenario, cut in (("plain", False), ("cut at half once", True)):
        tmp = Path(tempfile.mkdtemp(prefix="orbitml-bench-"))
        try:
            httpd, sent = make_server(files, args.latency, args.rate, cut)
            base = f"http://127.0.0.1:{httpd.server_address[1]}"
            prod = Product(source="url", product_id="bench", files=[
                RemoteFile(url=f"{base}/{k}", name=k, size=size, md5=hashlib.md5(files[k]).hexdigest())
                for k in names])
            t0 = time.perf_counter()
            download.fetch(download.plan([prod], tmp / "cache"), workers=4, progress=False, backoff=0.01)
            t_orbit = time.perf_counter() - t0
            b_orbit = sent["bytes"]
            httpd.shutdown()
            httpd.server_close()
            httpd, sent = make_server(files, args.latency, args.rate, cut)
            base = f"http://127.0.0.1:{httpd.server_address[1]}"
            (tmp / "anchor").mkdir()
            t0 = time.perf_counter()
            anchor_sequential(base, names, tmp / "anchor", restart_on_cut=cut)
            t_anchor = time.perf_counter() - t0
            b_anchor = sent["bytes"]
            httpd.shutdown()
            httpd.server_close()
            total = n * size
            print(f"[{scenario}] orbitml 4 workers: {t_orbit:.2f} s, {b_orbit / total:.2f}x bytes | "
                  f"sequential urlretrieve: {t_anchor:.2f} s, {b_anchor / total:.2f}x bytes | "
                  f"{t_anchor / t_orbit:.2f}x faster")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
