"""A latency-adding, request-counting, fault-injecting HTTP proxy on loopback, in front of the test STAC API.

Every request waits ``latency_s`` (plus a random ``jitter_s``, seeded) before it is forwarded, so a
loopback API answers like a remote one; the ``Host`` header is kept, so the API's ``next`` links point
back at the proxy. Faults queued with :meth:`LatencyProxy.fail` answer the next matching requests with
a status (and ``Retry-After``) without forwarding them. Every request is recorded (time, method, path,
status) in :attr:`LatencyProxy.log`.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "te", "trailer",
        "upgrade", "proxy-authenticate", "proxy-authorization"}


@dataclass
class ProxyFault:
    status: int
    times: int
    retry_after: str | None = None
    contains: str = ""  # only requests whose path or body contains this


@dataclass
class Hit:
    t: float
    method: str
    path: str
    status: int
    body: bytes = b""


class LatencyProxy:
    """Forwards ``http://127.0.0.1:<port>/...`` to ``upstream`` after ``latency_s`` (+ jitter)."""

    def __init__(self, upstream: str, *, latency_s: float = 0.15, jitter_s: float = 0.0, seed: int = 0) -> None:
        up = urlsplit(upstream)
        self.up_host, self.up_port = up.hostname, up.port or 80
        self.latency_s, self.jitter_s = latency_s, jitter_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.faults: list[ProxyFault] = []
        self.log: list[Hit] = []
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                proxy._handle(self, "GET")

            def do_POST(self):
                proxy._handle(self, "POST")

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # many clients connect at once

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    # -- control ---------------------------------------------------------------------------------
    def fail(self, status: int, times: int = 1, *, retry_after: str | None = None, contains: str = "") -> None:
        with self._lock:
            self.faults.append(ProxyFault(status, times, retry_after, contains))

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.log.clear()

    def count(self, path: str = "/search") -> int:
        with self._lock:
            return sum(1 for h in self.log if h.path.startswith(path))

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- serving ---------------------------------------------------------------------------------
    def _fault(self, path: str, body: bytes) -> ProxyFault | None:
        with self._lock:
            for f in self.faults:
                if f.times > 0 and (not f.contains or f.contains in path or f.contains.encode() in body):
                    f.times -= 1
                    return f
        return None

    def _conn(self) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.up_host, self.up_port, timeout=120)
            self._local.conn = c
        return c

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        with self._lock:
            delay = self.latency_s + (self._rng.uniform(0, self.jitter_s) if self.jitter_s else 0.0)
        time.sleep(delay)
        fault = self._fault(h.path, body)
        if fault is not None:
            payload = f'{{"code": "Fault", "description": "injected {fault.status}"}}'.encode()
            h.send_response(fault.status)
            if fault.retry_after is not None:
                h.send_header("Retry-After", fault.retry_after)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            self._record(method, h.path, fault.status, body)
            return
        headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP and k.lower() != "accept-encoding"}
        for attempt in range(2):  # a kept-alive upstream connection may have been closed: reconnect once
            conn = self._conn()
            try:
                conn.request(method, h.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP:
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
        self._record(method, h.path, resp.status, body)

    def _record(self, method: str, path: str, status: int, body: bytes = b"") -> None:
        with self._lock:
            self.log.append(Hit(time.monotonic(), method, path, status, body))
