"""Who tasks run as, and what they start with: the boundary between the control plane and
the code it runs (docs/security.md).

A task is code a Developer deployed; the server holds every workspace's data and the server
key. When the server runs as root (containers, CI) tasks run as an unprivileged user,
`dwsched-task` by default, created on first use, so that they cannot read the database file,
the server key, or the server's /proc. A server that is not root runs them as itself unless
it may switch users (CAP_SETUID), and says loudly at start that they share its identity.

Tasks start from a minimal environment: PATH and LANG of the server, and the variables the
operator names in `--task-env`; never the server's settings, database URL or keys. With
`--task-sandbox` they also run inside bubblewrap (engine.runner.sandboxed).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from dwsched.domain.errors import InvalidArgument
from dwsched.engine.runner import TaskUser, sandboxed
from dwsched.engine.worker import DEFAULT_TASK_PATH

log = logging.getLogger("dwsched.isolation")
DEFAULT_TASK_USER = "dwsched-task"
SAME_USER = "same"  # --task-user same: tasks run as the server's own user (not isolated)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


def task_user(requested: str | None, euid: int | None = None) -> TaskUser | None:
    """The user tasks run as: `requested` (an existing user; `dwsched-task` is created when
    missing), or by default `dwsched-task` when this process is root and its own user
    otherwise (None). `same` is its own user explicitly. InvalidArgument (--task-user) when
    the user does not exist or this process may not run processes as it."""
    euid = os.geteuid() if euid is None else euid
    name = requested or (DEFAULT_TASK_USER if euid == 0 else SAME_USER)
    if name == SAME_USER:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if name != DEFAULT_TASK_USER or euid != 0:
            raise InvalidArgument(
                "--task-user",
                f"There is no OS user {name!r} to run tasks as; create it (e.g. `useradd "
                f"--system --no-create-home --shell /usr/sbin/nologin {name}`) or name "
                "another.",
            ) from None
        entry = _create(name)
    user = TaskUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    if user.uid == 0:
        log.warning("task_user user=%s is root: tasks are not isolated from dwsched", name)
        return None
    _check_switch(user)
    return user


def check_sandbox(user: TaskUser | None) -> None:
    """InvalidArgument (--task-sandbox) unless bubblewrap can run a process here, as the
    task user when there is one."""
    if shutil.which("bwrap") is None:
        raise InvalidArgument(
            "--task-sandbox",
            "--task-sandbox needs bubblewrap: install it (Debian: apt-get install bubblewrap).",
        )
    directory = tempfile.mkdtemp(prefix="dwsched-sandbox-check-")
    try:
        identity: dict[str, Any] = {}
        if user is not None:
            os.chown(directory, user.uid, user.gid)
            identity = {"user": user.uid, "group": user.gid, "extra_groups": []}
        done = subprocess.run(
            sandboxed(["true"], directory, directory),
            env={"PATH": DEFAULT_TASK_PATH},
            capture_output=True,
            text=True,
            check=False,
            **identity,
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if done.returncode != 0:
        raise InvalidArgument(
            "--task-sandbox",
            f"bubblewrap cannot run tasks here: {done.stderr.strip()} (it needs user "
            "namespaces, or to run as root).",
        )


def shared_warning(user: TaskUser | None, files: Iterable[str]) -> str | None:
    """What to say loudly at start when tasks run as this process's own user (None when
    they do not)."""
    if user is not None:
        return None
    me = pwd.getpwuid(os.geteuid()).pw_name
    shown = ", ".join(f for f in files if f) or "the database and the server key"
    return (
        f"WARNING: TASKS ARE NOT ISOLATED. They run as {me}, the OS user of this dwsched, "
        f"and can read what it can: {shown}. Any Developer can then take over the tenant. "
        f"Run dwsched as root (tasks then run as --task-user, default {DEFAULT_TASK_USER}), "
        "or give it CAP_SETUID and CAP_SETGID and name --task-user; see docs/security.md."
    )


def task_base_environment(environ: Mapping[str, str], passed: Iterable[str]) -> dict[str, str]:
    """What every task's environment starts from: PATH and LANG (defaults when unset), and
    the variables named in `passed` that `environ` has. InvalidArgument (--task-env) for a
    name of dwsched's own settings, which never reach a task."""
    env = {
        "PATH": environ.get("PATH") or DEFAULT_TASK_PATH,
        "LANG": environ.get("LANG") or "C.UTF-8",
    }
    for name in passed:
        if name.startswith("DWSCHED_") or name == "ALIBABA_CLOUD_ACCESS_KEY_SECRET":
            raise InvalidArgument(
                "--task-env",
                f"The variable {name} is one of dwsched's settings or secrets; tasks never get it.",
            )
        if name in environ:
            env[name] = environ[name]
    return env


def _create(name: str) -> pwd.struct_passwd:
    if not set(name) <= _NAME_CHARS or shutil.which("useradd") is None:
        raise InvalidArgument(
            "--task-user",
            f"The OS user {name!r} does not exist and cannot be created here (no useradd); "
            "create it or name another with --task-user.",
        )
    shell = "/usr/sbin/nologin" if os.path.exists("/usr/sbin/nologin") else "/bin/false"
    command = ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent"]
    done = subprocess.run(
        [*command, "--shell", shell, name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise InvalidArgument(
            "--task-user",
            f"Could not create the OS user {name!r} for tasks: {done.stderr.strip()}",
        ) from None
    log.info("task_user_created user=%s uid=%s", name, entry.pw_uid)
    return entry


def _check_switch(user: TaskUser) -> None:
    try:
        subprocess.run(
            ["true"],
            user=user.uid,
            group=user.gid,
            extra_groups=[],
            env={"PATH": DEFAULT_TASK_PATH},
            cwd="/",
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise InvalidArgument(
            "--task-user",
            f"This process cannot run tasks as {user.name!r} ({exc}); run dwsched as root or "
            "with CAP_SETUID and CAP_SETGID, or pass --task-user same to run tasks as "
            "dwsched's own user (not isolated).",
        ) from exc
