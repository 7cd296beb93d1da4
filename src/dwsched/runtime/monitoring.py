"""How a process is watched: its log format, who may read its metrics and where they are
served (docs/metrics.md).

`/metrics` is served on the API's port by default, to loopback clients only
(api.health.MetricsAccess). With `listen`, it is served on a listener of its own instead
(with /healthz and /readyz): the only way `dwsched scheduler` and `dwsched worker`, which
have no API port, expose theirs. `serve --workers N` records every process's values in one
directory per server (`MetricsDirectory`), which a scrape in any of them adds up.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from dwsched import logs, metrics
from dwsched.api.health import DEFAULT_ACCESS, MetricsAccess, health_routes
from dwsched.clock import SystemClock
from dwsched.domain.errors import InvalidArgument
from dwsched.store import Store


@dataclass(frozen=True)
class Monitoring:
    """`log_format`: text or json (dwsched.logs); `access`: who may read /metrics;
    `listen`: (host, port) of a listener of its own for it (None: the API's port, and no
    endpoint at all for the engine's roles run apart)."""

    log_format: str = logs.TEXT
    access: MetricsAccess = DEFAULT_ACCESS
    listen: tuple[str, int] | None = None

    @property
    def api_access(self) -> MetricsAccess | None:
        """Who may read /metrics on the API's port (None: it is not served there)."""
        return None if self.listen is not None else self.access


DEFAULT_MONITORING = Monitoring()


def parse_listen(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` (`[::1]:9765` for IPv6) → (host, port); empty: None."""
    text = text.strip()
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(
            "--metrics-listen", f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9765)."
        )
    return host, int(port)


class MetricsListener:
    """/metrics, /healthz and /readyz on a port of their own, served by a thread of this
    process; `state`: a scrape includes the database's state (one process per server)."""

    def __init__(self, store: Store, monitoring: Monitoring, state: bool) -> None:
        assert monitoring.listen is not None
        host, port = monitoring.listen
        app = Starlette(routes=health_routes(store, SystemClock(), monitoring.access, state))
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise InvalidArgument(
                "--metrics-listen", f"Cannot listen on {host}:{port} for metrics: {exc}."
            ) from exc
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="dwsched-metrics",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


class MetricsDirectory:
    """The directory the processes of one `serve --workers N` record their metrics in:
    made empty for this server, removed as it stops."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="dwsched-metrics-")
        metrics.use_directory(self.path)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
