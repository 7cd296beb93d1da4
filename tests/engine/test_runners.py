"""Task runners (`dwsched.engine.runners`) through a real worker on a real database: a task
type registered by its runner is run by it, with its context; a type nothing runs fails
saying how to configure it; every built-in runner (process, branch, quality check) runs
its attempts; the registry and `command_for`'s typed results."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models

from dwsched.engine.runner import Command, Refusal, command_for, strict, unconfigured
from dwsched.engine.runners import (
    BRANCH_TYPE,
    RunResult,
    TaskContext,
    TaskRunner,
    builtin_runners,
    unknown_type,
)
from dwsched.engine.runners.process import ProcessRunners
from dwsched.engine.runners.virtual import virtual
from tests.engine.test_engine import Run, flow, node
from tests.support.server import LiveServer, running_server


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    """A server on a database of its own (an engine works on every instance of it)."""
    with running_server(db_url) as server:
        yield server


class Vault:
    """Secrets of the test's own."""

    def secret(self, name: str) -> str | None:
        return {"token": "s3cret"}.get(name)


class Greeting:
    """The runner of the test's own task type GREET: no process; it writes its code (the
    parameters substituted), a secret, its zone and its arguments; code saying `fail`
    fails with exit code 7. It runs until `wait`, or until stopped when the code says
    `hold` (`held` is set once it runs)."""

    held = threading.Event()

    def __init__(self, context: TaskContext) -> None:
        self.context = context
        self.stopped = threading.Event()
        self.text = ""

    def start(self) -> int | None:
        context = self.context
        code = context.substitute(context.node.content, strict("GREET"))
        secret = context.secrets.secret("token")
        zone = context.environment["TZ"]
        self.text = f"{code} secret={secret} tz={zone} args={context.arguments}\n"
        return None

    def wait(self) -> RunResult:
        if "hold" in self.text:
            Greeting.held.set()
            if not self.stopped.wait(20):
                return RunResult(9, self.text + "never stopped\n")
            return RunResult(None, self.text + "stopped\n")
        return RunResult(7 if "fail" in self.text else 0, self.text)

    def stop(self) -> None:
        self.stopped.set()

    def log_so_far(self) -> str:
        return self.text


def greet(context: TaskContext) -> TaskRunner | Refusal:
    if "refuse" in context.node.content:
        return Refusal("greetings refused")
    return Greeting(context)


def started(run: Run) -> Run:
    run.clock.advance(run.at(run.first, 2, 30) - run.clock.now_ms())
    return run


def tasks(run: Run) -> dict[str, Any]:
    request = models.ListTaskInstancesRequest(
        project_id=run.project.id, bizdate=run.biz_ms(), page_size=100
    )
    found = run.live.sdk().list_task_instances(request).body.paging_info.task_instances
    return {t.task_name: t for t in found}


def log_of(run: Run, name: str) -> str:
    request = models.GetTaskInstanceLogRequest(id=tasks(run)[name].id)
    return str(run.live.sdk().get_task_instance_log(request).body.task_instance_log)


def runs_of(run: Run, name: str) -> list[tuple[int, str]]:
    request = models.ListTaskInstancesRequest(
        project_id=run.project.id, bizdate=run.biz_ms(), id=tasks(run)[name].id
    )
    found = run.live.sdk().list_task_instances(request).body.paging_info.task_instances
    return [(t.run_number, t.status) for t in found]


def bizdate(run: Run) -> str:
    return (run.first - timedelta(days=1)).strftime("%Y%m%d")


def test_a_registered_task_type_is_run_by_its_runner(live: LiveServer) -> None:
    spec = flow(
        [
            node(
                "hi", "GREET", "hello $bizdate", script_parameters=[{"name": "who", "value": "w"}]
            ),
            node("no", "GREET", "fail"),
            node("refused", "GREET", "refuse"),
            node("checked", "GREET", "hello", qualityCheck={"command": "echo checking; exit 4"}),
        ]
    )
    run = started(Run(live, spec, task_runners={"GREET": greet}, secrets=Vault()))
    run.run_until_done()
    found = tasks(run)
    assert {name: t.status for name, t in found.items()} == {
        "hi": "Success",
        "no": "Failure",
        "refused": "Failure",
        "checked": "Failure",
    }
    assert log_of(run, "hi") == f"hello {bizdate(run)} secret=s3cret tz=Asia/Shanghai args=['w']\n"
    assert log_of(run, "no") == "fail secret=s3cret tz=Asia/Shanghai args=[]\n"
    assert log_of(run, "refused") == "greetings refused\n"
    # The node's quality check follows a registered runner too (blocking by default).
    assert log_of(run, "checked") == (
        "hello secret=s3cret tz=Asia/Shanghai args=[]\n\n--- quality check (exit 4) ---\nchecking\n"
    )


def test_a_registered_runner_is_stopped_through_the_protocol(live: LiveServer) -> None:
    Greeting.held.clear()
    run = started(Run(live, flow([node("held", "GREET", "hold")]), task_runners={"GREET": greet}))
    run.service.tick()
    assert Greeting.held.wait(20)
    assert tasks(run)["held"].status == "Running"
    run.service.worker.stop_all()  # a shutdown: the attempt waits to run again
    run.service.worker.wait_idle()
    assert run.service.worker.busy == 0
    assert tasks(run)["held"].status == "WaitResource"
    assert "stopped\n" in log_of(run, "held") and "never stopped" not in log_of(run, "held")


def test_a_type_nothing_runs_fails_saying_how_to_configure_it(live: LiveServer) -> None:
    run = started(Run(live, flow([node("sql", "ODPS_SQL", "select 1;")])))
    run.run_until_done()
    assert run.status() == "Failure"
    assert log_of(run, "sql") == (
        "dwsched cannot run task type ODPS_SQL: no runner is configured for it. Set the "
        "environment variable DWSCHED_RUNNER_ODPS_SQL to a shell command that runs the file "
        "{script} holding the task's code, e.g. DWSCHED_RUNNER_ODPS_SQL='my-client -f {script}'.\n"
    )


def test_every_builtin_runner_runs_its_attempts(live: LiveServer) -> None:
    spec = flow(
        [
            node(
                "shell",
                "DIDE_SHELL",
                'echo "shell $1 $bizdate"',
                script_parameters=[{"name": "x", "value": "one"}],
            ),
            node("python", "PYTHON", "import sys; print('python', sys.argv[1:])", after="shell"),
            node("sql", "ODPS_SQL", "select 1;", after="python"),
            node("nothing", "VIRTUAL", after="sql"),
            {
                "id": "pick",
                "name": "pick",
                "script": {"runtime": {"command": BRANCH_TYPE}},
                "inputs": {"nodeOutputs": [{"data": "nothing_out"}]},
                "branch": {
                    "branches": [
                        {"when": "'$bizdate' > '20000101'", "output": {"data": "yes"}},
                        {"when": "1 == 2", "output": {"data": "no"}},
                    ]
                },
            },
            node(
                "checked",
                "DIDE_SHELL",
                "echo work",
                qualityCheck={"command": "echo check $bizdate; exit 3", "blocking": False},
                inputs={"nodeOutputs": [{"data": "yes"}]},
            ),
            {
                "id": "skipped",
                "name": "skipped",
                "script": {"runtime": {"command": "DIDE_SHELL"}, "content": "exit 1"},
                "inputs": {"nodeOutputs": [{"data": "no"}]},
            },
        ]
    )
    run = started(Run(live, spec, runners={"ODPS_SQL": "cat {script}"}))
    run.run_until_done()
    assert run.status() == "Success"
    day = bizdate(run)
    assert log_of(run, "shell") == f"shell one {day}\n"
    assert log_of(run, "python") == "python []\n"
    assert log_of(run, "sql") == "select 1;"
    assert log_of(run, "nothing") == ""
    condition = f"'{day}' > '20000101'"
    assert log_of(run, "pick") == f"branch yes: {condition!r} is True\nbranch no: '1 == 2' is False"
    # Not blocking: the failed check is logged and the attempt succeeds with the code's exit.
    assert log_of(run, "checked") == f"work\n\n--- quality check (exit 3) ---\ncheck {day}\n"
    assert log_of(run, "skipped") == ""  # a dry run runs nothing


def test_a_condition_that_cannot_be_evaluated_fails_without_retries(live: LiveServer) -> None:
    spec = flow(
        [
            {
                "id": "pick",
                "name": "pick",
                "script": {"runtime": {"command": BRANCH_TYPE}},
                "branch": {"branches": [{"when": "1 +", "output": {"data": "yes"}}]},
            }
        ],
        rerunMode="Allowed",
        rerunTimes=2,
        rerunInterval=0,
    )
    run = started(Run(live, spec))
    run.run_until_done()
    assert run.status() == "Failure"
    assert runs_of(run, "pick") == [(1, "Failure")]
    assert log_of(run, "pick").startswith("branch yes: ")


def test_command_for_is_a_command_a_refusal_or_nothing() -> None:
    assert command_for("VIRTUAL", "x", {}) is None
    assert isinstance(command_for("DIDE_SHELL", "x", {}), Command)
    unknown = command_for("ODPS_SQL", "x", {})
    assert isinstance(unknown, Refusal) and unknown == unconfigured("ODPS_SQL")
    empty = command_for("ODPS_SQL", "x", {"ODPS_SQL": " "})
    assert isinstance(empty, Refusal) and "empty" in empty.message


def test_the_builtin_registry() -> None:
    registry = builtin_runners({"ODPS_SQL": "cat {script}", "VIRTUAL": "cat {script}"})
    for process_type in ("DIDE_SHELL", "SHELL", "PYTHON", "ODPS_SQL"):
        assert isinstance(registry.get(process_type).factory, ProcessRunners)
        assert registry.get(process_type).checked
    # A configuration does not make VIRTUAL run something; a branch has no quality check.
    assert registry.get("VIRTUAL").factory is virtual
    assert not registry.get(BRANCH_TYPE).checked
    assert "HIVE" not in registry and registry.get("HIVE").factory is unknown_type
    registry.register("HIVE", greet)
    assert registry.get("HIVE").factory is greet


@pytest.mark.parametrize("task_type", ["SHELL", "PYTHON"])
def test_a_configured_builtin_type_runs_the_operators_command(
    live: LiveServer, task_type: str
) -> None:
    run = started(
        Run(live, flow([node("n", task_type, "code")]), runners={task_type: "cat {script}"})
    )
    run.run_until_done()
    assert run.status() == "Success"
    assert log_of(run, "n") == "code"
