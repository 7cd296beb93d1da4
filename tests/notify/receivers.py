"""Real receivers for the delivery tests: a threaded HTTP server that records every
connection and request and answers by path, and an aiosmtpd SMTP server that keeps the
mail it receives."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """An HTTP server on `host` and a free port. Paths: `/hang` never answers, `/huge`
    sends an endless body, `/status/N` answers N, `/redirect?to=URL` answers 302, `/robot/`
    + a JSON answer in `answers`; anything else answers 200 `ok`, but a path in `failing`
    answers 500 as many times as it says first (a receiver down for a while)."""

    host: str = "127.0.0.1"
    connections: int = 0
    requests: list[Received] = field(default_factory=list)
    answers: dict[str, bytes] = field(default_factory=dict)
    failing: dict[str, int] = field(default_factory=dict)
    huge_sent: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fails(self, path: str) -> bool:
        """Whether this request to `path` is one of those `failing` says to refuse."""
        with self.lock:
            left = self.failing.get(path, 0)
            if left > 0:
                self.failing[path] = left - 1
            return left > 0

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def start(self, port: int = 0) -> HttpReceiver:
        """Listen on `port` (0: a free one)."""
        receiver = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                receiver.connections += 1
                return True

        self.server = Server((self.host, port), _handler(receiver))
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
            if self.path == "/hang":
                receiver.stopping.wait(30)
            elif self.path == "/huge":
                self._endless()
            elif self.path.startswith("/status/"):
                self._answer(int(self.path.rsplit("/", 1)[1]), b"nope")
            elif receiver.fails(self.path):
                self._answer(500, b"down for a while")
            elif self.path.startswith("/redirect?to="):
                self.send_response(302)
                self.send_header("Location", self.path.split("=", 1)[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._answer(200, receiver.answers.get(self.path, b"ok"))

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _endless(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while not receiver.stopping.is_set():
                    self.wfile.write(chunk)
                    receiver.huge_sent += len(chunk)
            except OSError:
                pass

    return Handler


class _Keeper:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append((envelope, message_from_bytes(content)))
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """An aiosmtpd server on `host` (127.0.0.1; ::1 for IPv6) and a free port; with
    `password`, it requires a login as `alerts` with that password (over plain SMTP: a test
    server)."""

    def __init__(self, password: str | None = None, host: str = "127.0.0.1") -> None:
        self.keeper = _Keeper()
        options: dict[str, Any] = {}
        if password is not None:
            options = {
                "authenticator": _authenticator(password),
                "auth_required": True,
                "auth_require_tls": False,
            }
        self.controller = Controller(self.keeper, hostname=host, port=free_port(host), **options)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def messages(self) -> list[tuple[Envelope, Message]]:
        return self.keeper.messages

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def _authenticator(password: str) -> Any:
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any):
        ok = isinstance(data, LoginPassword) and data.login == b"alerts"
        ok = ok and data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    return check


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at `host` (bound and released)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def elapsed(start: float) -> float:
    return time.monotonic() - start
