"""The sandbox daemon's admin API on loopback: ``GET /status`` and ``POST /reset``."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from gameday.errors import GamedayError
from gameday.util.net import LOOPBACK, free_port

if TYPE_CHECKING:
    from gameday.sandbox.daemon import Sandbox


def start_admin(sandbox: Sandbox) -> ThreadingHTTPServer:
    """Serve the admin API in a daemon thread; ``shutdown()`` the returned server to stop it."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body, default=str).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/status":
                self._send(200, sandbox.status())
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            try:
                if self.path == "/reset":
                    sandbox.reset()
                    self._send(200, sandbox.status())
                else:
                    self._send(404, {"error": "not found"})
            except GamedayError as exc:
                self._send(500, {"error": str(exc)})

    server = ThreadingHTTPServer((LOOPBACK, free_port()), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="admin", daemon=True).start()
    return server


__all__ = ["start_admin"]
