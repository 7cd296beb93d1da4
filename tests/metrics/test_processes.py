"""Metrics of real `dwsched` processes: two server processes of one `serve --workers 2` add
up in every scrape, whichever answers; `--metrics-listen` moves /metrics to a listener of
its own (the only one of `dwsched scheduler`); `--log-format json` gives one JSON object a
line, with the request id of the request a line was logged for."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
from alibabacloud_dataworks_public20240518 import models

from tests.cli.helpers import dwsched_process, invoke, ok, sdk
from tests.engine.helpers import wait
from tests.metrics.scrape import scrape
from tests.support.factories import SHANGHAI_DAY_MS
from tests.support.server import free_port

LIST = "ListWorkflowInstances"


def _recording_pids(server_pid: int) -> set[int]:
    """The server processes (children of `server_pid`) that have recorded a counter, from
    the files of their metrics directory."""
    found: set[int] = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if f"\nPPid:\t{server_pid}\n" not in status.read_text():
                continue
            environ = (status.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            name, _, value = item.decode(errors="replace").partition("=")
            if name == "PROMETHEUS_MULTIPROC_DIR":
                pid = int(status.parent.name)
                if (Path(value) / f"counter_{pid}.db").exists():
                    found.add(pid)
    return found


def test_two_server_processes_add_up(db_url: str) -> None:
    port = free_port()
    args = ("serve", "--db", db_url, "--port", str(port), "--workers", "2", "--no-engine")
    with dwsched_process(*args) as server:
        server.wait_listening(port)
        key = json.loads(ok(invoke("keys", "create", "--json", "--db", db_url)).stdout)
        made = ok(invoke("projects", "create", "--db", db_url, "--name", "metrics_ws")).stdout
        project_id = int(next(w for w in made.split() if w.isdigit()))
        request = models.ListWorkflowInstancesRequest(
            project_id=project_id, biz_date=SHANGHAI_DAY_MS
        )
        sent = 0
        # New connections until both processes have served (and recorded) some (a loaded
        # machine may take a while to start the second: uvicorn restarts a slow child).
        deadline = time.monotonic() + 60
        while len(_recording_pids(server.popen.pid)) < 2 and time.monotonic() < deadline:
            client = sdk(f"127.0.0.1:{port}", key["AccessKeyId"], key["AccessKeySecret"])
            client.list_workflow_instances(request)
            sent += 1
        assert len(_recording_pids(server.popen.pid)) == 2, "one process served every request"
        for _ in range(6):  # a new connection each time: either process may answer
            found = scrape(f"http://127.0.0.1:{port}")
            assert found.value("dwsched_api_requests_total", action=LIST, code="200") == sent
            assert found.value("dwsched_api_request_duration_seconds_count", action=LIST) == sent
            assert "dwsched_workflow_instances" in found.families  # said once
        assert server.interrupt() == 0, server.stderr


def _body_timeout(port: int) -> str:
    """A request whose body never comes: answered 408 after --body-timeout; its id."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        conn.settimeout(20)
        head = conn.recv(65536).decode("latin-1")
    assert head.startswith("HTTP/1.1 408"), head
    line = next(h for h in head.split("\r\n") if h.lower().startswith("x-acs-request-id:"))
    return line.split(":", 1)[1].strip()


def test_json_logs_and_a_metrics_listener_of_its_own(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'json.db'}"
    port, metrics_port = free_port(), free_port()
    args = (
        *("serve", "--db", db, "--port", str(port), "--no-engine", "--log-format", "json"),
        *("--metrics-listen", f"127.0.0.1:{metrics_port}", "--body-timeout", "0.5"),
    )
    with dwsched_process(*args) as server:
        server.wait_listening(port)
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
        found = scrape(f"http://127.0.0.1:{metrics_port}")
        assert "dwsched_workflow_instances" in found.families
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/readyz").json()["status"] == "ready"
        request_id = _body_timeout(port)
        assert server.interrupt() == 0, server.stderr
    lines = [json.loads(line) for line in server.stderr.splitlines() if line.startswith("{")]
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's too
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
    mine = [line for line in lines if request_id in line["message"]]
    assert mine, server.stderr
    assert all(line["request_id"] == request_id for line in mine)


def test_scheduler_serves_its_own_metrics(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'roles.db'}"
    metrics_port = free_port()
    args = ("scheduler", "--db", db, "--metrics-listen", f"127.0.0.1:{metrics_port}")
    with dwsched_process(*args) as scheduler:
        scheduler.wait_listening(metrics_port)
        base = f"http://127.0.0.1:{metrics_port}"
        rounds = "dwsched_engine_round_duration_seconds_count"
        wait(lambda: scrape(base).value(rounds, role="scheduler") > 0, "a scheduler round")
        found = scrape(base)
        # The database's state is the API's to say: never twice.
        assert "dwsched_workflow_instances" not in found.families
        assert found.value(rounds, role="worker") == 0
        assert scheduler.interrupt() == 0, scheduler.stderr
