"""The limits of `dwsched serve`'s connections (docs/deployment.md): whom to believe about
a request's origin, how many connections a process holds, and how long a request's line and
headers may take, enforced by a protocol class uvicorn runs."""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import time
import weakref
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from dwsched import config

log = logging.getLogger("dwsched.server")
BACKLOG = 2048  # connections the kernel queues before they are accepted
MAX_HEADER_BYTES = 64 * 1024  # a request line and headers larger than this are refused
FD_RESERVE = 1024  # descriptors kept for the database, task processes and logs


@dataclass(frozen=True)
class Transport:
    """How the server meets its clients (docs/deployment.md). `forwarded_allow_ips`: the
    proxies whose X-Forwarded-For / X-Forwarded-Proto are believed, uvicorn's format (comma
    separated addresses, networks, or `*`); empty: nobody's, the peer is the client.
    `max_connections` per process, kept below its file-descriptor limit; the timeouts in
    seconds."""

    forwarded_allow_ips: str = config.DEFAULT_FORWARDED_ALLOW_IPS
    max_connections: int = config.DEFAULT_MAX_CONNECTIONS
    header_timeout: float = config.DEFAULT_HEADER_TIMEOUT
    body_timeout: float = config.DEFAULT_BODY_TIMEOUT
    keep_alive_timeout: int = config.DEFAULT_KEEP_ALIVE_TIMEOUT


DEFAULT_TRANSPORT = Transport()


def uvicorn_options(transport: Transport, fd_limit: int) -> dict[str, Any]:
    """uvicorn's options for `transport` in a process allowed `fd_limit` descriptors.

    X-Forwarded-* are read (by uvicorn, into the client address and scheme every part of
    the app uses) only from the proxies named. The connection cap is ours, not uvicorn's
    `limit_concurrency`: that one still accepts every connection (each holds a descriptor)
    and answers 503 to everyone once idle ones reach it."""
    trusted = transport.forwarded_allow_ips
    cap = min(transport.max_connections, max(64, fd_limit - min(FD_RESERVE, fd_limit // 4)))
    if cap < transport.max_connections:
        log.warning(
            "max_connections_lowered max_connections=%d fd_limit=%d",
            cap,
            fd_limit,
        )
    limits = Limits(cap, transport.header_timeout, MAX_HEADER_BYTES)
    return {
        "access_log": False,
        "loop": "auto",
        "http": functools.partial(GuardedHttpProtocol, limits=limits),
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or "",  # never None: uvicorn would read its own env
        "timeout_keep_alive": transport.keep_alive_timeout,
        "backlog": BACKLOG,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_graceful_shutdown": 10,
    }


def raise_fd_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            log.warning("fd_limit_not_raised soft=%d hard=%d", soft, hard)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


@dataclass(frozen=True)
class Limits:
    """A process's connection limits: how many, and how long and large a request's line
    and headers may be."""

    max_connections: int
    header_timeout: float
    max_header_bytes: int


class _Waiting:
    """The connections of one server waiting for a request's headers, oldest first, and
    counts of those closed for it (logged at once, then at most once a minute)."""

    def __init__(self) -> None:
        self.connections: dict[GuardedHttpProtocol, None] = {}
        self.evicted = 0
        self.timed_out = 0
        self.reported = float("-inf")

    def report(self) -> None:
        now = time.monotonic()
        if now - self.reported < 60:
            return
        # Evictions mean the cap is reached; header timeouts alone also come from browsers'
        # unused preconnections.
        level = logging.WARNING if self.evicted else logging.INFO
        log.log(
            level,
            "connections_closed evicted=%d header_timeouts=%d waiting=%d",
            self.evicted,
            self.timed_out,
            len(self.connections),
        )
        self.evicted = self.timed_out = 0
        self.reported = now


_WAITING: weakref.WeakKeyDictionary[ServerState, _Waiting] = weakref.WeakKeyDictionary()


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits uvicorn lacks. A connection is waiting
    from when it opens, or finishes a response, until its next request's headers are in:
    it is closed if that takes longer than `header_timeout`, or more than
    `max_header_bytes`. Past `max_connections`, a new connection closes the one that has
    waited longest (or itself, when every other one is busy with a request), so that
    idle clients cannot keep others out."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: Limits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.waiting = _WAITING.setdefault(server_state, _Waiting())
        self.header_timer: asyncio.TimerHandle | None = None
        self.header_bytes = 0
        self.in_body = False  # between a request's headers and the end of its body

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            oldest = next(iter(self.waiting.connections), None)
            self.waiting.evicted += 1
            self.waiting.report()
            if oldest is None:
                transport.close()
                return
            oldest._close()
        self._wait()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        timer = None if self.in_body else self.header_timer
        super().data_received(data)
        # Counted only while the same request's headers are still awaited: not the rest of
        # an earlier body, nor bytes that ended one request and began the next.
        if timer is not None and timer is self.header_timer and not self.transport.is_closing():
            self.header_bytes += len(data)
            if self.header_bytes > self.limits.max_header_bytes:
                self.send_431_response()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._wait()

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        self.in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_body = False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The rest of a body the app did not read (a 413, a 408) is read and dropped, then
        # the next request's headers are awaited: all within `header_timeout`. Closing at
        # once would reset the connection before the client could read the answer.
        if self.cycle is None or self.cycle.response_complete:
            self._wait()

    def send_431_response(self) -> None:
        self._stop_waiting()
        self.logger.warning("Request headers too large.")
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-length: 0\r\nconnection: close\r\n\r\n"
        )
        self.transport.close()

    def _wait(self) -> None:
        if self.header_timer is not None or self.transport.is_closing():
            return
        self.header_bytes = 0
        self.waiting.connections[self] = None
        self.header_timer = self.loop.call_later(self.limits.header_timeout, self._timed_out)

    def _stop_waiting(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
        self.waiting.connections.pop(self, None)

    def _timed_out(self) -> None:
        self.header_timer = None
        self.waiting.timed_out += 1
        self.waiting.report()
        self._close()

    def _close(self) -> None:
        self._stop_waiting()
        self.transport.close()
