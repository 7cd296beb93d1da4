"""Tasks are isolated from the control plane (issue 12, finding 2).

`dwsched serve` runs as root here (as in containers and CI), so its tasks run as the
unprivileged `dwsched-task` user. A deployed node tries what the review did: read the
database file, the server key file, the server's /proc/<pid>/environ and its own
environment. It finds nothing usable, on SQLite and on PostgreSQL (whose URL carries a
password in the server's environment).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_dataworks_public20240518 import models as M

from tests.cli.helpers import cli_env, dwsched_process, run_cli, sdk
from tests.engine.test_engine import TZ, node
from tests.support.databases import BACKENDS, new_database_url
from tests.support.server import free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the task user switch needs root (CI runs as root)"
)

# What a task's environment may hold (docs/security.md); bash adds PWD, SHLVL and _.
ALLOWED = {"PATH", "LANG", "HOME", "TZ", "USER", "LOGNAME", "PWD", "SHLVL", "_"}
TASK_VARIABLES = re.compile(r"DWSCHED_(TASK_INSTANCE_ID|RUN_NUMBER|WORKFLOW_INSTANCE_ID|BIZDATE)")
PASSWORD = "sekret-pw-for-tasks-to-find"


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may enter, so that only the files' own modes protect them."""
    path = Path(tempfile.mkdtemp(prefix="dwsched-isolation-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def probe(db_file: str, key_file: str, pid: int) -> str:
    return "\n".join(
        [
            'echo "whoami=$(id -un)"',
            *(
                f"cat {path} >/dev/null 2>&1 && echo READ-{what}"
                for what, path in (
                    ("DB", db_file),
                    ("KEY", key_file),
                    ("ENVIRON", f"/proc/{pid}/environ"),
                )
                if path
            ),
            # The command line is anyone's to read: it must hold no secret.
            f"echo \"cmdline=$(tr '\\0' ' ' < /proc/{pid}/cmdline)\"",
            f"ls /proc/{pid}/fd >/dev/null 2>&1 && echo READ-FD",
            f"test -e /proc/{pid} && echo SEES-SERVER",
            "touch /var/tmp/dwsched-sandbox-probe 2>/dev/null && echo WROTE-OUTSIDE",
            "rm -f /var/tmp/dwsched-sandbox-probe",
            "echo '--- env'",
            "env",
            "echo '--- end'",
        ]
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_task_finds_nothing_of_the_control_plane(
    backend: str, open_dir: Path, tmp_path: Path
) -> None:
    key_file = open_dir / "server.key"
    if backend == "sqlite":
        db_file = str(open_dir / "dwsched.db")
        url = shown_url = f"sqlite:///{db_file}"
        urls = None
    else:
        urls = new_database_url("postgresql", tmp_path)
        shown_url = next(urls)
        url = shown_url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
        assert PASSWORD in url  # trust auth takes it and ignores it
        db_file = ""
    env = cli_env(
        DWSCHED_DATABASE_URL=url,
        DWSCHED_SECRET_KEY_FILE=str(key_file),
        SERVER_ONLY_TOKEN="server-only-value",
    )
    del env["DWSCHED_TASK_USER"]  # the default: root's tasks run as dwsched-task
    # SQLite's server also confines its tasks with bubblewrap (.ci/run installs it).
    sandbox = backend == "sqlite" and shutil.which("bwrap") is not None
    port = free_port()
    try:
        args = ("serve", "--port", str(port), *(["--task-sandbox"] if sandbox else []))
        with dwsched_process(*args, env=env) as server:
            server.wait_listening(port)
            assert "TASKS ARE NOT ISOLATED" not in server.stderr
            made = run_cli("keys", "create", "--json", env=env)
            assert made.returncode == 0, made.stderr.decode()
            key = json.loads(made.stdout)
            client = sdk(f"127.0.0.1:{port}", key["AccessKeyId"], key["AccessKeySecret"])
            log = run_probe(client, probe(db_file, str(key_file), server.popen.pid))
        for path in (db_file, str(key_file)):
            if path:
                assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    finally:
        if urls is not None:
            urls.close()
    assert "whoami=dwsched-task" in log, log
    assert "READ-" not in log, log
    if sandbox:  # only its own processes, and a read-only file system but for its directory
        assert "SEES-SERVER" not in log and "WROTE-OUTSIDE" not in log, log
    else:
        assert "SEES-SERVER" in log and "WROTE-OUTSIDE" in log, log
    secret_key = key_file.read_text().strip()
    for secret in (PASSWORD, "server-only-value", secret_key, key["AccessKeySecret"]):
        assert secret not in log, (secret, log)
    names = {
        line.split("=", 1)[0]
        for line in log.split("--- env\n", 1)[1].split("--- end", 1)[0].splitlines()
        if "=" in line
    }
    unexpected = {
        n for n in names - ALLOWED if not TASK_VARIABLES.fullmatch(n) and n != "DWSCHED_PARAM_x"
    }
    assert not unexpected, (unexpected, log)


def run_probe(client: object, script: str) -> str:
    """Deploy a manual workflow of one shell node running `script`, run it, its log."""
    spec = {
        "version": "1.1.0",
        "kind": "ManualWorkflow",
        "spec": {
            "workflows": [
                {
                    "name": "probe",
                    "trigger": {"type": "Manual", "timezone": TZ},
                    "strategy": {"rerunTimes": 0},
                    "parameters": [{"name": "x", "value": "1"}],
                    "nodes": [node("probe", "DIDE_SHELL", script)],
                }
            ]
        },
    }
    sdk_client = client  # the official SDK's client
    project_id = sdk_client.create_project(  # type: ignore[attr-defined]
        M.CreateProjectRequest(name=f"iso_{time.monotonic_ns()}", display_name="iso")
    ).body.id
    job = sdk_client.import_workflow_definition(  # type: ignore[attr-defined]
        M.ImportWorkflowDefinitionRequest(project_id=project_id, spec=json.dumps(spec))
    ).body.async_job
    assert job.status == "Success", job.error
    workflow_id = sdk_client.get_workflow_definition(  # type: ignore[attr-defined]
        M.GetWorkflowDefinitionRequest(id=job.response)
    ).body.workflow_definition.workflow_id
    operation = sdk_client.create_workflow_instances(  # type: ignore[attr-defined]
        M.CreateWorkflowInstancesRequest(
            project_id=project_id, name="probe", type="ManualWorkflow", workflow_id=workflow_id
        )
    ).body.operation_id
    deadline = time.monotonic() + 60
    while True:
        result = sdk_client.get_create_workflow_instances_result(  # type: ignore[attr-defined]
            M.GetCreateWorkflowInstancesResultRequest(operation_id=operation)
        ).body.result
        if result.status != "Creating":
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (instance_id,) = result.workflow_instance_ids
    while True:
        instance = sdk_client.get_workflow_instance(  # type: ignore[attr-defined]
            M.GetWorkflowInstanceRequest(id=instance_id)
        ).body.workflow_instance
        if instance.status in ("Success", "Failure"):
            break
        assert time.monotonic() < deadline, instance.status
        time.sleep(0.1)
    (task,) = sdk_client.list_task_instances(  # type: ignore[attr-defined]
        M.ListTaskInstancesRequest(
            project_id=project_id, bizdate=instance.biz_date, workflow_instance_id=instance_id
        )
    ).body.paging_info.task_instances
    return str(
        sdk_client.get_task_instance_log(  # type: ignore[attr-defined]
            M.GetTaskInstanceLogRequest(id=task.id)
        ).body.task_instance_log
    )


def test_a_server_whose_tasks_share_its_user_says_so_loudly(open_dir: Path) -> None:
    db = f"sqlite:///{open_dir / 'shared.db'}"
    port = free_port()
    env = cli_env(DWSCHED_SECRET_KEY_FILE=str(open_dir / "shared.key"))
    with dwsched_process("serve", "--db", db, "--port", str(port), env=env) as server:
        server.wait_listening(port)
        server.interrupt()
    assert "TASKS ARE NOT ISOLATED" in server.stderr, server.stderr
    assert str(open_dir / "shared.db") in server.stderr
    assert stat.S_IMODE(os.stat(open_dir / "shared.db").st_mode) == 0o600
