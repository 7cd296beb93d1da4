"""A live server in this process (uvicorn, real HTTP) and the official SDK pointed at it.

Fixture `live` (one server per test module and backend), for the conftests of the
directories whose tests talk to a server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from alibabacloud_dataworks_public20240518.client import Client as SdkClient
from alibabacloud_tea_openapi.models import Config

from dwsched.api.health import DEFAULT_ACCESS, MetricsAccess
from dwsched.api.throttle import ThrottleSettings
from dwsched.clock import SystemClock
from dwsched.config import DEFAULT_SECRET_KEY_DIR
from dwsched.runtime.keys import create_key, default_key_file, unlock
from dwsched.runtime.server import build_app
from dwsched.store import Store
from tests.support.databases import BACKENDS, new_database_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    store: Store
    endpoint: str
    key_id: str
    secret: str
    clients: dict[str, SdkClient] = field(default_factory=dict)

    def sdk(
        self, algorithm: str = "v3", key_id: str | None = None, secret: str | None = None
    ) -> SdkClient:
        """The official SDK pointed at this server; `v2` selects the v1 HMAC-SHA1 signature."""
        config = Config(
            access_key_id=key_id or self.key_id,
            access_key_secret=secret or self.secret,
            endpoint=self.endpoint,
            protocol="http",
        )
        if algorithm == "v2":
            config.signature_algorithm = "v2"
        return SdkClient(config)


@contextlib.contextmanager
def running_server(
    url: str,
    default_timezone: str = "Asia/Shanghai",
    sealed: bool = True,
    forwarded_allow_ips: str = "",
    server_key: Callable[[Store], Store] | None = None,
    metrics_access: MetricsAccess | None = DEFAULT_ACCESS,
    throttle: ThrottleSettings | None = None,
) -> Iterator[LiveServer]:
    """A server on `url` in this process, and a key for it. `sealed` false: no server key
    (its key's secret stored as given); `server_key` gives the store its key instead;
    `metrics_access`: who may read its /metrics; `throttle`: its request limits."""
    store = Store.open(url)
    # As `dwsched serve` runs: AccessKeySecrets sealed with the server key of the key file
    # the CLI finds too (next to a SQLite file; the user's config directory otherwise).
    if server_key is not None:
        store = server_key(store)
    elif sealed:
        key_file = default_key_file(url, Path(DEFAULT_SECRET_KEY_DIR).expanduser())
        store = unlock(store, None, key_file).store
    port = free_port()
    # as `dwsched serve`: RPC, web console, health and metrics
    app = build_app(store, default_timezone, throttle, metrics_access=metrics_access)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            # as `dwsched serve`: X-Forwarded-* believed only from --forwarded-allow-ips
            proxy_headers=bool(forwarded_allow_ips),
            forwarded_allow_ips=forwarded_allow_ips,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    key = create_key(store, "test", SystemClock().now_ms())
    try:
        yield LiveServer(store, f"127.0.0.1:{port}", key.id, key.secret)
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per test module and backend; tests isolate themselves by workspace."""
    urls = new_database_url(request.param, tmp_path_factory.mktemp("live"))
    url = next(urls)
    try:
        with running_server(url) as server:
            yield server
    finally:
        urls.close()
