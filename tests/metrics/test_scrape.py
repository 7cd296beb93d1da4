"""/metrics, /readyz and /healthz of a real server over HTTP, on both databases: counters
move with real SDK calls and real task runs, the database's state is read at scrape time,
and only the allowed clients may read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alibabacloud_dataworks_public20240518 import models
from Tea.exceptions import TeaException

from dwsched import metrics
from dwsched.api.health import parse_access
from dwsched.api.throttle import parse_throttle
from dwsched.clock import SystemClock
from dwsched.domain.models import Status
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from tests.engine.helpers import deploy_due, wait
from tests.metrics.scrape import scrape
from tests.support.factories import SHANGHAI_DAY_MS, instance, project, put
from tests.support.server import running_server

LIST = "ListWorkflowInstances"


def test_sdk_calls_are_counted_by_action_and_code(db_url: str) -> None:
    with running_server(db_url) as live:
        base = f"http://{live.endpoint}"
        p = project(live.store)
        before = scrape(base)
        client = live.sdk()
        request = models.ListWorkflowInstancesRequest(project_id=p.id, biz_date=SHANGHAI_DAY_MS)
        for _ in range(3):
            client.list_workflow_instances(request)
        with pytest.raises(TeaException):
            client.get_workflow_instance(models.GetWorkflowInstanceRequest(id=987_654_321))
        after = scrape(base)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("dwsched_api_requests_total", action=LIST, code="200") == 3
    assert delta("dwsched_api_request_duration_seconds_count", action=LIST) == 3
    assert delta("dwsched_api_request_duration_seconds_bucket", action=LIST, le="+Inf") == 3
    failed = [
        s
        for s in after.samples
        if s.name == "dwsched_api_requests_total"
        and s.labels["action"] == "GetWorkflowInstance"
        and s.labels["code"] != "200"
    ]
    assert (
        sum(s.value for s in failed)
        - sum(
            s.value
            for s in before.samples
            if s.name == "dwsched_api_requests_total"
            and s.labels["action"] == "GetWorkflowInstance"
            and s.labels["code"] != "200"
        )
        == 1
    ), failed
    # The alerting families are there from the start (each series, at zero or at what this
    # test process's earlier tests counted); API calls raise no alert.
    for alert_type in metrics.ALERT_TYPES:
        assert after.has("dwsched_alert_events_total", type=alert_type)
    for channel in metrics.ALERT_CHANNELS:
        assert after.has("dwsched_alert_deliveries_total", channel=channel, outcome="sent")
    assert delta("dwsched_alert_events_total") == 0


def test_a_request_refused_before_its_action_is_known_has_no_action(db_url: str) -> None:
    with running_server(db_url) as live:
        base = f"http://{live.endpoint}"
        before = scrape(base).value("dwsched_api_requests_total", action=metrics.NO_ACTION)
        response = httpx.post(f"{base}/", data={"Action": "NoSuchAction" * 3})
        assert response.status_code == 400
        after = scrape(base)
    assert after.value("dwsched_api_requests_total", action=metrics.NO_ACTION) == before + 1
    assert not any("NoSuchAction" in str(s.labels) for s in after.samples)


def test_throttled_requests_are_counted(db_url: str) -> None:
    throttle = parse_throttle("read=0.01/1,write=off")
    with running_server(db_url, throttle=throttle) as live:
        base = f"http://{live.endpoint}"
        before = scrape(base).value("dwsched_api_throttled_requests_total", action=LIST)
        client = live.sdk()
        p = project(live.store)
        request = models.ListWorkflowInstancesRequest(project_id=p.id, biz_date=SHANGHAI_DAY_MS)
        with pytest.raises(TeaException, match="Throttling"):
            for _ in range(3):
                client.list_workflow_instances(request)
        after = scrape(base)
    assert after.value("dwsched_api_throttled_requests_total", action=LIST) == before + 1
    assert after.has("dwsched_api_requests_total", action=LIST, code="429")


def test_instances_by_status_count_only_the_latest_biz_dates(db_url: str) -> None:
    with running_server(db_url) as live:
        p = project(live.store)
        today = datetime.now(UTC).date()
        recent, old = today - timedelta(days=1), today - timedelta(days=40)
        made = [instance(p.id, biz_day=recent) for _ in range(3)]
        made += [instance(p.id, biz_day=recent, status=Status.FAILURE) for _ in range(2)]
        made += [instance(p.id, biz_day=old) for _ in range(4)]
        put(live.store, made)
        found = scrape(f"http://{live.endpoint}")
    name = "dwsched_workflow_instances"
    assert found.value(name, biz_date=recent.isoformat(), status="Success") == 3
    assert found.value(name, biz_date=recent.isoformat(), status="Failure") == 2
    assert not found.has(name, biz_date=old.isoformat())


def shell(node_id: str, content: str, group: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "name": node_id,
        "script": {"runtime": {"command": "DIDE_SHELL"}, "content": content},
        "outputs": {"nodeOutputs": [{"data": f"{node_id}_{group}_out"}]},
        "runtimeResource": {"resourceGroup": group},
    }


def test_task_runs_and_resource_groups(db_url: str) -> None:
    """Two cycles of a task in a group of one slot: while one runs the other waits, and
    both runs are counted once they end."""
    with running_server(db_url) as live:
        base = f"http://{live.endpoint}"
        group = "metrics_g"
        with live.store.write() as tx:
            tx.resource_groups.set_slots(group, 1, SystemClock().now_ms())
        before = scrape(base)
        deploy_due(live.store, [shell("slow", "sleep 1", group)], "0 0 0/12 * * ?")
        service = Service(live.store, SystemClock(), WorkerSettings(slots=2), tick_s=0.02)
        service.start()
        try:

            def one_runs_one_waits() -> bool:
                now = scrape(base)
                return (
                    now.value("dwsched_running_tasks", resource_group=group) == 1
                    and now.value("dwsched_wait_resource_tasks", resource_group=group) == 1
                )

            wait(one_runs_one_waits, "one running, one waiting for the slot")
            assert scrape(base).value("dwsched_resource_group_slots", resource_group=group) == 1
            runs = "dwsched_task_runs_total"
            wait(
                lambda: (
                    scrape(base).value(runs, type="DIDE_SHELL", outcome="success")
                    == before.value(runs, type="DIDE_SHELL", outcome="success") + 2
                ),
                "both runs counted",
            )
        finally:
            service.stop()
        after = scrape(base)
    count = "dwsched_task_run_duration_seconds_count"
    assert after.value(count, type="DIDE_SHELL") == before.value(count, type="DIDE_SHELL") + 2
    assert after.value("dwsched_wait_resource_tasks", resource_group=group) == 0
    assert after.value("dwsched_workflow_instances", status="Success") == 2
    rounds = "dwsched_engine_round_duration_seconds_count"
    assert after.value(rounds, role="scheduler") > before.value(rounds, role="scheduler")
    assert after.value(rounds, role="worker") > before.value(rounds, role="worker")
    assert after.has("dwsched_scheduler_generation_lag_seconds")


def test_readyz_says_why_a_database_is_not_ready(db_url: str) -> None:
    with running_server(db_url) as live:
        base = f"http://{live.endpoint}"
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
        engine = sa.create_engine(live.store.database.url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
        engine.dispose()
        response = httpx.get(f"{base}/readyz")
        healthz = httpx.get(f"{base}/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "migration" in response.json()["reason"]
    assert "Traceback" not in response.text
    assert healthz.status_code == 200  # alive, only not ready


@pytest.mark.parametrize("backend_only", ["sqlite"])
def test_metrics_are_served_only_to_allowed_clients(tmp_path: Any, backend_only: str) -> None:
    url = f"sqlite:///{tmp_path / 'access.db'}"
    with running_server(url, metrics_access=parse_access("127.0.0.1", "s3cret")) as live:
        base = f"http://{live.endpoint}"
        assert httpx.get(f"{base}/metrics").status_code == 404  # no token
        wrong = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 404
        assert scrape(base, Authorization="Bearer s3cret").has("dwsched_recovered_attempts_total")
        proxied = httpx.get(
            f"{base}/metrics",
            headers={"Authorization": "Bearer s3cret", "X-Forwarded-For": "203.0.113.9"},
        )
        assert proxied.status_code == 404  # through a proxy: never
    with running_server(url, metrics_access=parse_access("10.0.0.0/8")) as live:
        assert httpx.get(f"http://{live.endpoint}/metrics").status_code == 404
