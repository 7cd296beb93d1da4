"""Shared fixtures: databases on both dialects, a live server, the official SDK, factories.

PostgreSQL tests run against DWSCHED_TEST_POSTGRES_URL (default: the local server). When it
is unreachable they are skipped, loudly, unless DWSCHED_REQUIRE_POSTGRES=1 (as in CI), when
they fail.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from alibabacloud_dataworks_public20240518.client import Client as SdkClient
from alibabacloud_tea_openapi.models import Config

from dwsched.clock import SystemClock
from dwsched.config import DEFAULT_SECRET_KEY_DIR
from dwsched.domain.models import (
    EnvType,
    InstanceType,
    NewProject,
    Project,
    Status,
    Tag,
    WorkflowInstance,
)
from dwsched.runtime.keys import create_key, default_key_file, unlock
from dwsched.runtime.server import build_app
from dwsched.store import Store

PG_URL = os.environ.get(
    "DWSCHED_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("DWSCHED_REQUIRE_POSTGRES") == "1"
_pg_state: dict[str, Any] = {}
PG_SKIP = f"PostgreSQL unreachable at {PG_URL}"


def postgres_reachable() -> bool:
    if "ok" not in _pg_state:
        try:
            engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            engine.dispose()
            _pg_state["ok"] = True
        except Exception as exc:
            _pg_state["ok"] = False
            _pg_state["why"] = str(exc).splitlines()[0]
    return bool(_pg_state["ok"])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not Path("/usr/bin/chromium").exists():
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            "/usr/bin/chromium is missing: the web console's browser tests were skipped. "
            "Install Debian's chromium package (.ci/run does).",
            red=True,
        )
    # Read from the skip reports, which reach this process from pytest-xdist's workers too.
    skipped = terminalreporter.stats.get("skipped", [])
    if any(PG_SKIP in str(report.longrepr) for report in skipped):
        terminalreporter.write_sep("!", "POSTGRESQL TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            f"{PG_SKIP}: every PostgreSQL test was skipped. Start it or set "
            "DWSCHED_TEST_POSTGRES_URL.",
            red=True,
        )


def new_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on `backend`, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'dwsched.db'}"
        return
    if not postgres_reachable():
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but unreachable at {PG_URL}: {_pg_state['why']}")
        pytest.skip(f"{PG_SKIP} ({_pg_state['why']})")
    name = f"dwsched_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    base = sa.engine.make_url(PG_URL)
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from new_database_url(request.param, tmp_path)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


# Factories


_ids = itertools.count(1)
DAY = date(2025, 3, 31)  # BizDate 1743350400000 in Asia/Shanghai
SHANGHAI_DAY_MS = 1743350400000


def instance(project_id: int, **overrides: Any) -> WorkflowInstance:
    """A plausible Success instance on DAY; any field may be overridden."""
    n = next(_ids)
    base = WorkflowInstance(
        id=n,
        project_id=project_id,
        env_type=EnvType.PROD,
        biz_day=DAY,
        type=InstanceType.NORMAL,
        status=Status.SUCCESS,
        workflow_id=100 + n % 7,
        workflow_task_instance_id=900_000 + n,
        unified_workflow_instance_id=n,
        name=f"wf_{n}",
        owner="1000",
        create_user="1000",
        modify_user="1000",
        trigger_time=SHANGHAI_DAY_MS + 86_400_000 + 2 * 3_600_000,
        started_time=SHANGHAI_DAY_MS + 86_400_000 + 2 * 3_600_000 + n * 1000,
        finished_time=SHANGHAI_DAY_MS + 86_400_000 + 3 * 3_600_000 + n * 1000,
        create_time=SHANGHAI_DAY_MS + 86_400_000,
        modify_time=SHANGHAI_DAY_MS + 86_400_000 + 3 * 3_600_000,
        workflow_parameters="",
        tags=(),
    )
    return replace(base, **overrides)


def project(store: Store, name: str | None = None, tz: str = "Asia/Shanghai") -> Project:
    with store.write() as tx:
        return tx.projects.create(
            NewProject(name=name or f"p_{uuid.uuid4().hex[:10]}", timezone=tz),
            SystemClock().now_ms(),
        )


def put(store: Store, items: list[WorkflowInstance]) -> None:
    store.import_instances(items, [], replace=False, now_ms=SystemClock().now_ms())


def tags(*pairs: str) -> tuple[Tag, ...]:
    return tuple(Tag(*p.split(":", 1)) for p in pairs)


# A live server


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
) -> Iterator[LiveServer]:
    """A server on `url` in this process, and a key for it. `sealed` false: no server key
    (its key's secret stored as given); `server_key` gives the store its key instead."""
    store = Store.open(url)
    # As `dwsched serve` runs: AccessKeySecrets sealed with the server key of the key file
    # the CLI finds too (next to a SQLite file; the user's config directory otherwise).
    if server_key is not None:
        store = server_key(store)
    elif sealed:
        key_file = default_key_file(url, Path(DEFAULT_SECRET_KEY_DIR).expanduser())
        store = unlock(store, None, key_file).store
    port = free_port()
    app = build_app(store, default_timezone)  # as `dwsched serve`: RPC and web console
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
