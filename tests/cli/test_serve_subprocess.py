"""`dwsched serve` and `dwsched demo` as real processes, used through the official SDK."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.cli.helpers import (
    DAY_MS,
    SHANGHAI_DAY_MS,
    canonical_biz_date,
    cli_env,
    dwsched_process,
    invoke,
    jsonl,
    ok,
    record,
    run_cli,
    sdk,
    sdk_list,
)
from tests.support.server import free_port


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


def test_serve_create_key_list_and_stop_on_sigint(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    port = free_port()
    with dwsched_process("serve", "--db", db, "--port", str(port)) as server:
        server.wait_listening(port)
        assert f"http://127.0.0.1:{port}/" in server.stdout

        made = run_cli("keys", "create", "--json", "--db", db)
        assert made.returncode == 0, made.stderr.decode()
        lines = made.stdout.decode().splitlines()
        assert len(lines) == 1
        key = json.loads(lines[0])
        assert set(key) == {"AccessKeyId", "AccessKeySecret"}

        # Data written by another process while the server runs is served at once.
        lines_in = [record(n, 77, Name=f"ods_serve_{n}") for n in (1, 2, 3)]
        ok(invoke("import", "--db", db, "-", input=jsonl(lines_in)))

        client = sdk(f"127.0.0.1:{port}", key["AccessKeyId"], key["AccessKeySecret"])
        paging = sdk_list(client, 77, SHANGHAI_DAY_MS + 5 * 3_600_000)
        assert paging.total_count == 3
        assert [i.id for i in paging.workflow_instances] == [3, 2, 1]
        assert {i.biz_date for i in paging.workflow_instances} == {SHANGHAI_DAY_MS}
        assert sdk_list(client, 77, SHANGHAI_DAY_MS + DAY_MS).total_count == 0

        started = time.monotonic()
        code = server.interrupt()
        assert time.monotonic() - started < 15
    assert code == 0, server.stderr
    _no_traceback(server.stdout + server.stderr)


def test_serve_reads_its_settings_from_the_environment(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'env.db'}"
    port = free_port()
    env = cli_env(
        DWSCHED_DATABASE_URL=db,
        DWSCHED_PORT=str(port),
        DWSCHED_HOST="127.0.0.1",
        DWSCHED_DEFAULT_TIMEZONE="Europe/Berlin",
        DWSCHED_LOG_LEVEL="warning",
    )
    with dwsched_process("serve", env=env) as server:
        server.wait_listening(port)
        assert (tmp_path / "env.db").exists()
        key = json.loads(ok(invoke("keys", "create", "--json", "--db", db)).stdout)
        ok(invoke("import", "--db", db, "-", input=jsonl([record(5, 88)])))
        client = sdk(f"127.0.0.1:{port}", key["AccessKeyId"], key["AccessKeySecret"])
        assert sdk_list(client, 88, SHANGHAI_DAY_MS).total_count == 1
        code = server.interrupt()
    assert code == 0, server.stderr
    assert "INFO" not in server.stderr  # DWSCHED_LOG_LEVEL=warning
    _no_traceback(server.stdout + server.stderr)


def _field(banner: str, name: str) -> str:
    m = re.search(rf"^\s*{name}\s+(\S+)\s*$", banner, re.MULTILINE)
    assert m, f"{name} not in\n{banner}"
    return m.group(1)


def test_demo_prints_working_credentials_and_serves_yesterday(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    port = free_port()
    with dwsched_process("demo", "--db", db, "--port", str(port)) as demo:
        demo.wait_for(lambda: "Ctrl-C" in demo.stdout, "the demo banner")
        demo.wait_listening(port)
        banner = demo.stdout
        endpoint = _field(banner, "Endpoint")
        assert endpoint == f"http://127.0.0.1:{port}/"
        key_id = _field(banner, "AccessKeyId")
        secret = _field(banner, "AccessKeySecret")
        workspace = re.search(r"workspace (\d+) .*time zone (\S+?)\)", banner)
        assert workspace, banner
        project_id, tz = int(workspace.group(1)), workspace.group(2)
        assert tz == "Asia/Shanghai"

        client = sdk(endpoint, key_id, secret)
        now = int(time.time() * 1000)
        yesterday = now - DAY_MS
        # Today's runs (BizDate yesterday): every cycle of the three workflows, made at once.
        per_day = 288 + 24 + 144
        deadline = time.monotonic() + 30
        while sdk_list(client, project_id, yesterday).total_count < per_day:
            assert time.monotonic() < deadline, "today's instances were not made"
            time.sleep(0.2)
        paging = sdk_list(client, project_id, yesterday, page_size=100)
        assert paging.total_count == per_day
        items = paging.workflow_instances
        assert {i.biz_date for i in items} == {canonical_biz_date(yesterday, tz)}
        assert all(i.project_id == project_id and i.env_type == "Prod" for i in items)
        assert {i.type for i in items} == {"Normal"}

        # The last half hour's cycles really run: a run that took time has succeeded
        # within a minute (dry runs start and finish at once).
        def real_runs() -> list[Any]:
            found = []
            for day in (yesterday, yesterday - DAY_MS):
                for status in ("Success", "Failure"):
                    listed = sdk_list(
                        client,
                        project_id,
                        day,
                        page_size=500,
                        filter=json.dumps({"status": status}),
                    )
                    found += [
                        i
                        for i in listed.workflow_instances
                        if i.finished_time - i.started_time >= 1000
                    ]
            return found

        deadline = time.monotonic() + 60
        while not real_runs():
            assert time.monotonic() < deadline, "no demo run finished within a minute"
            time.sleep(0.5)
        assert {i.status for i in real_runs()} <= {"Success", "Failure"}

        # The banner's own example: newest starts first, five of them.
        page = sdk_list(client, project_id, yesterday, sort_by="StartedTime Desc", page_size=5)
        assert len(page.workflow_instances) == 5
        started = [i.started_time for i in page.workflow_instances if i.started_time is not None]
        assert started == sorted(started, reverse=True)

        # And the banner's CLI example.
        env = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
        }
        listed = ok(
            invoke(
                "instances",
                "list",
                "--endpoint",
                f"127.0.0.1:{port}",
                "--project",
                str(project_id),
                "--biz-date",
                "yesterday",
                "--json",
                env=env,
            )
        )
        assert json.loads(listed.stdout)["PagingInfo"]["TotalCount"] == paging.total_count

        code = demo.interrupt()
    assert code == 0, demo.stderr
    _no_traceback(demo.stdout + demo.stderr)


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s*{pid}$", text, re.MULTILINE):
            found.append(int(status.parent.name))
    return found


def test_serve_with_several_worker_processes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'workers.db'}"
    port = free_port()
    with dwsched_process("serve", "--db", db, "--port", str(port), "--workers", "2") as server:
        server.wait_listening(port)
        key = json.loads(ok(invoke("keys", "create", "--json", "--db", db)).stdout)
        ok(invoke("import", "--db", db, "-", input=jsonl([record(n, 99) for n in (1, 2)])))
        workers = [
            c
            for c in _children(server.popen.pid)
            if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()
        ]
        assert len(workers) == 2, workers
        for _ in range(6):  # a new connection each time: either worker may answer
            client = sdk(f"127.0.0.1:{port}", key["AccessKeyId"], key["AccessKeySecret"])
            assert sdk_list(client, 99, SHANGHAI_DAY_MS).total_count == 2
        code = server.interrupt()
    assert code == 0, server.stderr
    _no_traceback(server.stdout + server.stderr)


def test_serve_runs_the_engine(tmp_path: Path) -> None:
    """`serve` schedules deployed workflows itself: an hourly workflow deployed with
    instanceMode Immediately gets today's 24 instances at once; the hours already past are
    expired dry runs that turn Success, the rest (including an expired one of the next ten
    minutes) wait for their time."""
    db = f"sqlite:///{tmp_path / 'engine.db'}"
    port = free_port()
    with dwsched_process("serve", "--db", db, "--port", str(port)) as server:
        server.wait_listening(port)
        key = json.loads(ok(invoke("keys", "create", "--json", "--db", db)).stdout)
        made = ok(invoke("projects", "create", "--db", db, "--name", "engine_ws")).stdout
        project_id = int(re.search(r"\b(\d+)\b", made).group(1))  # type: ignore[union-attr]
        spec = {
            "version": "1.1.0",
            "kind": "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": "hourly",
                        "trigger": {"cron": "0 0 * * * ?", "timezone": "Asia/Shanghai"},
                        "strategy": {"instanceMode": "Immediately"},
                        "nodes": [{"id": "n", "script": {"runtime": {"command": "VIRTUAL"}}}],
                    }
                ]
            },
        }
        path = tmp_path / "hourly.json"
        path.write_text(json.dumps(spec))
        env = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": key["AccessKeyId"],
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": key["AccessKeySecret"],
            "DWSCHED_ENDPOINT": f"127.0.0.1:{port}",
        }
        deployed_ms = int(time.time() * 1000)
        ok(invoke("workflows", "apply", "--project", str(project_id), str(path), env=env))
        client = sdk(f"127.0.0.1:{port}", key["AccessKeyId"], key["AccessKeySecret"])
        local = datetime.fromtimestamp(deployed_ms / 1000, ZoneInfo("Asia/Shanghai"))
        midnight = datetime(local.year, local.month, local.day, tzinfo=ZoneInfo("Asia/Shanghai"))
        hours = [int((midnight + timedelta(hours=h)).timestamp() * 1000) for h in range(24)]
        biz_date = int((midnight - timedelta(days=1)).timestamp() * 1000)

        def past() -> int:  # hours whose time has come: dry run or run, they are done
            now = int(time.time() * 1000)
            return sum(1 for h in hours if h <= now)

        deadline = time.monotonic() + 20
        statuses: list[str] = []
        while time.monotonic() < deadline:
            paging = sdk_list(client, project_id, biz_date, page_size=100)
            statuses = sorted(i.status for i in paging.workflow_instances)
            if paging.total_count == 24 and statuses.count("Success") >= past():
                break
            time.sleep(0.2)
        assert len(statuses) == 24, statuses
        assert statuses.count("Success") in (past(), past() - 1), (past(), statuses)
        assert set(statuses) <= {"Success", "WaitTime"}, statuses
        assert server.interrupt() == 0, server.stderr
    _no_traceback(server.stdout + server.stderr)
