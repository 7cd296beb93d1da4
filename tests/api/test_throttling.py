"""Throttling through the official SDK, on SQLite and PostgreSQL: a key over its limit gets
429 Throttling.User with `x-acs-retry-after` (the SDK's ThrottlingException), per key and
per action class, with one budget shared by two servers on one database; and the
`--throttle` setting's parsing.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from alibabacloud_dataworks_public20240518 import models
from alibabacloud_dataworks_public20240518.client import Client as SdkClient
from alibabacloud_tea_openapi.exceptions import ThrottlingException
from click.testing import CliRunner

from dwsched.api.app import create_app
from dwsched.api.throttle import Limit, Throttle, ThrottleSettings, lease_size, parse_throttle
from dwsched.cli import cli
from dwsched.clock import Clock, ManualClock, SystemClock
from dwsched.domain.errors import InvalidArgument
from dwsched.runtime.keys import create_key
from dwsched.store import Store
from tests.support.server import LiveServer, free_port

DEFAULTS = ThrottleSettings({"read": Limit(50, 100), "write": Limit(10, 20)})


@contextlib.contextmanager
def throttled_server(url: str, limits: str, clock: Clock | None = None) -> Iterator[LiveServer]:
    """A live server (as tests.support.server's `running_server`) throttled by `limits`, with a key.
    `clock`: the server's (a ManualClock stops the buckets' refill, whatever the machine's
    speed); the system's by default."""
    store = Store.open(url)
    settings = parse_throttle(limits)
    assert settings is not None
    app = create_app(store, clock or SystemClock(), "Asia/Shanghai", Throttle(store, settings))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    key = create_key(store, "test", SystemClock().now_ms())
    try:
        yield LiveServer(store, f"127.0.0.1:{port}", key.id, key.secret)
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


def write(sdk: SdkClient) -> None:
    sdk.create_project(models.CreateProjectRequest(name=f"t_{uuid.uuid4().hex[:12]}"))


def read(sdk: SdkClient) -> None:
    sdk.list_projects(models.ListProjectsRequest(page_size=1))


def until_throttled(call: Callable[[], None], limit: int = 50) -> tuple[int, ThrottlingException]:
    """Call until throttled: the calls that succeeded and the ThrottlingException."""
    for admitted in range(limit):
        try:
            call()
        except ThrottlingException as exc:
            return admitted, exc
    raise AssertionError(f"{limit} calls in a row were not throttled")


def test_over_the_limit_is_throttling_user_with_retry_after(db_url: str) -> None:
    # The server's clock stands still unless advanced: no token refills behind the test's back.
    clock = ManualClock(SystemClock().now_ms())
    with throttled_server(db_url, "write=2/3", clock) as live:
        sdk = live.sdk()
        admitted, exc = until_throttled(lambda: write(sdk))
        assert admitted == 3  # the burst
        assert exc.code == "Throttling.User"
        assert exc.status_code == 429
        assert "flow control" in str(exc.message)
        assert exc.retry_after == 500  # one token refills in 1/rate s
        # Still throttled just before the token is due (from the process's memory), then
        # admitted once it is.
        clock.advance(499)
        with pytest.raises(ThrottlingException):
            write(sdk)
        clock.advance(1)
        write(sdk)
        with pytest.raises(ThrottlingException):
            write(sdk)


def test_the_burst_refills_at_the_rate_on_the_systems_clock(db_url: str) -> None:
    with throttled_server(db_url, "write=2/3") as live:
        sdk = live.sdk()
        start = time.monotonic()
        admitted, exc = until_throttled(lambda: write(sdk))
        elapsed = time.monotonic() - start
        assert 3 <= admitted <= 3 + 2 * elapsed + 1
        assert 0 < exc.retry_after <= 500
        time.sleep(exc.retry_after / 1000)
        write(sdk)


def test_reads_and_writes_have_separate_budgets(db_url: str) -> None:
    """On SQLite, reads are served on the event loop until their lease needs the database:
    the request then moves to a thread without being authenticated twice (no NonceUsed)."""
    with throttled_server(db_url, "read=2/4,write=2/3") as live:
        sdk = live.sdk()
        until_throttled(lambda: write(sdk))
        read(sdk)
        admitted, exc = until_throttled(lambda: read(sdk))
        assert admitted >= 3
        assert exc.code == "Throttling.User"


def test_keys_have_separate_budgets(db_url: str) -> None:
    with throttled_server(db_url, "write=2/3", ManualClock(SystemClock().now_ms())) as live:
        until_throttled(lambda: write(live.sdk()))
        other = create_key(live.store, "other", SystemClock().now_ms())
        write(live.sdk(key_id=other.id, secret=other.secret))
        with pytest.raises(ThrottlingException):
            write(live.sdk())


def test_servers_on_one_database_share_one_budget(db_url: str) -> None:
    """Two servers (as two processes would) with their own throttles on one database admit
    at most burst + rate * elapsed between them; apart they would admit twice the burst.
    Each client calls until it has been throttled (and for at least `seconds`), however
    slowly the machine serves."""
    rate, burst, seconds = 4, 20, 1.5
    with (
        throttled_server(db_url, f"read={rate}/{burst}") as first,
        throttled_server(db_url, f"read={rate}/{burst}") as second,
    ):
        # Both servers sign with the same key (keys live in the shared database).
        clients = [first.sdk(), second.sdk(key_id=first.key_id, secret=first.secret)]
        admitted = [0, 0]
        throttled = [False, False]
        start = time.monotonic()
        # One call on each server first, inside the burst: both serve, whichever thread
        # then wins the race for each refilled token.
        for index in (1, 0):
            read(clients[index])
            admitted[index] += 1

        def hammer(index: int) -> None:
            while not throttled[index] or time.monotonic() - start < seconds:
                assert time.monotonic() - start < 60, "never throttled"
                try:
                    read(clients[index])
                    admitted[index] += 1
                except ThrottlingException:
                    throttled[index] = True

        threads = [threading.Thread(target=hammer, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
    total = sum(admitted)
    assert all(throttled)
    assert burst <= total <= burst + rate * elapsed + 1, (admitted, elapsed)
    assert all(admitted), admitted


# The setting


def test_parse_throttle() -> None:
    assert parse_throttle("off") is None
    assert parse_throttle(" OFF ") is None
    assert parse_throttle("read=50/100,write=10/20") == DEFAULTS
    assert parse_throttle("write=2/3", DEFAULTS) == ThrottleSettings(
        {"read": Limit(50, 100), "write": Limit(2, 3)}
    )
    assert parse_throttle("read=0.5/1, write=off", DEFAULTS) == ThrottleSettings(
        {"read": Limit(0.5, 1)}
    )
    assert parse_throttle("read=off,write=off", DEFAULTS) is None
    assert str(DEFAULTS) == "read=50/100,write=10/20"
    assert parse_throttle(str(DEFAULTS)) == DEFAULTS
    tiny = ThrottleSettings({"write": Limit(1e-05, 1)})  # as `serve --workers` passes it on
    assert str(tiny) == "read=off,write=1e-05/1"
    assert parse_throttle(str(tiny)) == tiny
    huge = ThrottleSettings({"read": Limit(1.5e20, 7), "write": Limit(0.25, 1)})
    assert parse_throttle(str(huge)) == huge
    assert lease_size(3) == 1 and lease_size(100) == 25


@pytest.mark.parametrize(
    "text", ["nonsense", "", "read=50", "read=0/10", "read=5/0", "admin=1/1", "read=1/1,read=2/2"]
)
def test_parse_throttle_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_throttle(text)
    assert "CLASS=RATE/BURST" in caught.value.message


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_bad_throttle_is_a_clean_click_error(command: str, tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path / 'never.db'}"
    runner = CliRunner()
    for args, env in [
        ([command, "--db", db, "--throttle", "nonsense"], {}),
        ([command, "--db", db], {"DWSCHED_THROTTLE": "write=fast"}),
    ]:
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 2, result.output
        assert "Invalid value for '--throttle'" in result.output
        assert "CLASS=RATE/BURST" in result.output
        assert "Traceback" not in result.output
        assert not (tmp_path / "never.db").exists()  # refused before opening anything
