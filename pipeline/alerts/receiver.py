"""A local webhook receiver (stdlib http.server on 127.0.0.1) for the demo and for trying
alert delivery without Slack: it answers 200 and keeps every JSON body it received."""

from __future__ import annotations

import http.server
import json
import threading
from types import TracebackType
from typing import Any


class WebhookReceiver:
    """`with WebhookReceiver() as r: evaluate_alerts(cfg, webhook_url=r.url)`; then
    `r.received` holds the alert bodies. Port 0 picks a free port."""

    def __init__(self, port: int = 0, path: str = "/hooks/byok-ledger") -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    doc = json.loads(body)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.received.append(doc)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:  # keep the demo's output clean
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
