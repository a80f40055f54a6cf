"""A local HTTP server for tests that stand in for an EHR, a FHIR server or a JWKS endpoint."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that writes no log lines to stderr and answers a body in one call."""

    def send_body(self, body: bytes, *, status: int = 200, content_type: str | None = None,
                  length: int | None = None) -> None:
        """``status`` with ``body``; its Content-Length is ``len(body)`` unless ``length`` says
        otherwise (a truncated answer)."""
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass
