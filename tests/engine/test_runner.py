"""Running task attempts as real local processes (`dwsched.engine.runner`)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from dwsched.engine.runner import (
    Attempt,
    Command,
    Outcome,
    Refusal,
    UnsafeValue,
    command_for,
    kill_group,
    process_alive,
    process_identity,
    render_for,
    runner_variable,
)
from dwsched.runtime.isolation import task_user

ENV = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Attempts make their temporary directories here, so tests can see them go."""
    root = tmp_path / "attempts"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def command(task_type: str, content: str, configured: dict[str, str] | None = None) -> Command:
    result = command_for(task_type, content, configured or {})
    assert isinstance(result, Command), result
    return result


def run(cmd: Command, timeout_s: float | None = 10, **kwargs: object) -> Outcome:
    attempt = Attempt(cmd, ENV, timeout_s, **kwargs)  # type: ignore[arg-type]
    attempt.start()
    return attempt.wait()


def gone(pid: int, within_s: float = 5) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if process_identity(pid) is None:
            return True
        time.sleep(0.05)
    return False


def pid_after(prefix: str, log: str) -> int:
    line = next(line for line in log.splitlines() if line.startswith(prefix))
    return int(line.removeprefix(prefix))


def test_shell_output_and_exit_code(private_tmp: Path) -> None:
    script = 'echo out\necho err >&2\necho "x=$DW_X home=${HOME-unset}"\nexit 3\n'
    outcome = run(command("DIDE_SHELL", script))
    assert outcome.log == "out\nerr\nx= home=unset\n"
    assert (outcome.exit_code, outcome.timed_out, outcome.stopped) == (3, False, False)
    assert not outcome.succeeded
    assert list(private_tmp.iterdir()) == []


def test_the_environment_is_exactly_the_one_given() -> None:
    attempt = Attempt(command("SHELL", 'echo "$DW_X ${HOME-unset}"'), {**ENV, "DW_X": "1"}, 10)
    attempt.start()
    outcome = attempt.wait()
    assert outcome.log == "1 unset\n"
    assert outcome.exit_code == 0 and outcome.succeeded
    assert outcome.pid == attempt.pid


def test_script_file_and_working_directory_are_removed(private_tmp: Path) -> None:
    outcome = run(command("SHELL", 'echo "$0"\npwd\n'))
    script, cwd = outcome.log.splitlines()
    assert Path(script).parent == Path(cwd)
    assert Path(cwd).parent == private_tmp
    assert not Path(script).exists() and not Path(cwd).exists()


def test_cwd_is_used_when_given(tmp_path: Path) -> None:
    outcome = run(command("SHELL", "pwd"), cwd=str(tmp_path))
    assert outcome.log == f"{tmp_path}\n"
    assert tmp_path.exists()


def test_python() -> None:
    script = "import sys\nprint('py')\nprint('err', file=sys.stderr)\nprint('ü')\nsys.exit(4)\n"
    outcome = run(command("PYTHON", script))
    assert outcome.log == "py\nerr\nü\n"
    assert outcome.exit_code == 4


def test_a_failing_script() -> None:
    outcome = run(command("SHELL", "set -e\necho before\nfalse\necho after\n"))
    assert outcome.log == "before\n"
    assert outcome.exit_code == 1


def test_virtual_runs_nothing() -> None:
    assert command_for("VIRTUAL", "echo hi", {"VIRTUAL": "cat {script}"}) is None


def test_an_unconfigured_type_says_how_to_configure_it() -> None:
    message = command_for("ODPS_SQL", "select 1;", {})
    assert isinstance(message, Refusal)
    assert "ODPS_SQL" in message.message
    assert "DWSCHED_RUNNER_ODPS_SQL='my-client -f {script}'" in message.message
    assert runner_variable("cdh-hive") == "DWSCHED_RUNNER_CDH_HIVE"


def test_a_configured_type(tmp_path: Path) -> None:
    cmd = command("ODPS_SQL", "select 1;\n", {"ODPS_SQL": "cat {script}; echo done $DW_X"})
    assert cmd.argv[:2] == ("bash", "-c")
    attempt = Attempt(cmd, {**ENV, "DW_X": "x"}, 10)
    attempt.start()
    outcome = attempt.wait()
    assert outcome.log == "select 1;\ndone x\n"
    assert outcome.exit_code == 0


def test_a_configured_type_overrides_a_builtin_and_an_empty_one_is_an_error() -> None:
    cmd = command("PYTHON", "print(1)", {"PYTHON": "wc -c < '{script}'"})
    assert run(cmd).log.strip() == "8"
    message = command_for("ODPS_SQL", "x", {"ODPS_SQL": "  "})
    assert isinstance(message, Refusal) and "empty" in message.message


def test_timeout_kills_the_whole_group() -> None:
    script = 'sleep 100 &\necho "grandchild $!"\nsleep 100\nwait\n'
    started = time.monotonic()
    # Long enough for bash to start the grandchild and say so on a loaded machine.
    outcome = run(command("SHELL", script), timeout_s=2, grace_s=2)
    assert time.monotonic() - started < 10  # not the 100 s the script would sleep
    assert outcome.timed_out and not outcome.stopped
    assert outcome.exit_code is None
    assert gone(pid_after("grandchild ", outcome.log))
    assert gone(outcome.pid)


def test_timeout_escalates_to_sigkill_after_the_grace_period() -> None:
    script = "trap '' TERM\necho ready\nsleep 100\n"
    started = time.monotonic()
    # Long enough for bash to set its trap before the SIGTERM, on a loaded machine.
    outcome = run(command("SHELL", script), timeout_s=2, grace_s=0.5)
    elapsed = time.monotonic() - started
    assert 2.5 <= elapsed < 10  # SIGTERM ignored: SIGKILL after the grace period
    assert outcome.timed_out and outcome.exit_code is None
    assert outcome.log == "ready\n"


def test_stop_from_another_thread() -> None:
    attempt = Attempt(command("SHELL", 'sleep 100 &\necho "grandchild $!"\nsleep 100\n'), ENV, 30)
    attempt.start()
    deadline = time.monotonic() + 5
    while "grandchild" not in attempt.log_so_far() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert attempt.log_so_far().startswith("grandchild ")
    timer = threading.Timer(0.2, attempt.stop)
    started = time.monotonic()
    timer.start()
    outcome = attempt.wait()
    timer.join()
    assert time.monotonic() - started < 3
    assert outcome.stopped and not outcome.timed_out
    assert outcome.exit_code is None
    assert gone(pid_after("grandchild ", outcome.log))
    attempt.stop()  # after the end: nothing happens


def test_stop_before_start_kills_at_once() -> None:
    attempt = Attempt(command("SHELL", "sleep 100"), ENV, 30)
    attempt.stop()
    attempt.start()
    outcome = attempt.wait()
    assert outcome.stopped and outcome.exit_code is None


def test_what_the_main_process_leaves_behind_is_killed() -> None:
    script = 'sleep 100 &\necho "grandchild $!"\nexit 0\n'
    started = time.monotonic()
    outcome = run(command("SHELL", script))
    assert time.monotonic() - started < 3
    assert outcome.exit_code == 0 and outcome.succeeded
    assert gone(pid_after("grandchild ", outcome.log))


def test_log_cap_keeps_the_beginning_and_notes_the_rest() -> None:
    script = "head -c 5000 /dev/zero | tr '\\0' a\necho\necho tail\n"
    outcome = run(command("SHELL", script), log_cap=100)
    assert outcome.log == "a" * 100 + "\n... [log truncated: 4906 bytes dropped]\n"
    assert outcome.exit_code == 0


def test_invalid_utf8_is_replaced() -> None:
    outcome = run(command("SHELL", "printf 'ok \\377\\n'"))
    assert outcome.log == "ok \ufffd\n"


def test_a_program_that_does_not_exist(private_tmp: Path) -> None:
    attempt = Attempt(Command(("/nonexistent/dwsched-runner", "{script}"), "x"), ENV, 10)
    with pytest.raises(FileNotFoundError):
        attempt.start()
    assert list(private_tmp.iterdir()) == []


def test_process_identity_of_a_live_and_a_dead_process() -> None:
    me = process_identity(os.getpid())
    assert me is not None and me.startswith(f"{os.getpid()}")
    assert process_alive(os.getpid(), me)
    assert not process_alive(os.getpid(), f"{os.getpid()}:0")

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(100)"])
    identity = process_identity(child.pid)
    assert identity is not None and identity != me
    assert process_alive(child.pid, identity)
    child.kill()
    child.wait()
    assert process_identity(child.pid) is None
    assert not process_alive(child.pid, identity)
    assert process_identity(0) is None


def test_kill_group_ignores_a_missing_group() -> None:
    child = subprocess.Popen(["sleep", "100"], start_new_session=True)
    kill_group(child.pid)
    assert child.wait(timeout=5) == -9
    kill_group(child.pid)


def test_supplied_values_reach_shell_code_as_its_variable_and_other_code_only_plain() -> None:
    assert render_for("DIDE_SHELL", {})("x", "2025-01-31") == "2025-01-31"
    assert render_for("DIDE_SHELL", {})("x", "$(id)") == "${DWSCHED_PARAM_x}"
    assert render_for("PYTHON", {})("x", "a'b") == "a\\x27b"
    for render in (render_for("ODPS_SQL", {}), render_for("DIDE_SHELL", {"DIDE_SHELL": "x"})):
        assert render("x", "20250131") == "20250131"
        with pytest.raises(UnsafeValue, match="DWSCHED_PARAM_x"):
            render("x", "1;drop")


def test_arguments_follow_the_script() -> None:
    cmd = command("SHELL", 'printf "%s|" "$@"').with_arguments(["a b", "$(id)", "*"])
    assert run(cmd).log == "a b|$(id)|*|"
    line = command("ODPS_SQL", "", {"ODPS_SQL": 'printf "%s|" "$0" "$@"'})
    assert run(line.with_arguments(["1", "2"])).log == "dwsched-task|1|2|"


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_an_attempt_runs_as_the_task_user_in_a_directory_it_owns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = task_user(None)
    assert user is not None
    root = tempfile.mkdtemp(dir="/tmp")  # enterable by all, as /tmp (pytest's is root's only)
    os.chmod(root, 0o755)
    monkeypatch.setattr(tempfile, "tempdir", root)
    script = 'id -u; id -G; touch "$HOME/mine" && echo wrote; cat /etc/shadow || echo denied'
    try:
        outcome = run(command("SHELL", script), user=user, home=True)
    finally:
        os.rmdir(root)
    uid, groups, *rest = outcome.log.splitlines()
    assert int(uid) == user.uid and groups.split() == [str(user.gid)], outcome.log
    assert "wrote" in rest and "denied" in rest, outcome.log
