"""Commands that work on the database (`--db`, not the endpoint) and only read or change
what is there refuse a SQLite file that does not exist, in one line, instead of creating an
empty database and showing nothing: a newcomer in the demo's folder with the demo's
endpoint exported but not its database. That is the default database's or
DWSCHED_DATABASE_URL's; a --db typed on the command line may name a new file, and commands
that create may create it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import clean_error, invoke, ok

READING = [
    ("alerts", "rules"),
    ("alerts", "history"),
    ("projects", "list"),
    ("projects", "show", "1"),
    ("audit",),
    ("keys", "list"),
    ("keys", "disable", "LTAIx"),
    ("users", "list"),
    ("users", "delete", "someone"),
    ("groups", "list"),
    ("policies", "list"),
    ("workers", "list"),
    ("resource-groups", "list"),
    ("export", "--project", "1"),
    ("db", "current"),
]


@pytest.mark.parametrize("args", READING, ids=" ".join)
def test_a_command_that_reads_refuses_a_missing_database(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    missing = tmp_path / "nothing-here.db"
    result = clean_error(
        invoke(*args, env={"DWSCHED_DATABASE_URL": f"sqlite:///{missing}"}),
        f"no database at {missing}: give --db (or DWSCHED_DATABASE_URL)",
    )
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert list(tmp_path.iterdir()) == []


def test_the_default_database_is_named_as_the_working_directorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    clean_error(invoke("keys", "list"), "no database at ./dwsched.db: give --db")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [("users", "create", "ana"), ("projects", "create", "--name", "sales"), ("db", "upgrade")],
    ids=" ".join,
)
def test_a_command_that_creates_may_create_the_database(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'new.db'}"
    ok(invoke(*args, env={"DWSCHED_DATABASE_URL": db}))
    assert (tmp_path / "new.db").exists()
    ok(invoke("users", "list", env={"DWSCHED_DATABASE_URL": db}))


def test_a_database_typed_on_the_command_line_may_be_new(tmp_path: Path) -> None:
    ok(invoke("keys", "list", "--db", f"sqlite:///{tmp_path / 'typed.db'}"))
    assert (tmp_path / "typed.db").exists()
