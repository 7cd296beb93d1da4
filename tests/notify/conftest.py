"""Fixtures for the delivery tests: a notice, real HTTP and SMTP receivers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from dwsched.domain.notices import Notice, NoticeFacts, compose
from tests.notify.receivers import HttpReceiver, SmtpReceiver

CONSOLE = "http://dwsched.example.test/console/#/instances/7001"


@pytest.fixture
def notice() -> Notice:
    facts = NoticeFacts(
        rule_name="nightly failures",
        trigger="Error",
        workspace="growth",
        workflow="orders_chain",
        task_name="extract_orders",
        occurred_at=datetime(2024, 5, 18, 1, 2, 3, tzinfo=UTC),
        zone="Asia/Shanghai",
        workspace_id=1,
        workflow_id=42,
        task_id=4201,
        workflow_instance_id=7001,
        task_instance_id=9001,
        biz_date=date(2024, 5, 17),
        status="Failure",
        run_number=2,
        started_at=datetime(2024, 5, 18, 1, 0, 0, tzinfo=UTC),
        finished_at=datetime(2024, 5, 18, 1, 2, 3, tzinfo=UTC),
        log_tail=("loading orders", "ERROR: relation orders does not exist"),
    )
    return compose(facts, CONSOLE)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def alias_receiver() -> Iterator[HttpReceiver]:
    """A receiver on 127.0.0.2, a loopback alias, for the tests that deny it."""
    server = HttpReceiver(host="127.0.0.2").start()
    yield server
    server.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    server = SmtpReceiver().start()
    yield server
    server.stop()
