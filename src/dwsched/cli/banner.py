"""What `dwsched demo` prints as it starts: where to sign in, a fresh key, and an SDK
snippet and CLI commands that work as printed, pasted into a shell (the SDK run with this
interpreter, `dwsched` with this installation's script)."""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from dwsched.config import DATABASE_URL_ENV
from dwsched.store import sqlite_file

SDK_MODULES = ("alibabacloud_dataworks_public20240518", "alibabacloud_tea_openapi")
SDK_PACKAGE = "alibabacloud-dataworks-public20240518"


@dataclass(frozen=True, slots=True)
class Banner:
    project_id: int
    timezone: str
    database: str
    endpoint: str  # host:port
    console_user: str
    password: str
    key_id: str
    secret: str
    feed: bool  # the live feed follows

    def text(self) -> str:
        python = shown_path(sys.executable)
        script = Path(sys.executable).with_name("dwsched")
        return _TEXT.format(
            b=self,
            sdk=sdk_advice(python),
            python=python,
            dwsched=shown_path(str(script)) if script.exists() else "dwsched",
            feed=_FEED.format(tz=self.timezone) if self.feed else "",
            db_env=DATABASE_URL_ENV,
            db_url=shlex.quote(absolute_url(self.database)),
        )


def absolute_url(db_url: str) -> str:
    """`db_url` with its SQLite file as an absolute path: the same database from any folder."""
    path = sqlite_file(db_url)
    if path in ("", ":memory:") or path.startswith("file:") or os.path.isabs(path):
        return db_url
    return f"sqlite:///{os.path.abspath(path)}"


def sdk_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in SDK_MODULES)


def sdk_advice(python: str) -> str:
    """How to run the snippet: as it is when the SDK is installed beside dwsched
    (scripts/demo installs it), else after the pip command that installs it there."""
    if sdk_installed():
        return "installed; paste this into a shell"
    return f"install it first: {python} -m pip install {SDK_PACKAGE}"


def shown_path(path: str) -> str:
    """`path` relative to the working directory when it is inside it (`.venv/bin/python`),
    else as it is."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


_FEED = """
Live, one line per task that starts, fails, retries or ends (times in {tz}; --quiet: none):
"""

# The snippet is flush left in a heredoc: pasted into a shell, it runs as printed.
_TEXT = """
dwsched demo: workspace {b.project_id} ("demo", time zone {b.timezone}) runs three example
workflows (orders_chain every 5 minutes, hourly_rollup, flaky_load every 10 minutes). The last
half hour's cycles run right away: watch them below go Running, Checking, fail, retry, succeed.
Database: {b.database}

Web console: http://{b.endpoint}/console/   user {b.console_user}   password {b.password}

  Endpoint          http://{b.endpoint}/
  AccessKeyId       {b.key_id}
  AccessKeySecret   {b.secret}

Official SDK ({sdk}):

{python} - <<'EOF'
import time
from alibabacloud_tea_openapi.models import Config
from alibabacloud_dataworks_public20240518.client import Client
from alibabacloud_dataworks_public20240518 import models
client = Client(Config(access_key_id="{b.key_id}",
                       access_key_secret="{b.secret}",
                       endpoint="{b.endpoint}", protocol="http"))
yesterday_ms = int(time.time() * 1000) - 86_400_000  # today's runs have yesterday's BizDate
page = client.list_workflow_instances(models.ListWorkflowInstancesRequest(
    project_id={b.project_id}, biz_date=yesterday_ms, sort_by="StartedTime Desc", page_size=5))
for i in page.body.paging_info.workflow_instances: print(i.id, i.name, i.status)
EOF

CLI:

  export ALIBABA_CLOUD_ACCESS_KEY_ID={b.key_id}
  export ALIBABA_CLOUD_ACCESS_KEY_SECRET={b.secret}
  export DWSCHED_ENDPOINT={b.endpoint}
  export {db_env}={db_url}
  {dwsched} instances list --project {b.project_id} --biz-date yesterday
  {dwsched} instances show WORKFLOW_INSTANCE_ID     # its tasks
  {dwsched} tasks logs TASK_INSTANCE_ID             # a task's log
  {dwsched} workflows list --project {b.project_id}
  {dwsched} workers list        # reads the database ({db_env}): so do keys, users, alerts, audit

Press Ctrl-C to stop.
{feed}"""
