"""Real loopback servers for notification tests: SMTP (aiosmtpd) and a chat webhook (HTTP).

Use them through the context managers, wrapped in a fixture where a test module wants one::

    @pytest.fixture
    def smtp() -> Iterator[SmtpServer]:
        with smtp_server() as server:
            yield server

The SMTP server accepts AUTH LOGIN/PLAIN for :data:`USER` / :data:`PASSWORD` (sending
without logging in is allowed too); every message it accepts is kept in ``messages``.
The webhook answers like WeCom/DingTalk: ``{"errcode": 0}``; a path starting with
``/fail`` gets HTTP 500, a path containing ``bad`` an ``errcode`` of 93000.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

__all__ = [
    "PASSWORD",
    "USER",
    "SmtpServer",
    "WebhookServer",
    "free_port",
    "smtp_server",
    "webhook_server",
]

USER, PASSWORD = "sentinel", "s3cret"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpServer:
    """A running SMTP server: its port and every message received (envelope recipients, bytes)."""

    port: int
    messages: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 OK"

    def parsed(self, index: int = -1) -> EmailMessage:
        """Message ``index`` parsed with the modern e-mail policy."""
        got = email.message_from_bytes(self.messages[index][1], policy=email.policy.default)
        assert isinstance(got, EmailMessage)
        return got


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (_text(data.login), _text(data.password)) == (
        USER,
        PASSWORD,
    )
    # handled=False: let the server answer 535 itself on failure.
    return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """Run an SMTP server on 127.0.0.1 (a free port) for the duration of the block."""
    server = SmtpServer(port=free_port())
    controller = Controller(
        server,
        hostname="127.0.0.1",
        port=server.port,
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@dataclass
class WebhookServer:
    """A running webhook: its base URL and every POST received (path, content type, JSON)."""

    url: str
    received: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def _handler(log: list[tuple[str, str, dict[str, Any]]]) -> type[BaseHTTPRequestHandler]:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            payload = json.loads(self.rfile.read(length).decode("utf-8"))
            log.append((self.path, self.headers["Content-Type"], payload))
            if self.path.startswith("/fail"):
                self.send_error(500, "boom")
                return
            answer = {"errcode": 93000, "errmsg": "invalid key"} if "bad" in self.path else {}
            data = json.dumps(answer or {"errcode": 0, "errmsg": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Hook


@contextmanager
def webhook_server() -> Iterator[WebhookServer]:
    """Run a chat-webhook-like HTTP server on 127.0.0.1 for the duration of the block."""
    received: list[tuple[str, str, dict[str, Any]]] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(received))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebhookServer(f"http://127.0.0.1:{httpd.server_address[1]}", received)
    finally:
        httpd.shutdown()
        httpd.server_close()
