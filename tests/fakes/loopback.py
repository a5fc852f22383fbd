"""The HTTP plumbing both fake CRMs share: a threaded server on 127.0.0.1 (optionally TLS) that
hands every request to ``respond`` and counts requests by kind."""

from __future__ import annotations

import json
import ssl
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Response = tuple[int, Any, dict[str, str], str]  # status, body (bytes or JSON-able), headers, type


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hangs up (a timeout given up on, a process ending) is no server error
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Subclasses implement :meth:`respond`; use the server as a context manager."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self.server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def respond(self, method: str, target: str, headers: Any, raw: bytes) -> Response:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler_for(fake: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one small response per request: no 40 ms ACK delays

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

        def do_PATCH(self) -> None:
            self._reply("PATCH")

        def do_DELETE(self) -> None:
            self._reply("DELETE")

        def _reply(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, body, headers, content_type = fake.respond(method, self.path, self.headers, raw)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type};charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
