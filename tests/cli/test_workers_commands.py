"""`dwsched workers` and `dwsched resource-groups` on a database (SQLite file and
PostgreSQL): slot limits set once are rows every worker reads; workers are listed from their
rows, with what they serve, their heartbeat and state, their names escaped."""

from __future__ import annotations

from dwsched.clock import SystemClock
from dwsched.domain.workers import STALE_MS, WorkerRecord
from dwsched.store import Store
from tests.cli.helpers import clean_error, invoke, ok, option_blocks

WIDE = {"COLUMNS": "300"}


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines() if line.strip()]


def test_resource_group_slots_are_set_listed_and_unset(db_url: str) -> None:
    db = ("--db", db_url)
    assert ["*", "4", "(default)"] in _rows(ok(invoke("resource-groups", "list", *db)).output)
    said = ok(invoke("resource-groups", "set", "etl", "--slots", "2", *db)).output
    assert "resource group etl: 2 slots (was 4, the default)" in said
    said = ok(invoke("resource-groups", "set", "etl", "--slots", "1", *db)).output
    assert "(was 2)" in said
    ok(invoke("resource-groups", "set", "-", "--slots", "3", *db))  # nodes naming no group
    ok(invoke("resource-groups", "set", "*", "--slots", "6", *db))
    rows = _rows(ok(invoke("resource-groups", "list", *db)).output)
    assert ["etl", "1"] in rows and ["-", "3"] in rows and ["*", "6"] in rows
    # The rows the claims read (Store.claim_tasks), whatever process set them.
    with Store.open(db_url) as store, store.read() as tx:
        limits = {g.name: g.slots for g in tx.resource_groups.all()}
    assert limits == {"etl": 1, "": 3, "*": 6}
    assert "back to the default" in ok(invoke("resource-groups", "unset", "etl", *db)).output
    clean_error(invoke("resource-groups", "unset", "etl", *db), "has no limit of its own")
    assert ["etl", "1"] not in _rows(ok(invoke("resource-groups", "list", *db)).output)


def test_resource_group_slots_must_be_at_least_one(db_url: str) -> None:
    clean_error(invoke("resource-groups", "set", "etl", "--slots", "0", "--db", db_url), "0")
    clean_error(invoke("resource-groups", "set", "etl", "--db", db_url), "--slots")


def test_workers_list_shows_each_worker_from_its_row(db_url: str) -> None:
    now = SystemClock().now_ms()

    def worker(name: str, **fields: object) -> WorkerRecord:
        base: dict[str, object] = {
            "name": name,
            "host": "node-1",
            "pid": 4242,
            "process": "4242:99",
            "groups": None,
            "slots": 4,
            "started_at": now - 1000,
            "heartbeat_at": now - 1000,
        }
        base.update(fields)
        return WorkerRecord(**base)  # type: ignore[arg-type]

    with Store.open(db_url) as store, store.write() as tx:
        tx.workers.register(worker("alive-one", groups=("etl", "")))
        tx.workers.register(worker("silent-one", heartbeat_at=now - STALE_MS - 5000, pid=7))
        tx.workers.register(worker("stopped-one", stopped_at=now))
        tx.workers.register(worker("draining-one", draining=True))
        tx.workers.register(worker("evil\x1b[2Jname"))
    rows = _rows(ok(invoke("workers", "list", "--db", db_url, env=WIDE)).output)
    # Name, host, pid, groups, slots, heartbeat age (N s ago), state, attempts running.
    shown = {r[0]: (r[1:5], r[-3:]) for r in rows}
    assert shown["alive-one"] == (["node-1", "4242", "etl,-", "4"], ["ago", "Alive", "0"])
    assert shown["silent-one"] == (["node-1", "7", "all", "4"], ["ago", "Silent", "0"])
    assert any(r[0] == "draining-one" and "Draining" in r for r in rows)
    assert not any(r[0] == "stopped-one" for r in rows)
    assert any(r[0] == "evil\\x1b[2Jname" for r in rows), rows  # escaped, not acted on
    everything = _rows(ok(invoke("workers", "list", "--all", "--db", db_url, env=WIDE)).output)
    assert any(r[0] == "stopped-one" and "Stopped" in r for r in everything)


def test_worker_help_says_what_groups_and_group_slots_do() -> None:
    blocks = option_blocks(ok(invoke("worker", "--help")).output)
    assert "env var: DWSCHED_SERVED_GROUPS" in blocks["--groups"]
    assert "Claim only task instances of these resource groups" in blocks["--groups"]
    assert "env var: DWSCHED_GROUP_SLOTS" in blocks["--group-slots"]
    assert "The limits are shared rows" in blocks["--group-slots"]
    assert "stay after this process stops" in blocks["--group-slots"]
    assert "resource-groups" in ok(invoke("--help")).output
    assert "workers" in ok(invoke("--help")).output
