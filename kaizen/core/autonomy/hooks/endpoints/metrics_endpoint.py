"""``MetricsEndpoint``: a ``MetricsHook``'s metrics over HTTP for Prometheus to scrape.

``GET /metrics`` answers in the Prometheus text format, ``GET /health`` with a small JSON
body. It binds 127.0.0.1 unless told otherwise: metrics name agents, tools and models.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..builtin.metrics_hook import MetricsHook

logger = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsEndpoint:
    """Serves one hook's registry; ``start()`` runs it on a daemon thread, ``stop()`` ends it."""

    def __init__(self, metrics_hook: MetricsHook, port: int = 9090, host: str = "127.0.0.1") -> None:
        self.metrics_hook = metrics_hook
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port/metrics`` (the bound port once started)."""
        return f"http://{self.host}:{self.port}/metrics"

    def start(self) -> MetricsEndpoint:
        if self._server is not None:
            return self
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self.metrics_hook))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"kaizen-metrics:{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Start and block until ``stop()`` is called from another thread (or Ctrl-C)."""
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            self.stop()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> MetricsEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(hook: MetricsHook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                try:
                    self._send(200, hook.export_prometheus(), CONTENT_TYPE)
                except Exception as exc:  # details stay in our log, not in the answer
                    logger.error("exporting metrics failed: %s", exc)
                    self._send(500, b"internal server error\n", "text/plain")
            elif path == "/health":
                self._send(200, b'{"status": "healthy", "metrics": "available"}', "application/json")
            else:
                self._send(404, b"not found; try /metrics\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("metrics endpoint: " + format, *args)

    return Handler
