"""Run-time values are data, never code (issue 12, finding 1).

A user with operate rights only (WorkspaceOperatorAccess, the O&M role) supplies the values
of a run: TaskParameters, WorkflowParameters (k=v text, or a manual workflow's JSON), through
the official SDK and through the console. Whatever they hold (shell substitutions,
backticks, `${IFS}`, quotes, `;|&<>`, Python string breakouts, heredoc ends, newlines), the
deployed code receives them verbatim, in every place a Developer may use them (double quotes,
single quotes, unquoted words, a heredoc, `$1`, the environment, Python literals, a branch
condition, a quality check), and nothing the values say is executed: a payload that ran
would create a file in a directory every user may write. Reruns are as safe.

Tasks run here as the isolated task user when the tests run as root (as in CI).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from alibabacloud_dataworks_public20240518 import models as M
from alibabacloud_dataworks_public20240518.client import Client as SdkClient

from dwsched.clock import SystemClock
from dwsched.engine.service import Service
from dwsched.engine.worker import WorkerSettings
from dwsched.runtime import isolation
from dwsched.runtime.keys import create_key
from dwsched.web import passwords
from tests.api.sdk_helpers import sdk_error
from tests.engine.test_engine import TZ, flow, node
from tests.support.databases import BACKENDS, new_database_url
from tests.support.factories import project
from tests.support.server import LiveServer, running_server

NOW = SystemClock().now_ms()
PASSWORD = "operator's long password"


def payloads(marker: Path) -> dict[str, str]:
    """Values that would each create a file in `marker` if any of them ran as code (no
    whitespace: k=v text cannot hold it; `{touch,FILE}` is bash's brace expansion of
    `touch FILE`). None holds `$` or a backtick, so any node may take them."""
    m = marker
    return {
        "p1": f"';{{touch,{m}/single}};'",
        "p2": f'";{{touch,{m}/double}};"',
        "p3": f"x|{{touch,{m}/pipe}}&&{{touch,{m}/and}};<>",
        "p4": f"');__import__('os').system('touch\\x20{m}/py1');#",
        "p5": f'"""+__import__("os").system("touch\\x20{m}/py2")+"""',
        "p6": "x'or'1'=='1\\",
    }


def dollar_payloads(marker: Path) -> dict[str, str]:
    """Values with `$` or a backtick: code to bash in an arithmetic context (`a[$(cmd)]`)
    whatever the quoting, so refused for nodes bash runs; data to Python."""
    m = marker
    return {
        "p7": f"`touch${{IFS}}{m}/backtick`",
        "p8": f"$(touch${{IFS}}{m}/dollar)",
        "p9": f"a[$(touch${{IFS}}{m}/arith)]",
        "p10": f"${{IFS}}\\$(touch${{IFS}}{m}/escaped)\\",
        "p11": f"');__import__('os').system('touch${{IFS}}{m}/py3');#",
    }


def shell_code(names: list[str]) -> str:
    lines = []
    for n in names:
        lines += [
            f"printf '%s\\n' \"dq {n}=${{{n}}}\"",
            f"printf '%s\\n' 'sq {n}=${{{n}}}'",
            f"echo uq {n}=${{{n}}}",
            f"printf '%s\\n' \"env {n}=$DWSCHED_PARAM_{n}\"",
            f"cat <<EOF\nheredoc {n}=${{{n}}}\nEOF",
            # arithmetic contexts re-read values as code: errors here, never commands
            f'( : $(( ${{{n}}} )) ) 2>/dev/null; ( [[ "${{{n}}}" -gt 0 ]] ) 2>/dev/null',
            f"( : $(( DWSCHED_PARAM_{n} )) ) 2>/dev/null",
        ]
    lines += ['for a in "$@"; do printf \'arg=%s\\n\' "$a"; done']
    return "\n".join(lines)


def python_code(names: list[str]) -> str:
    lines = ["import os, sys"]
    for n in names:
        lines += [
            f'print("dq {n}=" + "${{{n}}}")',
            f"print('sq {n}=' + '${{{n}}}')",
            f'print("""tq {n}=${{{n}}}""")',
            f"print('env {n}=' + os.environ['DWSCHED_PARAM_{n}'])",
        ]
    lines += ["for a in sys.argv[1:]: print('arg=' + a)"]
    return "\n".join(lines)


def spec(names: list[str]) -> dict[str, Any]:
    declared = [{"name": n, "value": "deployed"} for n in names]
    nodes = [
        node(
            "sh",
            "DIDE_SHELL",
            shell_code(names),
            qualityCheck={"command": f"printf '%s\\n' \"check=${{{names[0]}}}\""},
        ),
        node("py", "PYTHON", python_code(names)),
        node(
            "br",
            "CONTROLLER_BRANCH",
            after="py",
            branch={
                "branches": [
                    {"when": f"'${{{names[0]}}}' == 'deployed'", "output": {"data": "br_same"}},
                    {"when": f"'${{{names[0]}}}' != 'deployed'", "output": {"data": "br_other"}},
                ]
            },
        ),
    ]
    for n in nodes:
        n["script"]["parameters"] = declared
    return flow(nodes)


@dataclass
class World:
    live: LiveServer
    project_id: int
    admin: SdkClient
    operator: SdkClient
    console: httpx.Client
    csrf: str


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    user = isolation.task_user(None)  # dwsched-task when root, as `dwsched serve` does
    for url in new_database_url(request.param, tmp_path_factory.mktemp("data")):
        with running_server(url) as live:
            settings = WorkerSettings(slots=6, task_user=user)
            service = Service(live.store, SystemClock(), settings, tick_s=0.05)
            service.start()
            store = live.store
            p = project(live.store)
            with store.write() as tx:
                made = tx.users.create("op", "op", NOW)
                tx.policies.attach("WorkspaceOperatorAccess", "User", "op", attach=True)
                tx.members.add(p.id, made.id, ["role_project_pe"], NOW)
                tx.users.set_password("op", passwords.hash_password(PASSWORD))
            key = create_key(store, "op-key", NOW)
            with store.write() as tx:
                tx.users.set_key_user(key.id, "op")
            console = httpx.Client(base_url=f"http://{live.endpoint}", timeout=30)
            signed_in = console.post(
                "/console/api/signin", json={"UserName": "op", "Password": PASSWORD}
            )
            assert signed_in.status_code == 200, signed_in.text
            try:
                yield World(
                    live,
                    p.id,
                    live.sdk(),
                    live.sdk(key_id=key.id, secret=key.secret),
                    console,
                    signed_in.json()["CsrfToken"],
                )
            finally:
                console.close()
                service.stop()


@pytest.fixture
def marker() -> Iterator[Path]:
    """A directory the task user may write to: a payload that ran leaves a file here."""
    path = Path(tempfile.mkdtemp(prefix="dwsched-pwned-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def deploy(w: World, body: dict[str, Any]) -> tuple[int, dict[str, int]]:
    job = w.admin.import_workflow_definition(
        M.ImportWorkflowDefinitionRequest(project_id=w.project_id, spec=json.dumps(body))
    ).body.async_job
    assert job.status == "Success", job.error
    workflow_id = w.admin.get_workflow_definition(
        M.GetWorkflowDefinitionRequest(id=job.response)
    ).body.workflow_definition.workflow_id
    tasks = w.admin.get_workflow(M.GetWorkflowRequest(id=workflow_id)).body.workflow.tasks
    return workflow_id, {t.name: t.id for t in tasks}


def roots(task_ids: dict[str, int]) -> Any:
    """A smoke test of every task."""
    return M.CreateWorkflowInstancesRequestDefaultRunProperties(
        root_task_ids=list(task_ids.values())
    )


def finished(w: World, operation_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """The created instance's task instances by node name, once the instance has ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = w.admin.get_create_workflow_instances_result(
            M.GetCreateWorkflowInstancesResultRequest(operation_id=operation_id)
        ).body.result
        if result.status != "Creating":
            break
        assert time.monotonic() < deadline, "creation did not end"
        time.sleep(0.05)
    assert result.status == "Created", result.failure_message
    (instance_id,) = result.workflow_instance_ids
    return wait_instance(w, instance_id, deadline)


def wait_instance(w: World, instance_id: int, deadline: float) -> dict[str, Any]:
    while True:
        instance = w.admin.get_workflow_instance(
            M.GetWorkflowInstanceRequest(id=instance_id)
        ).body.workflow_instance
        if instance.status in ("Success", "Failure"):
            break
        assert time.monotonic() < deadline, ("instance did not end", instance.status)
        time.sleep(0.1)
    items = w.admin.list_task_instances(
        M.ListTaskInstancesRequest(
            project_id=w.project_id,
            bizdate=instance.biz_date,
            workflow_instance_id=instance_id,
            page_size=100,
        )
    ).body.paging_info.task_instances
    return {t.task_name: t for t in items}


def log(w: World, task_instance_id: int) -> str:
    return str(
        w.admin.get_task_instance_log(
            M.GetTaskInstanceLogRequest(id=task_instance_id)
        ).body.task_instance_log
    )


def assert_verbatim(
    w: World, tasks: dict[str, Any], values: dict[str, str], py_values: dict[str, str]
) -> None:
    """Each value reached the code exactly, in every context that takes it as data: the
    shell node's `values`, the Python node's `values` and `py_values`."""
    sh, py = log(w, tasks["sh"].id), log(w, tasks["py"].id)
    assert tasks["sh"].status == "Success", sh
    assert tasks["py"].status == "Success", py
    for n, v in values.items():
        for context in ("dq", "env"):
            assert f"{context} {n}={v}\n" in sh, (context, n, sh)
        assert f"heredoc {n}={v}\n" in sh, (n, sh)
        assert f"arg={v}\n" in sh
    for n, v in {**values, **py_values}.items():
        assert f"arg={v}\n" in py
        for context in ("dq", "sq", "tq", "env"):
            assert f"{context} {n}={v}\n" in py, (context, n, py)
    first = next(iter(values))
    assert f"check={values[first]}\n" in sh
    branch = log(w, tasks["br"].id)
    assert tasks["br"].status == "Success", branch
    taken = "deployed" if values[first] == "deployed" else "other"
    assert f"is {taken == 'other'}" in branch.splitlines()[1], branch


def test_an_operators_task_parameters_arrive_verbatim_and_run_nothing(
    world: World, marker: Path
) -> None:
    values, dollars = payloads(marker), dollar_payloads(marker)
    workflow_id, task_ids = deploy(world, spec([*values, *dollars]))
    text = " ".join(f"{k}={v}" for k, v in values.items())
    py_text = " ".join(f"{k}={v}" for k, v in {**values, **dollars}.items())
    by_task = {str(task_ids["sh"]): text, str(task_ids["br"]): text, str(task_ids["py"]): py_text}
    operation = world.operator.create_workflow_instances(
        M.CreateWorkflowInstancesRequest(
            project_id=world.project_id,
            name="smoke",
            type="SmokeTest",
            workflow_id=workflow_id,
            default_run_properties=roots(task_ids),
            task_parameters=json.dumps(by_task),
        )
    ).body.operation_id
    tasks = finished(world, str(operation))
    assert_verbatim(world, tasks, values, dollars)
    assert list(marker.iterdir()) == []
    # Anyone's rerun runs the same stored values: still data.
    world.admin.rerun_task_instances(
        M.RerunTaskInstancesRequest(ids=[tasks["sh"].id, tasks["py"].id])
    )
    deadline = time.monotonic() + 60
    for name in ("sh", "py"):
        while world.admin.get_task_instance(
            M.GetTaskInstanceRequest(id=tasks[name].id)
        ).body.task_instance.run_number < 2 or world.admin.get_task_instance(
            M.GetTaskInstanceRequest(id=tasks[name].id)
        ).body.task_instance.status not in ("Success", "Failure"):
            assert time.monotonic() < deadline, "the rerun did not end"
            time.sleep(0.1)
    again = wait_instance(world, tasks["sh"].workflow_instance_id, deadline)
    assert_verbatim(world, again, values, dollars)
    assert list(marker.iterdir()) == []


def test_workflow_parameters_of_every_kind_are_data(world: World, marker: Path) -> None:
    values = {"p2": payloads(marker)["p1"]}
    # Workflow-level parameters (k=v text): the nodes declare none, so the workflow's count.
    body = spec(["p2"])
    for n in body["spec"]["workflows"][0]["nodes"]:
        n["script"]["parameters"] = []
    body["spec"]["workflows"][0]["parameters"] = [{"name": "p2", "value": "deployed"}]
    workflow_id, task_ids = deploy(world, body)
    operation = world.operator.create_workflow_instances(
        M.CreateWorkflowInstancesRequest(
            project_id=world.project_id,
            name="smoke",
            type="SmokeTest",
            workflow_id=workflow_id,
            default_run_properties=roots(task_ids),
            workflow_parameters=f"p2={values['p2']}",
        )
    ).body.operation_id
    tasks = finished(world, str(operation))
    sh = log(world, tasks["sh"].id)
    assert f"dq p2={values['p2']}\n" in sh and f"env p2={values['p2']}\n" in sh, sh
    # A manual workflow's JSON parameters may hold whitespace and newlines.
    spaced = {
        "p1": f"a b\nEOF\ntouch {marker}/heredoc\n';touch {marker}/spaced;'",
        "p2": f"'); import os; os.system('touch {marker}/python') #",
    }
    manual = spec(list(spaced))
    manual["kind"] = "ManualWorkflow"
    manual["spec"]["workflows"][0]["trigger"] = {"type": "Manual", "timezone": TZ}
    workflow_id, _ = deploy(world, manual)
    operation = world.operator.create_workflow_instances(
        M.CreateWorkflowInstancesRequest(
            project_id=world.project_id,
            name="manual",
            type="ManualWorkflow",
            workflow_id=workflow_id,
            workflow_parameters=json.dumps(spaced),
        )
    ).body.operation_id
    tasks = finished(world, str(operation))
    py = log(world, tasks["py"].id)
    assert tasks["py"].status == "Success", py
    for n, v in spaced.items():
        assert f"env {n}={v}\n" in py and f"dq {n}={v}\n" in py, py
    sh = log(world, tasks["sh"].id)
    assert f"dq p1={spaced['p1']}\n" in sh, sh
    assert list(marker.iterdir()) == []


def test_the_console_passes_values_as_data_too(world: World, marker: Path) -> None:
    values = {k: v for k, v in payloads(marker).items() if k in ("p1", "p3", "p4")}
    workflow_id, task_ids = deploy(world, spec(list(values)))
    text = " ".join(f"{k}={v}" for k, v in values.items())
    answer = world.console.post(
        "/console/api/call",
        json={
            "Action": "CreateWorkflowInstances",
            "Parameters": {
                "ProjectId": world.project_id,
                "Name": "console",
                "Type": "SmokeTest",
                "WorkflowId": workflow_id,
                "TaskParameters": json.dumps({str(t): text for t in task_ids.values()}),
                "DefaultRunProperties": json.dumps({"RootTaskIds": list(task_ids.values())}),
            },
        },
        headers={"X-CSRF-Token": world.csrf},
    )
    assert answer.status_code == 200, answer.text
    tasks = finished(world, str(answer.json()["OperationId"]))
    assert_verbatim(world, tasks, values, {})
    assert list(marker.iterdir()) == []


def test_what_bash_would_read_as_code_and_undeclared_names_are_refused(
    world: World, marker: Path
) -> None:
    """`$` and backticks reach bash code only through values bash re-reads in arithmetic
    contexts (`$(( ${n} ))` with `a[$(cmd)]` runs cmd, whatever the quoting), so a Shell
    node or a quality check is refused them; a request names declared parameters only (a
    supplied `yyyymmdd` would hide that date format in every node)."""
    workflow_id, task_ids = deploy(world, spec(["n"]))
    sh = str(task_ids["sh"])
    for fields, named, said in (
        (
            {"task_parameters": json.dumps({sh: f"n=a[$(touch${{IFS}}{marker}/x)]"})},
            "TaskParameters",
            "backtick",
        ),
        ({"task_parameters": json.dumps({sh: "n=`id`"})}, "TaskParameters", "backtick"),
        ({"workflow_parameters": "n=$(id)"}, "WorkflowParameters", "does not declare"),
        ({"task_parameters": json.dumps({sh: "yyyymmdd=1"})}, "TaskParameters", "does not declare"),
        (
            {"task_parameters": json.dumps({sh: "n=1 extra=-c"})},
            "TaskParameters",
            "does not declare",
        ),
    ):
        error = sdk_error(
            lambda f=fields: world.operator.create_workflow_instances(  # type: ignore[misc]
                M.CreateWorkflowInstancesRequest(
                    project_id=world.project_id,
                    name="refused",
                    type="SmokeTest",
                    workflow_id=workflow_id,
                    default_run_properties=roots(task_ids),
                    **f,
                )
            )
        )
        assert error.code == "InvalidParameter" and named in error.message, error.message
        assert said in error.message, error.message
    # The workflow's own parameters may be set, but not to what bash would run.
    body = spec(["n"])
    body["spec"]["workflows"][0]["parameters"] = [{"name": "w", "value": "1"}]
    workflow_id, task_ids = deploy(world, body)
    error = sdk_error(
        lambda: world.operator.create_workflow_instances(
            M.CreateWorkflowInstancesRequest(
                project_id=world.project_id,
                name="refused",
                type="SmokeTest",
                workflow_id=workflow_id,
                default_run_properties=roots(task_ids),
                workflow_parameters="w=$(id)",
            )
        )
    )
    assert error.code == "InvalidParameter" and "WorkflowParameters" in error.message
    assert "backtick" in error.message
    assert list(marker.iterdir()) == []


def test_supplied_values_are_bounded(world: World) -> None:
    workflow_id, task_ids = deploy(world, spec(["p1"]))
    task = str(next(iter(task_ids.values())))
    for fields, named in (
        ({"task_parameters": json.dumps({task: "p1=" + "x" * 5000})}, "TaskParameters"),
        (
            {"task_parameters": json.dumps({task: " ".join(f"n{i}=1" for i in range(101))})},
            "TaskParameters",
        ),
        ({"workflow_parameters": "p1=" + "y" * 5000}, "WorkflowParameters"),
    ):
        error = sdk_error(
            lambda f=fields: world.operator.create_workflow_instances(  # type: ignore[misc]
                M.CreateWorkflowInstancesRequest(
                    project_id=world.project_id,
                    name="big",
                    type="SmokeTest",
                    workflow_id=workflow_id,
                    default_run_properties=roots(task_ids),
                    **f,
                )
            )
        )
        assert error.code == "InvalidParameter" and named in error.message, error.message


def test_a_language_dwsched_does_not_know_takes_plain_values_only(marker: Path) -> None:
    """A configured runner's code (SQL, say) gets a supplied value only when it is plain: a
    request pasting another into such code is refused; a built-in type whose runner the
    operator overrode is checked when the attempt runs, which then fails saying so."""
    with contextlib.ExitStack() as stack:
        urls = new_database_url("sqlite", marker)
        live = stack.enter_context(running_server(next(urls)))
        stack.callback(urls.close)
        runners = {
            "FAKE_SQL": 'cat {script}; printf "env=%s\\n" "$DWSCHED_PARAM_q"',
            "DIDE_SHELL": "cat {script}",
        }
        service = Service(live.store, SystemClock(), WorkerSettings(runners=runners), tick_s=0.05)
        service.start()
        stack.callback(service.stop)
        w = World(live, project(live.store).id, live.sdk(), live.sdk(), httpx.Client(), "")
        stack.callback(w.console.close)
        sql = node("sql", "FAKE_SQL", "select * from t where ds='${q}';")
        sh = node("sh", "DIDE_SHELL", "select * from t where ds='${q}';")
        for n in (sql, sh):
            n["script"]["parameters"] = [{"name": "q", "value": "deployed"}]
        workflow_id, task_ids = deploy(w, flow([sql, sh]))

        def run(task: str, value: str) -> Any:
            return w.admin.create_workflow_instances(
                M.CreateWorkflowInstancesRequest(
                    project_id=w.project_id,
                    name="sql",
                    type="SmokeTest",
                    workflow_id=workflow_id,
                    default_run_properties=roots({task: task_ids[task]}),
                    task_parameters=json.dumps({str(task_ids[task]): f"q={value}"}),
                )
            ).body.operation_id

        tasks = finished(w, str(run("sql", "2025-01-31")))
        plain = log(w, tasks["sql"].id)
        assert tasks["sql"].status == "Success" and "ds='2025-01-31'" in plain, plain
        error = sdk_error(lambda: run("sql", "x';drop${IFS}table${IFS}t;--"))
        assert error.code == "InvalidParameter" and "TaskParameters" in error.message
        assert "FAKE_SQL" in error.message, error.message
        tasks = finished(w, str(run("sh", "x';drop;--")))
        refused = log(w, tasks["sh"].id)
    assert tasks["sh"].status == "Failure", refused
    assert "does not paste such a value into DIDE_SHELL code" in refused and "drop" not in refused
