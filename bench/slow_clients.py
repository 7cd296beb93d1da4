"""/healthz and a signed call while thousands of clients hold connections without finishing
a request (loopback only, bounded in count and time; every socket is closed at the end).

Starts `dwsched serve --no-engine` on a fresh SQLite database in a temporary directory and
measures, on a new connection per request: /healthz latency alone (the floor), then while
IDLE connections send nothing, TRICKLE send their headers a byte at a time and BODIES send
their body a byte at a time. Reports p50/p99 for both, failures, and the server's most open
files. `--baseline` serves the same app with uvicorn's defaults (what `serve` did before the
connection limits) for comparison; `--fd-limit N` runs the server with that hard limit on
open files, to show what happens when the clients outnumber them.

    .venv/bin/python bench/slow_clients.py [--idle 3000] [--fd-limit 2048] [--baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import httpx

from dwsched import signing
from dwsched.cli.keys import unlock_store
from dwsched.clock import SystemClock
from dwsched.runtime.keys import create_key
from dwsched.store import Store

ROOT = Path(__file__).resolve().parents[1]
DWSCHED = Path(sys.executable).with_name("dwsched")
# The app as `serve` built it before this change: uvicorn's defaults, no limits of ours.
BASELINE = """
import sys, uvicorn
from dwsched.cli.keys import unlock_store
from dwsched.runtime.server import build_app
from dwsched.store import Store
db, port = sys.argv[1], int(sys.argv[2])
store = Store.open(db)
unlock_store(store, db, None, quiet=True)
uvicorn.run(build_app(store, "Asia/Shanghai"), port=port, log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def signed_call(endpoint: str, key_id: str, secret: str) -> httpx.Response:
    form = {"PageSize": "10"}
    body = urlencode(form).encode()
    headers = {
        "host": endpoint,
        "x-acs-action": "ListProjects",
        "x-acs-version": "2024-05-18",
        "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": signing.body_sha256(body),
        "content-type": "application/x-www-form-urlencoded",
    }
    names = sorted(headers)
    sts = signing.acs3_string_to_sign("POST", "/", {}, headers, names, signing.body_sha256(body))
    headers["authorization"] = signing.acs3_authorization(
        key_id, names, signing.acs3_signature(sts, secret)
    )
    return httpx.post(f"http://{endpoint}/", headers=headers, content=body, timeout=10)


def timed_healthz(port: int) -> float | None:
    """Seconds for GET /healthz on a new connection (raw: the client costs nothing
    measurable); None if it failed."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except OSError:
        return None
    took = time.perf_counter() - started
    return took if answer.startswith(b"HTTP/1.1 200") else None


def quantiles(samples: list[float]) -> str:
    if len(samples) < 2:
        return "n/a"
    cuts = statistics.quantiles(samples, n=100)
    return f"p50 {cuts[49] * 1000:.2f} ms  p99 {cuts[98] * 1000:.2f} ms  (n={len(samples)})"


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def connect(port: int, first: bytes) -> socket.socket | None:
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        if first:
            sock.sendall(first)
    except OSError:
        return None
    sock.setblocking(False)
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=3000)
    parser.add_argument("--trickle", type=int, default=300)
    parser.add_argument("--bodies", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the attack lasts")
    parser.add_argument("--samples", type=int, default=300, help="/healthz calls for the floor")
    parser.add_argument("--fd-limit", type=int, default=0, help="the server's open-file limit")
    parser.add_argument("--baseline", action="store_true", help="uvicorn's defaults")
    parser.add_argument("serve_options", nargs="*", help="more options of `dwsched serve`")
    args = parser.parse_args()
    total = args.idle + args.trickle + args.bodies
    if total > 10_000:
        parser.error("at most 10,000 connections")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, total + 1000), hard))

    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store.open(db)
        unlock_store(store, db, None, quiet=True)
        key = create_key(store, "bench", SystemClock().now_ms())
        store.close()
        port = free_port()
        endpoint = f"127.0.0.1:{port}"
        if args.baseline:
            command = [sys.executable, "-c", BASELINE, db, str(port)]
        else:
            command = [str(DWSCHED), "serve", "--db", db, "--port", str(port), "--no-engine"]
            command += ["--log-level", "warning", *args.serve_options]

        def limit_files() -> None:
            if args.fd_limit:
                resource.setrlimit(resource.RLIMIT_NOFILE, (args.fd_limit, args.fd_limit))

        server = subprocess.Popen(
            command, preexec_fn=limit_files, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        sockets: list[socket.socket] = []
        try:
            deadline = time.monotonic() + 30
            while timed_healthz(port) is None:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
            floor = [t for t in (timed_healthz(port) for _ in range(args.samples)) if t]

            heads = b"POST / HTTP/1.1\r\nHost: x\r\n"
            body = heads + b"Content-Type: application/x-www-form-urlencoded\r\n"
            body += b"Content-Length: 100000\r\n\r\nA"
            opened = time.monotonic()
            bodies = [connect(port, body) for _ in range(args.bodies)]
            trickling = [connect(port, heads) for _ in range(args.trickle)]
            idle = [connect(port, b"") for _ in range(args.idle)]
            opening = time.monotonic() - opened
            live = [s for s in bodies + trickling + idle if s is not None]
            sockets += live
            refused = total - len(live)

            during: list[float] = []
            failed = signed_ok = signed_failed = most_files = 0
            started = time.monotonic()
            while time.monotonic() - started < args.seconds:
                for sock in [s for s in bodies + trickling if s is not None]:
                    try:
                        sock.send(b"x")
                    except OSError:
                        pass
                for _ in range(10):
                    took = timed_healthz(port)
                    if took is None:
                        failed += 1
                    else:
                        during.append(took)
                try:
                    answer = signed_call(endpoint, key.id, key.secret)
                    signed_ok += answer.status_code == 200
                    signed_failed += answer.status_code != 200
                except httpx.HTTPError:
                    signed_failed += 1
                most_files = max(most_files, open_files(server.pid))
            closed = 0
            for sock in live:
                try:
                    closed += sock.recv(1) == b""
                except BlockingIOError:
                    pass
                except OSError:
                    closed += 1
        finally:
            for sock in sockets:
                sock.close()
            server.terminate()
            server.wait(20)

    what = (
        "uvicorn defaults (before)"
        if args.baseline
        else "dwsched serve " + " ".join(args.serve_options)
    )
    print(
        json.dumps(
            {
                "server": what,
                "fd_limit": args.fd_limit or soft,
                "clients": {"idle": args.idle, "trickle": args.trickle, "bodies": args.bodies},
                "open_seconds": round(opening, 2),
                "connect_failed": refused,
                "closed_by_server": closed,
                "server_open_files_max": most_files,
                "healthz_failed": failed,
                "signed_ok": signed_ok,
                "signed_failed": signed_failed,
            },
            indent=1,
        )
    )
    print(f"/healthz floor : {quantiles(floor)}")
    print(f"/healthz attack: {quantiles(during)}")


if __name__ == "__main__":
    main()
