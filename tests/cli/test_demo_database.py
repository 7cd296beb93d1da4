"""One demo to a database: a second `dwsched demo` on the database of a running demo or
serve refuses in one line, before it prints, changes or starts anything (the first demo's
password and key keep working); the banner points the database's commands at it; the
demo's stderr holds no INFO log lines between the feed's."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from dwsched.cli.serve import check_free, database_claim
from tests.cli.helpers import clean_error, cli_env, dwsched_process, invoke, ok, run_cli
from tests.support.server import free_port

# A line of Python logging's text format, or of uvicorn's own.
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} |INFO:)", re.MULTILINE)


def test_a_second_demo_on_a_running_demos_database_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'dwsched-demo.db'}"
    port = free_port()
    with dwsched_process("demo", "--quiet", "--db", db, "--port", str(port)) as first:
        first.wait_for(lambda: "Ctrl-C" in first.stdout, "the demo banner")
        first.wait_listening(port)
        pid = first.popen.pid
        password = re.search(r"password (\S+)", first.stdout)
        assert password, first.stdout

        # on another port, and on the same port (the database is what is said)
        for other in (free_port(), port):
            result = clean_error(
                invoke("demo", "--db", db, "--port", str(other)),
                f"/dwsched-demo.db is the database of a running dwsched demo (pid {pid})",
                f"--db sqlite:///{tmp_path / 'dwsched-demo-2.db'}",
            )
            assert len(result.output.strip().splitlines()) == 1, result.output
            assert "password" not in result.output and "AccessKey" not in result.output
        # nothing changed: still the first demo's one key
        keys = ok(invoke("keys", "list", "--db", db)).output
        assert len(re.findall(r"LTAI\w+", keys)) == 1, keys

        # a demo on a database of its own, on the taken port: told both
        result = clean_error(
            invoke("demo", "--db", f"sqlite:///{tmp_path / 'b.db'}", "--port", str(port)),
            f"127.0.0.1:{port} is already in use",
            "a second demo needs its own --db too",
        )
        assert not (tmp_path / "b.db").exists()

        # the banner's export points the database's commands at the demo's, from any folder
        m = re.search(r"^  export DWSCHED_DATABASE_URL=(\S+)$", first.stdout, re.MULTILINE)
        assert m and m.group(1) == db, first.stdout
        assert re.search(r"^  \S*dwsched workers list\s+# reads the database", first.stdout, re.M)
        listed = run_cli("workers", "list", env=cli_env(DWSCHED_DATABASE_URL=m.group(1)))
        assert listed.returncode == 0, listed.stderr.decode()
        assert "Alive" in listed.stdout.decode()  # its worker registered: INFO lines were due

        with pytest.raises(click.ClickException, match="running dwsched demo"):
            check_free(db)
        assert first.interrupt() == 0, first.stderr
    # the INFO lines of the scheduler and of uvicorn are not the demo's voice
    assert not LOG_LINE.search(first.stderr), first.stderr
    assert "Traceback" not in first.stderr
    check_free(db)  # the lock went with the process


def test_a_demo_on_a_running_servers_database_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'dwsched.db'}"
    port = free_port()
    with dwsched_process("serve", "--no-engine", "--db", db, "--port", str(port)) as server:
        server.wait_listening(port)
        result = clean_error(
            invoke("demo", "--db", db, "--port", str(free_port())),
            f"is the database of a running dwsched serve (pid {server.popen.pid})",
            f"--db sqlite:///{tmp_path / 'dwsched-2.db'}",
        )
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert server.interrupt() == 0, server.stderr


def test_serves_share_a_database_and_a_demo_has_it_alone(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    with database_claim(db, demo=False), database_claim(db, demo=False):
        with pytest.raises(click.ClickException, match="is the database of a running dwsched"):
            check_free(db)
    with database_claim(db, demo=True):
        with database_claim(db, demo=False):  # a serve beside a demo goes on, unlocked
            pass
        with pytest.raises(click.ClickException, match="running dwsched"):
            check_free(db)
    check_free(db)
    check_free("sqlite:///:memory:")
    check_free(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()
