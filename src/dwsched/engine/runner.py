"""Running one task attempt as a local process, and recognising that process later.

`command_for` decides what a process task type runs (or why it cannot: a `Refusal`); an
`Attempt` runs it once: the content is written
to a file in a private temporary directory, the process starts in its own process group with
exactly the environment the caller built, stdout and stderr are captured together (capped),
and `wait` returns an `Outcome` once the process has exited, timed out or been stopped.

The attempt ends when its main process exits. Anything still running in its process group
then is killed, so no stray process outlives the attempt or holds its log open. A process that
left the group (`setsid`) is not followed.

With a `TaskUser`, the process runs as that unprivileged OS user (the attempt's directory is
given to it), so it cannot read what the server can: the database file, the server key, the
server's /proc. Its environment is only what the caller passes.

`render_for` tells how a task type's code reads a value a run request supplied
(domain.parameters: data, never code): bash reads it from its environment variable, Python
from an escaped literal, and a type dwsched does not know takes only plain values.

`process_identity` and `process_alive` let an engine that restarted tell whether a recorded
pid is still the attempt's process rather than a new process that reused the pid. No database
code here.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dwsched.domain.parameters import BASH_TYPES, PARAM_PREFIX, Render, is_plain, python_literal

SCRIPT = "{script}"
DEFAULT_GRACE_S = 3.0
DEFAULT_LOG_CAP = 1_000_000
SHELL_TYPES = BASH_TYPES
PYTHON_TYPES = frozenset({"PYTHON"})
VIRTUAL_TYPES = frozenset({"VIRTUAL"})

_READ_SIZE = 65_536
_POLL_MS = 100
_DRAIN_S = 2.0  # how long to wait for the log pipe to close after the group is gone


@dataclass(frozen=True, slots=True)
class Command:
    """What an attempt runs.

    `{script}` in `argv` stands for the path of a file holding `script`. An element that is
    exactly `{script}` becomes the path; `{script}` inside a longer element (a shell command
    line, as in `("bash", "-c", "cat {script}")`) becomes the shell-quoted path.
    `filename` names that file (its suffix helps interpreters and tracebacks).
    """

    argv: tuple[str, ...]
    script: str | None
    filename: str = "script"

    def with_arguments(self, arguments: Sequence[str]) -> Command:
        """The command with `arguments` after it: `$1 ... $N` of a script, `sys.argv[1:]`
        of Python; a configured runner's `bash -c` line reads them as `"$@"`."""
        if not arguments:
            return self
        return Command((*self.argv, *arguments), self.script, self.filename)


@dataclass(frozen=True, slots=True)
class TaskUser:
    """The OS user tasks run as, and its primary group."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attempt cannot run: the message it fails with (without a final newline).

    A type of its own, so that a result that may be a Command or a Refusal is told apart by
    its type, never by being a string."""

    message: str

    def __str__(self) -> str:
        return self.message


class UnsafeValue(Exception):
    """A supplied value cannot reach code of this language safely."""

    def __init__(self, name: str, task_type: str) -> None:
        super().__init__(
            f"dwsched: the value of the parameter {name} came with the run request and holds "
            f"characters other than letters, digits and _.:,+/%- ; dwsched does not paste such "
            f"a value into {task_type} code. The task reads it from its environment variable "
            f"{PARAM_PREFIX}{name} (or as an argument) instead; or pass a plain value."
        )
        self.name = name


def shell_variable(name: str, value: str) -> str:
    """A Render for bash: a plain value as it is; otherwise an expansion of the task's
    environment variable holding it, `${DWSCHED_PARAM_name}`, which bash reads as data (in
    double quotes exactly; inside single quotes it stays the literal reference)."""
    return value if is_plain(value) else "${" + PARAM_PREFIX + name + "}"


def strict(task_type: str) -> Render:
    """A Render for a language dwsched does not know: plain values only (UnsafeValue)."""

    def render(name: str, value: str) -> str:
        if not is_plain(value):
            raise UnsafeValue(name, task_type)
        return value

    return render


def render_for(task_type: str, configured: Mapping[str, str]) -> Render:
    """How supplied values appear in the code of `task_type` (domain.parameters)."""
    if task_type in configured:
        return strict(task_type)
    if task_type in SHELL_TYPES:
        return shell_variable
    if task_type in PYTHON_TYPES:
        return python_literal
    return strict(task_type)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended.

    `exit_code` is None when the process was ended by a signal (a timeout, a stop, or anything
    else that killed it) and its own exit status otherwise. `log` is stdout and stderr
    interleaved, decoded as UTF-8 (invalid bytes replaced), capped.
    """

    exit_code: int | None
    timed_out: bool
    stopped: bool
    log: str
    pid: int

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.stopped


def runner_variable(task_type: str) -> str:
    """The environment variable that configures how `task_type` runs: DWSCHED_RUNNER_<TYPE>."""
    return "DWSCHED_RUNNER_" + re.sub(r"[^A-Z0-9]", "_", task_type.upper())


def command_for(
    task_type: str, content: str, configured: Mapping[str, str]
) -> Command | Refusal | None:
    """What a task of `task_type` with `content` runs as a process.

    None for VIRTUAL (nothing runs; the attempt succeeds at once, with no log). A Command for a
    type in `configured` (type -> shell command line containing `{script}`, run by bash; this
    also overrides the built-in types), for DIDE_SHELL and SHELL (bash runs the content) and
    for PYTHON (python3 from PATH, unbuffered; this interpreter when there is no python3).
    Otherwise a Refusal saying how to configure the type (`unconfigured`): never a silent
    success.
    """
    if task_type in VIRTUAL_TYPES:
        return None
    template = configured.get(task_type)
    if template is not None:
        if not template.strip():
            return Refusal(
                f"The runner for task type {task_type} is configured as an empty command."
            )
        # bash -c LINE NAME ARGS...: NAME is $0, the arguments "$@".
        return Command(("bash", "-c", template, "dwsched-task"), content)
    if task_type in SHELL_TYPES:
        return Command(("bash", SCRIPT), content, "script.sh")
    if task_type in PYTHON_TYPES:
        # Found on the task's PATH (its user may not reach this server's interpreter).
        return Command(("python3", "-u", SCRIPT), content, "script.py")
    return unconfigured(task_type)


def unconfigured(task_type: str) -> Refusal:
    """Why a task type dwsched has no runner for cannot run, and how to configure one."""
    variable = runner_variable(task_type)
    return Refusal(
        f"dwsched cannot run task type {task_type}: no runner is configured for it. Set the "
        f"environment variable {variable} to a shell command that runs the file {SCRIPT} "
        f"holding the task's code, e.g. {variable}='my-client -f {SCRIPT}'."
    )


class Attempt:
    """One run of a Command: `start`, then `wait` (once); `stop` and `log_so_far` from any
    thread.

    `env` is the child's whole environment. `timeout_s` counts from `start`; on a timeout the
    process group gets SIGTERM, then SIGKILL after `grace_s`. `cwd` defaults to the attempt's
    temporary directory, which (with the script) is removed when `wait` returns, or when
    `start` fails. With `user`, the directory and the script belong to that user and the
    process runs as it (no supplementary groups, umask 077). With `home`, HOME is the
    attempt's directory. With `sandbox`, it runs inside bubblewrap (`sandboxed`).
    """

    def __init__(
        self,
        command: Command,
        env: Mapping[str, str],
        timeout_s: float | None,
        log_cap: int = DEFAULT_LOG_CAP,
        cwd: str | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        user: TaskUser | None = None,
        home: bool = False,
        sandbox: bool = False,
    ) -> None:
        self._user = user
        self._home = home
        self._sandbox = sandbox
        self._command = command
        self._env = dict(env)
        self._timeout_s = timeout_s
        self._log = _CappedLog(log_cap)
        self._cwd = cwd
        self._grace_s = grace_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._abandon = threading.Event()
        self._tmpdir: str | None = None
        self._exited = False
        self._stop_requested = False
        self._stopped = False

    @property
    def pid(self) -> int | None:
        """The process's pid (also its process group id) once started."""
        proc = self._proc
        return None if proc is None else proc.pid

    def start(self) -> int:
        """Spawn the process in its own session and process group; its pid.

        OSError when it cannot be started (e.g. the program does not exist).
        """
        with self._lock:
            if self._proc is not None:
                raise RuntimeError("This attempt has already started.")
            self._tmpdir = tempfile.mkdtemp(prefix="dwsched-attempt-")
            try:
                argv = self._argv(self._tmpdir)
                cwd = self._cwd if self._cwd is not None else self._tmpdir
                if self._sandbox:
                    argv = sandboxed(argv, self._tmpdir, cwd)
                identity: dict[str, object] = {}
                if self._user is not None:
                    _give(self._tmpdir, self._user)
                    identity = {
                        "user": self._user.uid,
                        "group": self._user.gid,
                        "extra_groups": [],
                        "umask": 0o077,
                    }
                env = dict(self._env)
                if self._home:
                    env["HOME"] = self._tmpdir
                read_fd, write_fd = os.pipe()
                try:
                    self._proc = subprocess.Popen(  # type: ignore[call-overload]
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=write_fd,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=cwd,
                        start_new_session=True,
                        close_fds=True,
                        **identity,
                    )
                except BaseException:
                    os.close(read_fd)
                    raise
                finally:
                    os.close(write_fd)
            except BaseException:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                raise
            self._reader = threading.Thread(
                target=self._read, args=(read_fd,), name=f"attempt-log-{self._proc.pid}"
            )
            self._reader.daemon = True
            self._reader.start()
            if self._stop_requested:
                self._kill_locked()
            return self._proc.pid

    def wait(self) -> Outcome:
        """Block until the process exits, times out or is stopped; the Outcome."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("This attempt has not started.")
        timed_out = False
        try:
            proc.wait(timeout=self._timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout=self._grace_s)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait()
        with self._lock:
            self._exited = True
            stopped = self._stopped
        # The main process is gone: end whatever it left behind in its group.
        kill_group(proc.pid)
        self._finish_log()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        code = proc.returncode
        return Outcome(
            exit_code=None if timed_out or stopped or code < 0 else code,
            timed_out=timed_out and not stopped,
            stopped=stopped,
            log=self._log.text(),
            pid=proc.pid,
        )

    def stop(self) -> None:
        """Kill the process group now (SIGKILL); `wait` then reports `stopped`. Before `start`,
        the attempt is killed as soon as it starts; after it has ended, nothing happens."""
        with self._lock:
            self._stop_requested = True
            if self._proc is not None and not self._exited:
                self._kill_locked()

    @property
    def exited(self) -> bool:
        """Whether the process has ended (and been reaped)."""
        with self._lock:
            return self._exited

    def log_so_far(self) -> str:
        """The output captured up to now (with a truncation note when capped)."""
        return self._log.text()

    def _kill_locked(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._stopped = True
            kill_group(self._proc.pid)

    def _signal_group(self, sig: signal.Signals) -> None:
        with self._lock, contextlib.suppress(ProcessLookupError):
            if self._proc is not None:
                os.killpg(self._proc.pid, sig)

    def _argv(self, tmpdir: str) -> list[str]:
        command = self._command
        if command.script is None:
            return list(command.argv)
        path = os.path.join(tmpdir, command.filename)
        with open(path, "w", encoding="utf-8") as f:
            f.write(command.script)
        quoted = shlex.quote(path)
        return [path if arg == SCRIPT else arg.replace(SCRIPT, quoted) for arg in command.argv]

    def _read(self, fd: int) -> None:
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
            while True:
                if not poller.poll(_POLL_MS):
                    if self._abandon.is_set():
                        return
                    continue
                chunk = os.read(fd, _READ_SIZE)
                if not chunk:
                    return
                self._log.append(chunk)
        finally:
            os.close(fd)

    def _finish_log(self) -> None:
        reader = self._reader
        if reader is None:
            return
        reader.join(_DRAIN_S)
        # Something outside the group still holds the pipe: stop reading rather than hang.
        self._abandon.set()
        reader.join()


BWRAP = (
    "bwrap",
    "--ro-bind", "/", "/",
    "--dev", "/dev",
    "--proc", "/proc",
    "--tmpfs", "/tmp",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--die-with-parent",
)  # fmt: skip


def sandboxed(argv: Sequence[str], directory: str, cwd: str) -> list[str]:
    """`argv` run by bubblewrap: the file system read-only but for the attempt's
    `directory`, a /tmp of its own, a /proc that shows only its own processes (not the
    server's, nor other tasks'), its own IPC and host name. Its processes die with it."""
    return [*BWRAP, "--bind", directory, directory, "--chdir", cwd, "--", *argv]


def _give(directory: str, user: TaskUser) -> None:
    """Hand the attempt's directory and what is in it to the task's user."""
    os.chown(directory, user.uid, user.gid)
    for name in os.listdir(directory):
        os.chown(os.path.join(directory, name), user.uid, user.gid)


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid`; nothing if there is no such group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def process_identity(pid: int) -> str | None:
    """A string naming the live process `pid` that a later process reusing the pid does not
    share, or None when no such process is running (a zombie counts as gone).

    On Linux: `<pid>:<start time>` from /proc/<pid>/stat (field 22, clock ticks since boot).
    Elsewhere only `<pid>`, which cannot tell a reused pid apart.
    """
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", errors="replace")
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None
        return str(pid) if _signalable(pid) else None
    except OSError:
        return None
    # Field 2 (comm) is parenthesised and may contain spaces or ")": split after the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    # fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return f"{pid}:{fields[19]}"


def process_alive(pid: int, identity: str) -> bool:
    """Whether `pid` is still the live process `process_identity` described as `identity`."""
    return process_identity(pid) == identity


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _CappedLog:
    """Bytes kept up to `cap`, the rest counted; thread-safe."""

    def __init__(self, cap: int) -> None:
        self._cap = max(0, cap)
        self._kept = bytearray()
        self._dropped = 0
        self._lock = threading.Lock()

    def append(self, chunk: bytes) -> None:
        with self._lock:
            room = self._cap - len(self._kept)
            if room > 0:
                self._kept += chunk[:room]
            self._dropped += max(0, len(chunk) - max(0, room))

    def text(self) -> str:
        with self._lock:
            kept, dropped = bytes(self._kept), self._dropped
        text = kept.decode("utf-8", errors="replace")
        if dropped:
            newline = "" if not text or text.endswith("\n") else "\n"
            text += f"{newline}... [log truncated: {dropped} bytes dropped]\n"
        return text
