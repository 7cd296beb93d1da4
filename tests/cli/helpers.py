"""Helpers of the CLI tests: running `dwsched` in-process and as a real process, JSON Lines
records of the import format, and an independent BizDate computation to check against.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alibabacloud_dataworks_public20240518 import models
from alibabacloud_dataworks_public20240518.client import Client as SdkClient
from alibabacloud_tea_openapi.models import Config
from click.testing import CliRunner, Result

from dwsched.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DWSCHED = ROOT / ".venv" / "bin" / "dwsched"
if not DWSCHED.exists():  # another virtualenv: the script next to this interpreter
    DWSCHED = Path(sys.executable).with_name("dwsched")

# Variables the CLI reads; tests start from none of them set, then set what they test.
CLI_ENV = (
    "DWSCHED_DATABASE_URL",
    "DWSCHED_DEFAULT_TIMEZONE",
    "DWSCHED_HOST",
    "DWSCHED_PORT",
    "DWSCHED_LOG_LEVEL",
    "DWSCHED_WORKERS",
    "DWSCHED_ENGINE",
    "DWSCHED_SLOTS",
    "DWSCHED_GROUP_SLOTS",
    "DWSCHED_SERVED_GROUPS",
    "DWSCHED_ENDPOINT",
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "DWSCHED_TASK_USER",
    "DWSCHED_TASK_ENV",
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# 2025-03-31 00:00 in Asia/Shanghai, and 15:00 of that day (any instant names the day).
SHANGHAI_DAY_MS = 1_743_350_400_000
SHANGHAI_AFTERNOON_MS = SHANGHAI_DAY_MS + 15 * HOUR_MS


# In-process runs (click's CliRunner)


def invoke(
    *args: str,
    input: str | bytes | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Result:
    """`dwsched ARGS` in this process, with none of the CLI's variables set unless `env` says."""
    full_env: dict[str, str | None] = dict.fromkeys(CLI_ENV)
    full_env.update(env or {})
    return CliRunner().invoke(cli, list(args), input=input, env=full_env, catch_exceptions=True)


def _explain(result: Result) -> str:
    text = f"exit code {result.exit_code}\n--- output ---\n{result.output}"
    if (
        result.exc_info is not None
        and result.exception is not None
        and not isinstance(result.exception, SystemExit)
    ):
        text += "--- exception ---\n" + "".join(traceback.format_exception(*result.exc_info))
    return text


def ok(result: Result) -> Result:
    assert result.exit_code == 0, _explain(result)
    return result


def clean_error(result: Result, *needles: str) -> Result:
    """A failure reported as a message: exit code != 0, no uncaught exception, no traceback."""
    assert result.exit_code != 0, _explain(result)
    assert isinstance(result.exception, SystemExit), "uncaught exception: " + _explain(result)
    assert "Traceback" not in result.output, _explain(result)
    assert "Error" in result.output, _explain(result)
    for needle in needles:
        assert needle in result.output, f"{needle!r} not in output\n" + _explain(result)
    return result


def option_blocks(help_text: str) -> dict[str, str]:
    """`--help`'s option entries, each with its (unwrapped) description, by long name."""
    section = help_text.split("Options:", 1)[1]
    blocks: dict[str, str] = {}
    for chunk in re.split(r"\n  (?=-)", "\n" + section):
        chunk = " ".join(chunk.split())
        m = re.match(r"(?:-\w, )?(--[\w-]+)", chunk)
        if m:
            blocks[m.group(1)] = chunk
    return blocks


# Real processes


def cli_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLI_ENV}
    # Tasks share the test's files (flag files in tmp_path, which only root may enter), so
    # they run as the test's own user; tests/security/test_isolation.py runs the default.
    env["DWSCHED_TASK_USER"] = "same"
    env.update(overrides)
    return env


def run_cli(
    *args: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(DWSCHED), *args],
        input=input,
        capture_output=True,
        env=dict(env) if env is not None else cli_env(),
        timeout=timeout,
        check=False,
    )


@dataclass
class Process:
    """A `dwsched` process whose stdout and stderr are collected by threads as they come."""

    popen: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.popen.poll() is not None:
                time.sleep(0.2)  # let the readers drain
                raise AssertionError(
                    f"dwsched exited ({self.popen.returncode}) before {what}\n"
                    f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
                )
            time.sleep(0.05)

    def wait_listening(self, port: int, timeout: float = 20) -> None:
        def listening() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                return False

        self.wait_for(listening, f"port {port} to listen", timeout)

    def interrupt(self, timeout: float = 20) -> int:
        """SIGINT (Ctrl-C), then the exit code; fails if the process does not end in time."""
        self.popen.send_signal(signal.SIGINT)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            raise AssertionError(f"dwsched did not stop within {timeout}s of SIGINT") from None
        time.sleep(0.1)
        return code


def _pump(stream: Any, sink: list[str]) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)
    stream.close()


@contextmanager
def dwsched_process(*args: str, env: Mapping[str, str] | None = None) -> Iterator[Process]:
    popen = subprocess.Popen(
        [str(DWSCHED), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env) if env is not None else cli_env(),
    )
    proc = Process(popen)
    readers = [
        threading.Thread(target=_pump, args=(popen.stdout, proc.out), daemon=True),
        threading.Thread(target=_pump, args=(popen.stderr, proc.err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        yield proc
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait(10)
        for reader in readers:
            reader.join(5)


# The official SDK


def sdk(endpoint: str, key_id: str, secret: str) -> SdkClient:
    host = endpoint.removeprefix("http://").rstrip("/")
    return SdkClient(
        Config(access_key_id=key_id, access_key_secret=secret, endpoint=host, protocol="http")
    )


def sdk_list(client: SdkClient, project_id: int, biz_date: int, **kw: Any) -> Any:
    request = models.ListWorkflowInstancesRequest(project_id=project_id, biz_date=biz_date, **kw)
    return client.list_workflow_instances(request).body.paging_info


def sdk_item_names() -> set[str]:
    """The names of a ListWorkflowInstances item, as the official SDK's model spells them."""
    tag = models.ListWorkflowInstancesResponseBodyPagingInfoWorkflowInstancesTags(key="k", value="")
    item = models.ListWorkflowInstancesResponseBodyPagingInfoWorkflowInstances(
        biz_date=1,
        create_time=1,
        create_user="u",
        env_type="Prod",
        finished_time=1,
        id=1,
        modify_time=1,
        modify_user="u",
        name="n",
        owner="o",
        project_id=1,
        started_time=1,
        status="Success",
        tags=[tag],
        type="Normal",
        unified_workflow_instance_id=1,
        workflow_id=1,
        workflow_parameters="",
        workflow_task_instance_id=1,
    )
    return set(item.to_map())


def db_url_of(store: Any) -> str:
    """The URL of a Store's database, usable as `--db`."""
    return str(store.database.url.render_as_string(hide_password=False))


# BizDates, computed independently of dwsched.domain.calendar


def local_day(instant_ms: int, tz: str) -> date:
    return datetime.fromtimestamp(instant_ms / 1000, ZoneInfo(tz)).date()


def day_start(day: date, tz: str) -> int:
    """Epoch ms of the first instant of `day` in `tz` (local midnight, or the end of a gap)."""
    z = ZoneInfo(tz)
    # No zone is ahead of UTC by more than 14 hours: scan minute by minute from there.
    at = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=15)
    while at.astimezone(z).date() < day:
        at += timedelta(minutes=1)
    return int(at.timestamp()) * 1000


def canonical_biz_date(instant_ms: int, tz: str) -> int:
    return day_start(local_day(instant_ms, tz), tz)


# JSON Lines records of the import format

_FULL = {"StartedTime", "FinishedTime", "Tags", "WorkflowParameters"}


def record(id: int, project_id: int, **overrides: Any) -> dict[str, Any]:
    """A complete import line (a Success instance of BizDate 2025-03-31 in Shanghai)."""
    trigger = SHANGHAI_DAY_MS + DAY_MS + 2 * HOUR_MS
    base: dict[str, Any] = {
        "Id": id,
        "ProjectId": project_id,
        "WorkflowId": 100 + id % 5,
        "WorkflowTaskInstanceId": 700_000 + id,
        "UnifiedWorkflowInstanceId": 300_000 + id,
        "Name": f"dwd_orders_{id}_daily",
        "Type": "Normal",
        "Status": "Success",
        "EnvType": "Prod",
        "BizDate": SHANGHAI_AFTERNOON_MS,
        "TriggerTime": trigger,
        "CreateTime": SHANGHAI_DAY_MS + 20 * HOUR_MS,
        "ModifyTime": trigger + HOUR_MS,
        "Owner": "203045001",
        "CreateUser": "203045001",
        "ModifyUser": "203045002",
        "StartedTime": trigger + 60_000,
        "FinishedTime": trigger + 25 * 60_000,
        "Tags": [{"Key": "team", "Value": "growth"}],
        "WorkflowParameters": "bizdate=20250331",
    }
    base.update(overrides)
    return base


def without(rec: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in keys}


def jsonl(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    path.write_text(jsonl(records), encoding="utf-8")
    return path


def expected_export(rec: dict[str, Any], tz: str) -> dict[str, Any]:
    """What export must give back for an imported line: defaults filled, BizDate canonical."""
    out = dict(rec)
    out.setdefault("StartedTime", None)
    out.setdefault("FinishedTime", None)
    out.setdefault("Tags", [])
    out.setdefault("WorkflowParameters", "")
    out["BizDate"] = canonical_biz_date(rec["BizDate"], tz)
    assert _FULL <= set(out)
    return out


def parse_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def export(db: str, project_id: int, *args: str) -> list[dict[str, Any]]:
    result = ok(invoke("export", "--db", db, "--project", str(project_id), *args))
    return parse_lines(result.stdout)


def by_id(items: Iterable[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {int(i["Id"]): i for i in items}


def create_project(db: str, name: str, tz: str | None = None) -> int:
    args = ["projects", "create", "--db", db, "--name", name]
    if tz is not None:
        args += ["--timezone", tz]
    out = ok(invoke(*args)).stdout
    m = re.search(r"created workspace (\d+) ", out)
    assert m, out
    return int(m.group(1))
