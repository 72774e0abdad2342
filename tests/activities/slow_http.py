"""A counting HTTP server on loopback for retry and cancellation tests.

`/hit?key=K&delay=S&first=1` counts each request under K, waits S seconds (only for K's first
request with `first=1`) while watching for the client to hang up, then answers `{"key", "n"}`.
Requests the client abandoned are recorded in `aborted`.
"""

import json
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Hits:
    port: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)
    aborted: list[str] = field(default_factory=list)

    def url(self, key: str, *, delay: float = 0, first: bool = False) -> str:
        query = f"key={key}&delay={delay}" + ("&first=1" if first else "")
        return f"http://127.0.0.1:{self.port}/hit?{query}"


def _client_gone(conn: socket.socket) -> bool:
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _handler(hits: Hits) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _hit(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            if length:
                self.rfile.read(length)
            query = parse_qs(urlsplit(self.path).query)
            key = query.get("key", [""])[0]
            delay = float(query.get("delay", ["0"])[0])
            hits.counts[key] += 1
            n = hits.counts[key]
            if delay and (n == 1 or "first" not in query):
                hits.in_flight[key] += 1
                try:
                    deadline = time.monotonic() + delay
                    while time.monotonic() < deadline:
                        if _client_gone(self.connection):
                            hits.aborted.append(key)
                            return
                        time.sleep(0.05)
                finally:
                    hits.in_flight[key] -= 1
            body = json.dumps({"key": key, "n": n}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _hit

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hang up on purpose in these tests."""


@contextmanager
def serve(port: int = 0) -> Iterator[Hits]:
    """Run the server (on `port`, or a free one) for the block."""
    hits = Hits()
    httpd = _Server(("127.0.0.1", port), _handler(hits))
    hits.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield hits
    finally:
        httpd.shutdown()
        httpd.server_close()
