"""One JSON POST made on a user's behalf, under the outbound guard.

The URL is checked (`guard.check`: scheme, credentials, every resolved address against the
policy) and the TCP connection is made to one of the addresses the guard checked, never to
a second resolution of the name: httpcore's network backend is replaced by one pinned to
those addresses, while the Host header, TLS SNI and certificate check keep the URL's host
name. Nothing is retried, no redirect is followed, no proxy from the environment is used.
Every socket operation waits at most what is left of the total time bound, and at most
`max_response_bytes` of the answer are read.
"""

from __future__ import annotations

import functools
import ssl
import time
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpcore

from dwsched.engine.notify.errors import Undeliverable
from dwsched.engine.notify.guard import Destination, check
from dwsched.engine.notify.settings import NotifySettings

RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class Reply:
    """A 2xx answer: its status and at most `max_response_bytes` of its body."""

    status: int
    body: bytes
    cut: bool


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self, limit: float | None = None) -> float:
        """Seconds left, at most `limit`; raises a timeout when none are left."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the total time bound passed")
        return left if limit is None else min(left, limit)


class _BoundedStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most what is left of the deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._deadline.left(timeout))
        return _BoundedStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the guard's checked addresses (in order, the first that answers),
    whatever host name httpcore asks for."""

    def __init__(self, destination: Destination, deadline: _Deadline, connect_s: float) -> None:
        self._destination = destination
        self._deadline = deadline
        self._connect_s = connect_s
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception = httpcore.ConnectError("no address to connect to")
        for address in self._destination.addresses:
            try:
                stream = self._backend.connect_tcp(
                    address, port, self._deadline.left(self._connect_s), None, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next checked address may answer, within the deadline
                continue
            return _BoundedStream(stream, self._deadline)
        raise failure


def post_json(
    url: str, body: bytes, settings: NotifySettings, headers: Sequence[tuple[str, str]] = ()
) -> Reply:
    """POST `body` to `url` under the guard and the bounds of `settings`, with `headers`
    besides the standard ones; a 2xx `Reply`, or `Undeliverable` saying why not and whether
    a retry may help."""
    if len(body) > settings.max_request_bytes:
        raise Undeliverable(
            f"the body is {len(body)} bytes, over the {settings.max_request_bytes}-byte limit"
        )
    deadline = _Deadline(settings.total_timeout_s)
    destination = check(url, settings.guard, settings.resolve, settings.connect_timeout_s)
    host = destination.url.host
    try:
        reply = _exchange(destination, body, settings, deadline, headers)
    except httpcore.TimeoutException:
        detail = f"{host} did not answer within {deadline.seconds:g}s"
        raise Undeliverable(detail, retryable=True) from None
    except httpcore.ConnectError as exc:
        raise _connect_failure(host, exc) from None
    except (httpcore.NetworkError, httpcore.RemoteProtocolError) as exc:
        detail = f"{host} broke off the exchange ({_short(exc)})"
        raise Undeliverable(detail, retryable=True) from None
    except (httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as exc:
        raise Undeliverable(f"the request to {host} could not be made ({_short(exc)})") from None
    return _judged(host, reply)


def _exchange(
    destination: Destination,
    body: bytes,
    settings: NotifySettings,
    deadline: _Deadline,
    extra: Sequence[tuple[str, str]],
) -> Reply:
    url = destination.url
    backend = _PinnedBackend(destination, deadline, settings.connect_timeout_s)
    headers = [
        (b"Content-Type", b"application/json; charset=utf-8"),
        (b"User-Agent", settings.user_agent.encode("ascii")),
        (b"Accept", b"application/json, text/plain, */*"),
        *((name.encode("ascii"), value.encode("ascii")) for name, value in extra),
    ]
    target = httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )
    timeouts = {key: deadline.seconds for key in ("connect", "read", "write", "pool")}
    with (
        httpcore.ConnectionPool(
            ssl_context=_tls_context(), network_backend=backend, retries=0
        ) as pool,
        pool.stream(
            "POST", target, headers=headers, content=body, extensions={"timeout": timeouts}
        ) as response,
    ):
        if not 200 <= response.status < 300:
            return Reply(response.status, b"", False)
        data, cut = _read_capped(response.iter_stream(), settings.max_response_bytes)
        return Reply(response.status, data, cut)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The system's trust store, verifying host names; loaded once (it takes milliseconds)."""
    return ssl.create_default_context()


def _read_capped(chunks: Iterable[bytes], limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body, and whether more were left unread."""
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > limit:
            return bytes(data[:limit]), True
    return bytes(data), False


def _judged(host: str, reply: Reply) -> Reply:
    status = reply.status
    if 200 <= status < 300:
        return reply
    if 300 <= status < 400:
        raise Undeliverable(f"{host} answered HTTP {status}, a redirect, which is not followed")
    retry = status >= 500 or status in RETRYABLE_4XX
    raise Undeliverable(f"{host} answered HTTP {status}", retryable=retry)


def _connect_failure(host: str, exc: httpcore.ConnectError) -> Undeliverable:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLError):
        return Undeliverable(f"TLS with {host} failed ({_short(cause)})")
    return Undeliverable(f"could not connect to {host} ({_short(exc)})", retryable=True)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]
