"""ListWorkflowInstances benchmark (a measurement, not a test).

Builds a synthetic data set through the storage layer, starts `dwsched serve` as a separate
process, and drives ListWorkflowInstances over HTTP with signed (ACS3) requests from a
separate client process. In the same run it measures two floors:
- the same SQL statements the server issues, executed directly with the database driver;
- a minimal ASGI app under the same server (uvicorn, same options) returning a fixed 2 KB
  JSON, driven by the same client with the same signed requests.

    .venv/bin/python bench/list_instances.py --dataset A
    .venv/bin/python bench/list_instances.py --dataset B            # 10 M instances, slow build
    .venv/bin/python bench/list_instances.py --dataset A --workers 2   # both servers
    .venv/bin/python bench/list_instances.py --dataset A --db postgresql://postgres@127.0.0.1/bench

Prints a table and, last, one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from dwsched import signing
from dwsched.clock import SystemClock
from dwsched.domain.calendar import day_start_ms
from dwsched.domain.models import (
    EnvType,
    InstanceType,
    NewProject,
    Status,
    Tag,
    WorkflowInstance,
)
from dwsched.domain.queries import InstanceQuery, page, parse_sort, parse_tag_match
from dwsched.runtime.keys import create_key
from dwsched.store import Store, instances as store_instances, projects as store_projects

ROOT = Path(__file__).resolve().parent
PYTHON = sys.executable
TZ = "Asia/Shanghai"
LAYERS = ("ods", "dwd", "dws", "ads")
SUBJECTS = ("orders", "payments", "users", "inventory", "shipments", "clicks", "refunds", "ads")
TEAMS = ("growth", "finance", "logistics", "risk", "search", "ads", "platform", "crm")
LAST_DAY = date(2025, 12, 31)
MIN = 60_000


@dataclass(frozen=True)
class Dataset:
    name: str
    project: str
    days: int
    per_day: int
    busiest: int  # size of the measured partition
    other_projects: tuple[tuple[str, int], ...] = ()  # (name, instances over `days` days)

    @property
    def total(self) -> int:
        return (
            (self.days - 1) * self.per_day + self.busiest + sum(n for _, n in self.other_projects)
        )


DATASETS = {
    "A": Dataset("A", "bench_a", days=365, per_day=2_000, busiest=2_000),
    "B": Dataset(
        "B",
        "bench_b",
        days=365,
        per_day=15_000,
        busiest=100_000,
        other_projects=(("bench_b_other", 10_000_000 - 364 * 15_000 - 100_000),),
    ),
}


# Data set


def _instances(
    rng: random.Random, project_id: int, day: date, count: int, first_id: int
) -> list[WorkflowInstance]:
    run_day = day_start_ms(day + timedelta(days=1), TZ)
    out = []
    for n in range(count):
        wf = n % 2000 if count <= 2000 else n
        layer, subject = LAYERS[wf % 4], SUBJECTS[wf // 4 % 8]
        trigger = run_day + (wf % 360) * MIN
        roll = rng.random()
        status = (
            Status.SUCCESS
            if roll < 0.85
            else Status.FAILURE
            if roll < 0.90
            else Status.RUNNING
            if roll < 0.93
            else rng.choice((Status.NOT_RUN, Status.WAIT_TIME, Status.WAIT_RESOURCE))
        )
        started = (
            None
            if status in (Status.NOT_RUN, Status.WAIT_TIME, Status.WAIT_RESOURCE)
            else (trigger + rng.randrange(0, 600_000))
        )
        finished = (
            None
            if started is None or status is Status.RUNNING
            else started + rng.randrange(10_000, 3_600_000)
        )
        kind = InstanceType.NORMAL if rng.random() < 0.93 else InstanceType.SUPPLEMENT_DATA
        tags = [Tag("team", TEAMS[wf % 8]), Tag("layer", layer)]
        if wf % 10 == 0:
            tags.append(Tag("priority", "high"))
        out.append(
            WorkflowInstance(
                id=first_id + n,
                project_id=project_id,
                env_type=EnvType.PROD,
                biz_day=day,
                type=kind,
                status=status,
                workflow_id=10_000 + wf,
                workflow_task_instance_id=first_id + n + 50_000_000,
                unified_workflow_instance_id=first_id + n,
                name=f"{layer}_{subject}_{wf:05d}",
                owner=f"2030{wf % 50:04d}",
                create_user="203000001",
                modify_user="203000001",
                trigger_time=trigger,
                started_time=started,
                finished_time=finished,
                create_time=run_day - 30 * MIN + n,
                modify_time=finished or started or run_day,
                workflow_parameters="",
                tags=tuple(tags),
            )
        )
    return out


def build(store: Store, ds: Dataset) -> None:
    rng = random.Random(42)
    now = SystemClock().now_ms()
    next_id = 1
    started = time.perf_counter()
    for project_name, count in ((ds.project, None), *ds.other_projects):
        with store.write() as tx:
            project = tx.projects.create(NewProject(name=project_name, timezone=TZ), now)
        for back in range(ds.days):
            day = LAST_DAY - timedelta(days=back)
            if count is None:
                size = ds.busiest if back == 0 else ds.per_day
            else:
                size = count // ds.days + (1 if back < count % ds.days else 0)
            for chunk in range(0, size, 100_000):
                items = _instances(rng, project.id, day, min(100_000, size - chunk), next_id)
                store.import_instances(items, [], replace=False, now_ms=now)
                next_id += len(items)
            if back % 30 == 0:
                rate = (next_id - 1) / (time.perf_counter() - started)
                print(f"  built {next_id - 1:,} instances ({rate:,.0f}/s)", file=sys.stderr)
    if store.is_sqlite:
        with store.write() as tx:
            tx.conn.exec_driver_sql("ANALYZE")
    else:
        with store.database.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def project_id(store: Store, ds: Dataset) -> int:
    with store.read() as tx:
        found = tx.projects.page(names=[ds.project])[1]
    return found[0].id if found else 0


# Queries


def queries(ds: Dataset) -> dict[str, dict[str, Any]]:
    deep = max(1, ds.busiest // 10 // 2)
    return {
        "Q1": {},
        "Q2": {"Filter": json.dumps({"status": "Failure"})},
        "Q3": {"SortBy": "StartedTime Desc"},
        "Q4": {"Name": "ORDERS_001"},
        "Q5": {"Tags": json.dumps(["team:growth", "priority:high"])},
        "Q6": {"PageNumber": str(deep)},
    }


def domain_query(pid: int, biz_ms: int, params: dict[str, Any]) -> InstanceQuery:
    flt = json.loads(params.get("Filter", "{}"))
    return InstanceQuery(
        project_id=pid,
        biz_date_ms=biz_ms,
        env_type=EnvType.PROD,
        name=params.get("Name"),
        tags=tuple(parse_tag_match(t) for t in json.loads(params.get("Tags", "[]"))),
        statuses=(Status(flt["status"]),) if "status" in flt else (),
        sort=parse_sort(params.get("SortBy", "")),
        page=page(int(params.get("PageNumber", 1)), 10),
    )


class Recording:
    """A DBAPI cursor that records the statements run through it."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.calls: list[tuple[str, Any]] = []

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        self.calls.append((sql, parameters))
        return self.cursor.execute(sql, parameters)

    def fetchall(self) -> Any:
        return self.cursor.fetchall()


def sql_floor(
    store: Store, pid: int, biz_ms: int, qs: dict[str, dict[str, Any]], n: int
) -> dict[str, float]:
    """Median ms of the statements the server runs for each query, on the bare driver."""
    floors: dict[str, float] = {}
    dialect = store.database.dialect
    raw = store.database.raw_connection()
    try:
        cursor = raw.cursor()
        for name, params in qs.items():
            recording = Recording(cursor)
            tz = store_projects.timezone_on_cursor(recording, dialect, pid)
            store_instances.list_instances(
                recording, dialect, domain_query(pid, biz_ms, params), tz
            )
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                for statement, parameters in recording.calls:
                    cursor.execute(statement, parameters)
                    cursor.fetchall()
                times.append((time.perf_counter() - t0) * 1000)
            floors[name] = round(statistics.median(times), 3)
        raw.rollback()
    finally:
        raw.close()
    return floors


# Servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str = "/healthz", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
                if s.recv(12).startswith(b"HTTP/1.1"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


def start(cmd: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wait_http(port)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


# The client (runs in its own process)


class Signer:
    def __init__(self, port: int, key_id: str, secret: str) -> None:
        self.host = f"127.0.0.1:{port}"
        self.key_id, self.secret = key_id, secret

    def request(self, params: dict[str, Any]) -> bytes:
        body = urlencode(params).encode()
        headers = {
            "accept": "application/json",
            "content-type": "application/x-www-form-urlencoded",
            "host": self.host,
            "x-acs-action": "ListWorkflowInstances",
            "x-acs-version": "2024-05-18",
            "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": uuid.uuid4().hex,
            "x-acs-content-sha256": signing.body_sha256(body),
        }
        names = sorted(headers)
        sts = signing.acs3_string_to_sign(
            "POST", "/", {}, headers, names, headers["x-acs-content-sha256"]
        )
        headers["authorization"] = signing.acs3_authorization(
            self.key_id, names, signing.acs3_signature(sts, self.secret)
        )
        headers["content-length"] = str(len(body))
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return f"POST / HTTP/1.1\r\n{head}\r\n".encode() + body


async def _send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> bytes:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        body = await reader.read(2000)
        raise RuntimeError(f"request failed: {head[:40]!r} {body[:300]!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return await reader.readexactly(length)


async def _latency(signer: Signer, params: dict[str, Any], n: int, warmup: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", int(signer.host.split(":")[1]))
    times = []
    for i in range(warmup + n):
        raw = signer.request(params)
        t0 = time.perf_counter()
        await _send(reader, writer, raw)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    writer.close()
    return times


async def _throughput(
    signer: Signer, params: dict[str, Any], concurrency: int, seconds: float
) -> float:
    port = int(signer.host.split(":")[1])
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop_at:
            await _send(reader, writer, signer.request(params))
            done += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - t0)


def client_main(job: dict[str, Any], out: Any) -> None:
    signer = Signer(job["port"], job["key_id"], job["secret"])
    results: dict[str, Any] = {}
    for name, params in job["queries"].items():
        base = {"ProjectId": job["project_id"], "BizDate": job["biz_ms"], **params}
        times = asyncio.run(_latency(signer, base, job["requests"], job["warmup"]))
        times.sort()
        entry = {
            "p50_ms": round(statistics.median(times), 3),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
        }
        if job["throughput"]:
            entry["rps_c8"] = round(
                asyncio.run(_throughput(signer, base, job["concurrency"], job["seconds"])), 1
            )
        results[name] = entry
    out.put(results)


def run_client(job: dict[str, Any]) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=client_main, args=(job, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result  # type: ignore[no-any-return]


# Main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="A")
    parser.add_argument("--db", help="database URL (default: bench/results/<dataset>.db)")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput window per query")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes, for dwsched and the floor alike"
    )
    args = parser.parse_args()
    ds = DATASETS[args.dataset]
    results_dir = ROOT / "results"
    results_dir.mkdir(exist_ok=True)
    url = args.db or f"sqlite:///{results_dir / f'{ds.name}.db'}"
    if args.rebuild and url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)

    store = Store.open(url)
    pid = project_id(store, ds)
    if not pid:
        print(f"building data set {ds.name}: {ds.total:,} instances ...", file=sys.stderr)
        t0 = time.perf_counter()
        build(store, ds)
        print(f"  built in {time.perf_counter() - t0:,.0f} s", file=sys.stderr)
        pid = project_id(store, ds)
    key = create_key(store, "bench", SystemClock().now_ms())
    biz_ms = day_start_ms(LAST_DAY, TZ) + 13 * 3_600_000  # an afternoon instant of the day
    qs = queries(ds)
    sql = sql_floor(store, pid, biz_ms, qs, args.requests)
    store.close()

    job = {
        "project_id": pid,
        "biz_ms": biz_ms,
        "key_id": key.id,
        "secret": key.secret,
        "queries": qs,
        "requests": args.requests,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "throughput": True,
    }
    port = free_port()
    server = start(
        [
            PYTHON,
            "-m",
            "dwsched",
            "serve",
            "--db",
            url,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            str(args.workers),
            # One key at thousands of requests/s: the benchmark measures the server, not
            # the per-key throttle.
            "--throttle",
            "off",
        ],
        port,
    )
    try:
        measured = run_client({**job, "port": port})
    finally:
        stop(server)

    def floor_of(module: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Q1's figures from a floor app under the same server, options and client."""
        floor_port = free_port()
        floor_server = start(
            [
                PYTHON,
                "-m",
                "uvicorn",
                "--app-dir",
                str(ROOT),
                f"{module}:app",
                "--port",
                str(floor_port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--workers",
                str(args.workers),
            ],
            floor_port,
            env,
        )
        try:
            return run_client({**job, "port": floor_port, "queries": {"Q1": qs["Q1"]}})["Q1"]
        finally:
            stop(floor_server)

    floor = floor_of("minimal_app")
    with tempfile.TemporaryDirectory() as scratch:
        auth_floor = floor_of(
            "auth_floor_app",
            {
                **os.environ,
                "AUTH_FLOOR_DB": str(Path(scratch) / "nonces.db"),
                "AUTH_FLOOR_KEY_ID": key.id,
                "AUTH_FLOOR_SECRET": key.secret,
            },
        )

    print(
        f"\nListWorkflowInstances, dataset {ds.name} ({ds.total:,} instances, "
        f"partition {ds.busiest:,}), {url.split(':')[0]}"
    )
    print(f"{'query':<6}{'p50 ms':>9}{'p99 ms':>9}{'rps c8':>9}{'SQL ms':>9}")
    for name, r in measured.items():
        print(
            f"{name:<6}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['rps_c8']:>9.0f}{sql[name]:>9.3f}"
        )
    print(
        f"{'floor':<6}{floor['p50_ms']:>9.2f}{floor['p99_ms']:>9.2f}{floor['rps_c8']:>9.0f}"
        "   (minimal ASGI app, 2 KB JSON)"
    )
    print(
        f"{'auth':<6}{auth_floor['p50_ms']:>9.2f}{auth_floor['p99_ms']:>9.2f}"
        f"{auth_floor['rps_c8']:>9.0f}   (the same, plus verifying the signature and "
        "recording the nonce)"
    )
    print(
        f"Q1 rps at c{args.concurrency}: "
        f"{measured['Q1']['rps_c8'] / floor['rps_c8']:.0%} of the floor; "
        f"the authenticating floor alone reaches {auth_floor['rps_c8'] / floor['rps_c8']:.0%}"
    )
    print(
        json.dumps(
            {
                "dataset": ds.name,
                "workers": args.workers,
                "queries": measured,
                "floor": {
                    "http_p50_ms": floor["p50_ms"],
                    "http_p99_ms": floor["p99_ms"],
                    "http_rps_c8": floor["rps_c8"],
                    "auth_p50_ms": auth_floor["p50_ms"],
                    "auth_rps_c8": auth_floor["rps_c8"],
                    "sql_ms": sql,
                },
            }
        )
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
