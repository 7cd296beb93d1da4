"""The HTTP application: one RPC route, the health and metrics endpoints (api.health), and
the error envelope.

Per request: read the body, find the action, authenticate, parse parameters, call one
handler, serialise; then count it (dwsched.metrics: its action, HTTP status and time). Its
RequestId is set in the log context (dwsched.logs) for every line logged meanwhile. Every
`DwschedError` becomes a DataWorks error envelope; anything else is logged with its
traceback under the RequestId and answered with a bare 500. A client's
own faults (leaving before its body is sent, sending it too slowly) are one INFO line.

The client's address and scheme are the ASGI scope's: the peer's, unless uvicorn was told
to believe a proxy's X-Forwarded-For / X-Forwarded-Proto (runtime/server.py). Nothing here
reads those headers itself.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dwsched import metrics
from dwsched.api import registry
from dwsched.api.auth import SignedRequest, authenticate, signed_by_headers
from dwsched.api.calls import Calls, Who
from dwsched.api.errors import INTERNAL_ERROR, envelope, error_body
from dwsched.api.health import DEFAULT_ACCESS, MetricsAccess, health_routes
from dwsched.api.throttle import Throttle
from dwsched.clock import Clock
from dwsched.domain.errors import DwschedError, InvalidArgument, StoreBusy, Throttled
from dwsched.logs import REQUEST_ID
from dwsched.store import Store

log = logging.getLogger("dwsched.api")
JSON = "application/json;charset=utf-8"
MAX_BODY = 1024 * 1024
BODY_TIMEOUT = 30.0  # seconds for a whole body to arrive, unless the app is told otherwise
PARAMETER_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_encode = msgspec.json.Encoder().encode


def _json(status: int, body: dict[str, Any], request_id: str) -> Response:
    return Response(_encode(body), status, {"x-acs-request-id": request_id}, media_type=JSON)


class _BodyTimeout(Exception):
    """The body did not arrive in time."""


async def _read_body(request: Request, timeout: float) -> bytes:
    """The body, refused past MAX_BODY before it is all in memory, or if it has not all
    arrived within `timeout` seconds (_BodyTimeout). ClientDisconnect: the client left."""
    too_large = InvalidArgument("body", f"The request body is larger than {MAX_BODY} bytes.")
    declared = request.headers.get("content-length", "0")
    if not declared.isascii() or not declared.isdigit() or int(declared) > MAX_BODY:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError as exc:
        raise _BodyTimeout from exc
    return b"".join(chunks)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _unique(pairs: list[tuple[str, str]], where: str) -> dict[str, str]:
    """Parameters by name; a name given twice, or not a plain name, is refused."""
    found: dict[str, str] = {}
    for name, value in pairs:
        if not PARAMETER_NAME.fullmatch(name):
            # Signatures canonicalise names unencoded: `a=1&b` must never be one name.
            raise InvalidArgument(name[:64], f"The parameter name {name[:64]!r} is not valid.")
        if name in found:
            raise InvalidArgument(name, f"The parameter {name} is given twice in the {where}.")
        found[name] = value
    return found


def _form(request: Request, body: bytes) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if not body or not content_type.startswith("application/x-www-form-urlencoded"):
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument("body", "The form body is not valid UTF-8.") from exc
    return _unique(parse_qsl(text, keep_blank_values=True), "body")


def _headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.headers.raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


class _Seen:
    """What the request path learnt of a request, for its metrics."""

    __slots__ = ("action",)

    def __init__(self) -> None:
        self.action = metrics.NO_ACTION


class _Offload(Exception):
    """This request must be served on a worker thread (it writes, or would wait).
    `access_key_id`: the request is authenticated already (its nonce is spent)."""

    def __init__(self, access_key_id: str | None = None) -> None:
        super().__init__()
        self.access_key_id = access_key_id


class RpcEndpoint:
    """The RPC route. On SQLite, reads are served on the event loop (each statement is
    short, and WAL readers never wait); writes, and reads whose nonce would queue behind
    another writer (an import), move to a worker thread so that the loop never stalls. On
    PostgreSQL every request runs on a worker thread (each statement is a network round
    trip)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        default_timezone: str,
        throttle: Throttle | None = None,
        calls: Calls | None = None,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        self.store = store
        self.clock = clock
        self.inline = store.is_sqlite
        self.throttle = throttle
        self.calls = calls or Calls(store, clock, default_timezone)
        self.body_timeout = body_timeout

    async def endpoint(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = str(uuid.uuid4()).upper()
        REQUEST_ID.set(request_id)  # this request's context: its task and worker thread
        seen = _Seen()
        response = await self._respond(request, request_id, seen)
        metrics.api_request(seen.action, response.status_code, time.perf_counter() - started)
        return response

    async def _respond(self, request: Request, request_id: str, seen: _Seen) -> Response:
        try:
            body = await _read_body(request, self.body_timeout)
            authenticated = None
            if self.inline:
                try:
                    return self._handle(request, body, request_id, seen, inline=True)
                except _Offload as offload:
                    authenticated = offload.access_key_id
            return await run_in_threadpool(
                self._handle, request, body, request_id, seen, False, authenticated
            )
        except DwschedError as error:
            if isinstance(error, Throttled):
                metrics.api_throttled(seen.action)
            status, error_json, extra = error_body(request_id, error)
            response = _json(status, error_json, request_id)
            response.headers.update(extra)
            return response
        except ClientDisconnect:
            # Not answered: nobody is there to read it.
            log.info(
                "client_disconnected request_id=%s path=%s client=%s",
                request_id,
                request.url.path,
                _client(request),
            )
            return Response(status_code=400)
        except _BodyTimeout:
            log.info(
                "body_timeout request_id=%s path=%s client=%s",
                request_id,
                request.url.path,
                _client(request),
            )
            message = f"The request body did not arrive within {self.body_timeout:g} seconds."
            envelope_408 = envelope(request_id, 408, "RequestTimeout", message)
            return _json(408, envelope_408, request_id)
        except Exception:
            log.exception("internal_error request_id=%s path=%s", request_id, request.url.path)
            status, code, message = INTERNAL_ERROR
            return _json(status, envelope(request_id, status, code, message), request_id)

    def _handle(
        self,
        request: Request,
        body: bytes,
        request_id: str,
        seen: _Seen,
        inline: bool = False,
        authenticated: str | None = None,
    ) -> Response:
        """Serve one request. `inline` (on the event loop): only reads that need not wait
        for a lock; anything else raises _Offload to be served on a worker thread.
        `authenticated`: the key that signed it, verified inline before the offload."""
        headers = _headers(request)
        query = _unique(request.query_params.multi_items(), "query string")
        form = _form(request, body)
        for name in query.keys() & form.keys():
            raise InvalidArgument(
                name, f"The parameter {name} is given both in the query string and the body."
            )
        params = {**query, **form}
        # The action comes from what the request's signature covers: the signed x-acs-*
        # headers for ACS3, the signed parameters for the v1 signature.
        if signed_by_headers(headers, query):
            action, version = headers.get("x-acs-action"), headers.get("x-acs-version")
        else:
            action, version = params.get("Action"), params.get("Version")
        spec = registry.lookup(action, version)
        seen.action = spec.name
        if inline and not spec.reads:
            raise _Offload
        now_ms = self.clock.now_ms()
        signed = SignedRequest(request.method, request.url.path, query, headers, body, form)
        try:
            access_key_id = authenticated or authenticate(
                self.store, signed, now_ms, wait=not inline
            )
        except StoreBusy as exc:
            if inline:
                raise _Offload from exc
            raise
        if self.throttle is not None:
            try:
                self.throttle.admit(access_key_id, spec.throttle, now_ms, wait=not inline)
            except StoreBusy as exc:
                if inline:  # the lease needs the database; the nonce is spent already
                    raise _Offload(access_key_id) from exc
                raise
        result = self.calls.run(
            spec.handler,
            spec.name,
            params,
            Who(access_key_id),
            _client(request),
            request.url.scheme == "https",
            request_id,
            now_ms,
        )
        result["RequestId"] = request_id
        return _json(200, result, request_id)


def create_app(
    store: Store,
    clock: Clock,
    default_timezone: str,
    throttle: Throttle | None = None,
    calls: Calls | None = None,
    routes: Sequence[BaseRoute] = (),
    body_timeout: float = BODY_TIMEOUT,
    metrics_access: MetricsAccess | None = DEFAULT_ACCESS,
) -> Starlette:
    """The app; `throttle` None serves every request unthrottled. `calls`: the executor of
    actions, when shared with other routes (`routes`: the web console's). `body_timeout`:
    seconds a request's body may take to arrive (then 408 RequestTimeout).
    `metrics_access`: who may read /metrics here (None: it is served on a listener of its
    own, runtime.server)."""
    rpc = RpcEndpoint(store, clock, default_timezone, throttle, calls, body_timeout)

    async def not_served(request: Request, exc: Exception) -> Response:
        request_id = str(uuid.uuid4()).upper()
        status = getattr(exc, "status_code", 404)
        message = f"{request.method} {request.url.path} is not served: use POST / or GET /."
        code = "InvalidAction.NotFound" if status == 404 else "UnsupportedHTTPMethod"
        return _json(status, envelope(request_id, status, code, message), request_id)

    return Starlette(
        routes=[
            Route("/", rpc.endpoint, methods=["GET", "POST"]),
            *health_routes(store, clock, metrics_access),
            *routes,
        ],
        exception_handlers={404: not_served, 405: not_served},
    )
