"""The endpoints platforms watch: `/healthz` (the process answers and reaches its
database), `/readyz` (and the database's schema is at head: 503 with a JSON reason
otherwise) and `/metrics` (Prometheus' text format, dwsched.metrics).

Who may read `/metrics` (`MetricsAccess`, docs/metrics.md): clients from the allowed
networks (by default loopback only), never a request that came through a proxy (it carries
X-Forwarded-For, Forwarded or X-Real-IP: a proxy in front of the API must not publish
metrics), and, when a token is set, only with `Authorization: Bearer <token>`. Anyone else
gets 404, as if nothing were there. The database's state is read per scrape with a bound
cost (Store.state_gauges); nothing here reaches a client as a traceback.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dwsched import metrics
from dwsched.clock import Clock
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.gauges import StateGauges, gauge_days
from dwsched.store import Store

log = logging.getLogger("dwsched.health")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = "127.0.0.0/8,::1/128"
ANYONE = "*"
_PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


@dataclass(frozen=True)
class MetricsAccess:
    """Who may read /metrics: clients of `networks` (None: any address), with `token` as a
    bearer token when it is set."""

    networks: tuple[IpNetwork, ...] | None
    token: str | None = None

    def __str__(self) -> str:
        """The networks as `parse_access` reads them."""
        return ANYONE if self.networks is None else ",".join(map(str, self.networks))

    def allows(self, request: Request) -> bool:
        if any(name in request.headers for name in _PROXY_HEADERS):
            return False
        if self.networks is not None:
            try:
                address = ipaddress.ip_address(request.client.host if request.client else "")
            except ValueError:
                return False
            if not any(address in network for network in self.networks):
                return False
        if self.token is not None:
            given = request.headers.get("authorization", "")
            return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())
        return True


DEFAULT_ACCESS = MetricsAccess(tuple(ipaddress.ip_network(n) for n in LOOPBACK.split(",")))


def parse_access(networks: str, token: str | None = None) -> MetricsAccess:
    """`127.0.0.0/8,10.0.0.0/8` (addresses or networks, comma-separated) or `*` (any
    address); `token` (empty: none) required as a bearer token."""
    items = [item.strip() for item in networks.split(",") if item.strip()]
    if not items:
        raise InvalidArgument("--metrics-allow", "Give at least one network, or * for any.")
    parsed: tuple[IpNetwork, ...] | None = None
    if items != [ANYONE]:
        try:
            parsed = tuple(ipaddress.ip_network(item, strict=False) for item in items)
        except ValueError as exc:
            raise InvalidArgument(
                "--metrics-allow", f"The networks {networks!r} are not valid: {exc}."
            ) from exc
    return MetricsAccess(parsed, token or None)


def _not_found() -> Response:
    return JSONResponse({"status": "not found"}, 404)


def health_routes(
    store: Store,
    clock: Clock,
    access: MetricsAccess | None = DEFAULT_ACCESS,
    state: bool = True,
) -> list[Route]:
    """/healthz, /readyz and, unless `access` is None (served elsewhere), /metrics; with
    `state`, a scrape includes the database's state (one process per server says it)."""

    async def healthz(_request: Request) -> Response:
        store.ping()
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(_request: Request) -> Response:
        try:
            at_head = await run_in_threadpool(store.at_head)
        except Exception as exc:
            log.warning("readyz database_unreachable error=%s", type(exc).__name__)
            return JSONResponse(
                {"status": "unavailable", "reason": "The database cannot be reached."}, 503
            )
        if not at_head:
            reason = "The database's schema is not at the newest migration (dwsched db upgrade)."
            return JSONResponse({"status": "unavailable", "reason": reason}, 503)
        return JSONResponse({"status": "ready"})

    read_state: Callable[[], StateGauges] | None = None
    if state:

        def read_state() -> StateGauges:
            return store.state_gauges(*gauge_days(clock.now_ms()))

    async def scrape(request: Request) -> Response:
        if access is None or not access.allows(request):
            return _not_found()
        try:
            body = await run_in_threadpool(metrics.exposition, read_state)
        except Exception:
            log.exception("metrics_scrape_failed")
            return JSONResponse({"status": "error", "reason": "The scrape failed."}, 500)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if access is not None:
        routes.append(Route("/metrics", scrape, methods=["GET"]))
    return routes
