"""Import throughput into SQLite: in-process `import_lines` and the `dwsched import` CLI.

Generates N realistic workflow instances (several workspaces, 30 BizDates, daily layers of
workflows, Prod/Dev, every instance type, a status mix with NotRun/Running rows that have no
finish, two to four tags each) as a JSON Lines file in the import format, then times:

1. in-process: `dwsched.runtime.transfer.import_lines` into a fresh, migrated SQLite store
   (reading and validating the file is timed; opening and migrating the database is not);
0. first, for scale: the store writing rows decoded beforehand (SQLite's own cost, the
   ceiling of any importer with this schema);
2. the CLI: `dwsched import --db sqlite:///fresh.db FILE` as a subprocess, wall clock, so it
   includes interpreter start-up and migration; the start-up cost is measured on an empty file
   and reported too.

The target is at least 50,000 instances/s into SQLite.

    .venv/bin/python bench/import_throughput.py [--count 200000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from dwsched.domain.models import NewProject
from dwsched.runtime.transfer import _chunks, _Decoder, import_lines
from dwsched.store import Store

TARGET = 50_000
MINUTE = 60_000
LAYERS = ("ods", "dwd", "dws", "ads")
SUBJECTS = (
    "orders", "payments", "users", "inventory", "shipments", "clicks", "refunds", "coupons",
    "sessions", "reviews", "carts", "returns", "stores", "sellers", "campaigns", "devices",
)  # fmt: skip
CADENCES = ("daily", "hourly_agg", "snapshot", "incr", "full")
TEAMS = ("growth", "finance", "logistics", "risk", "marketing")
OWNERS = tuple(str(203045001 + n) for n in range(12))
TYPES = (
    ("Normal", 0.86),
    ("SupplementData", 0.06),
    ("Manual", 0.02),
    ("ManualWorkflow", 0.02),
    ("SmokeTest", 0.02),
    ("TriggerWorkflow", 0.02),
)
ZONES = ("Asia/Shanghai", "Asia/Shanghai", "Europe/Berlin", "America/New_York")


def _day_start_ms(day: date, tz: str) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def generate(count: int, path: Path, seed: int = 20250331) -> dict[int, str]:
    """Write `count` instances to `path`; return the workspaces' zones (created beforehand)."""
    rng = random.Random(seed)
    n_projects = len(ZONES)
    zones = {9000 + p: ZONES[p] for p in range(n_projects)}
    days = 30
    per_day_project = -(-count // (days * n_projects))
    workflows = [
        f"{layer}_{subject}_{cadence}"
        for layer in LAYERS
        for subject in SUBJECTS
        for cadence in CADENCES
    ]
    type_names = [t for t, _ in TYPES]
    type_weights = [w for _, w in TYPES]
    encoder = msgspec.json.Encoder()
    first_day = date(2025, 3, 1)
    now_ms = _day_start_ms(first_day + timedelta(days=days), "UTC") + 9 * 60 * MINUTE
    next_id = 1
    with path.open("wb") as out:
        buffer: list[bytes] = []
        for back in range(days):
            day = first_day + timedelta(days=back)
            for project_id, tz in zones.items():
                run_day = _day_start_ms(day + timedelta(days=1), tz)
                for k in range(per_day_project):
                    if next_id > count:
                        break
                    wf = k % len(workflows)
                    name = workflows[wf]
                    layer = name.split("_", 1)[0]
                    kind = rng.choices(type_names, type_weights)[0]
                    env = "Dev" if kind == "SmokeTest" else "Prod"
                    trigger = run_day + (LAYERS.index(layer) * 60 + rng.randrange(60)) * MINUTE
                    trigger += (k // len(workflows)) * 60 * MINUTE  # hourly repeats
                    start_ms = trigger + rng.randrange(0, 5) * MINUTE
                    started: int | None = start_ms
                    finished: int | None = start_ms + rng.randrange(1, 45) * MINUTE
                    roll = rng.random()
                    if trigger > now_ms or roll < 0.02:
                        status, started, finished = rng.choice(("NotRun", "WaitTime")), None, None
                    elif roll < 0.03:
                        status, finished = "Running", None
                    elif roll < 0.035:
                        status, started, finished = "WaitResource", None, None
                    else:
                        status = "Failure" if rng.random() < 0.05 else "Success"
                    owner = OWNERS[wf % len(OWNERS)]
                    tags = [
                        {"Key": "team", "Value": TEAMS[wf % len(TEAMS)]},
                        {"Key": "layer", "Value": layer},
                    ]
                    if rng.random() < 0.5:
                        tags.append({"Key": "priority", "Value": rng.choice(("p0", "p1", "p2"))})
                    if rng.random() < 0.2:
                        tags.append({"Key": "sla", "Value": ""})
                    item: dict[str, Any] = {
                        "Id": next_id,
                        "ProjectId": project_id,
                        "WorkflowId": 100_000 + (project_id - 9000) * 10_000 + wf,
                        "WorkflowTaskInstanceId": 50_000_000 + next_id,
                        "UnifiedWorkflowInstanceId": 70_000_000 + next_id,
                        "Name": name,
                        "Type": kind,
                        "Status": status,
                        "EnvType": env,
                        "BizDate": _day_start_ms(day, tz) + rng.randrange(0, 86_400_000),
                        "TriggerTime": trigger,
                        "CreateTime": run_day - 30 * MINUTE,
                        "ModifyTime": finished or started or run_day - 30 * MINUTE,
                        "Owner": owner,
                        "CreateUser": owner,
                        "ModifyUser": owner,
                        "StartedTime": started,
                        "FinishedTime": finished,
                        "Tags": tags,
                        "WorkflowParameters": f"bizdate={day:%Y%m%d} env={env.lower()}",
                    }
                    buffer.append(encoder.encode(item) + b"\n")
                    next_id += 1
                    if len(buffer) >= 10_000:
                        out.write(b"".join(buffer))
                        buffer.clear()
        out.write(b"".join(buffer))
    if next_id - 1 != count:
        raise AssertionError(f"generated {next_id - 1} instances, wanted {count}")
    return zones


def _count(store: Store) -> int:
    with store.database.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM workflow_instances").scalar() or 0)


def prepare(db: Path, zones: dict[int, str]) -> None:
    """A fresh, migrated database holding the workspaces, each in its own zone (untimed)."""
    with Store.open(f"sqlite:///{db}") as store:
        now = int(time.time() * 1000)
        for project_id, tz in zones.items():
            with store.write() as tx:
                tx.projects.create(
                    NewProject(name=f"bench_{project_id}", timezone=tz, id=project_id), now
                )


def in_process(path: Path, db: Path, count: int) -> float:
    store = Store.open(f"sqlite:///{db}")
    try:
        started = time.perf_counter()
        with path.open("rb") as lines:
            result = import_lines(store, lines, False, "Asia/Shanghai", int(time.time() * 1000))
        elapsed = time.perf_counter() - started
        if result.instances != count or _count(store) != count:
            raise AssertionError(f"in-process import wrote {_count(store)} of {count}")
    finally:
        store.close()
    return elapsed


def writer_alone(path: Path, db: Path, zones: dict[int, str], count: int) -> float:
    """The store writing rows decoded beforehand (untimed): what SQLite itself costs, the
    ceiling of an import however its decoding is done."""
    decoder = _Decoder(zones, "Asia/Shanghai")
    with path.open("rb") as lines:
        chunks = [decoder.decode(part, first).batch for first, part in _chunks(lines)]
    store = Store.open(f"sqlite:///{db}")
    try:
        started = time.perf_counter()
        written = store.import_encoded(chunks, False, int(time.time() * 1000))
        elapsed = time.perf_counter() - started
        if written != count:
            raise AssertionError(f"the writer wrote {written} of {count}")
    finally:
        store.close()
    return elapsed


def _dwsched() -> str:
    script = Path(sys.executable).with_name("dwsched")
    return str(script) if script.exists() else "dwsched"


def cli_run(path: Path, db: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [_dwsched(), "import", "--db", f"sqlite:///{db}", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise AssertionError(f"dwsched import failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000, help="instances (default 200000)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dwsched-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        source = workdir / "instances.jsonl"
        t0 = time.perf_counter()
        zones = generate(args.count, source)
        size_mb = source.stat().st_size / 1e6
        print(
            f"generated {args.count} instances, {size_mb:.1f} MB, "
            f"in {time.perf_counter() - t0:.1f} s: {source}"
        )

        for old in workdir.glob("*.db*"):
            old.unlink()
        for name in ("in_process.db", "startup.db", "cli.db", "writer.db"):
            prepare(workdir / name, zones)
        seconds_writer = writer_alone(source, workdir / "writer.db", zones, args.count)
        print(
            f"SQLite alone (rows ready): {seconds_writer:6.2f} s  "
            f"{args.count / seconds_writer:10,.0f} instances/s  (the ceiling of any importer)"
        )
        seconds = in_process(source, workdir / "in_process.db", args.count)
        print(
            f"in-process import_lines: {seconds:6.2f} s  {args.count / seconds:10,.0f} instances/s"
        )

        empty = workdir / "empty.jsonl"
        empty.write_bytes(b"")
        startup = cli_run(empty, workdir / "startup.db")
        seconds_cli = cli_run(source, workdir / "cli.db")
        print(
            f"dwsched import (CLI):    {seconds_cli:6.2f} s  "
            f"{args.count / seconds_cli:10,.0f} instances/s "
            f"(start-up and migration on an empty file: {startup:.2f} s; without it "
            f"{args.count / max(seconds_cli - startup, 1e-9):,.0f} instances/s)"
        )
        best = args.count / seconds
        verdict = "meets" if best >= TARGET and args.count / seconds_cli >= TARGET else "MISSES"
        print(f"target {TARGET:,} instances/s into SQLite: {verdict} it")
        return 0
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
