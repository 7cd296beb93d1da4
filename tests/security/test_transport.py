"""The transport as `dwsched serve` really runs it (a subprocess: the in-process test server
builds its own uvicorn.Config): X-Forwarded-For / X-Forwarded-Proto believed only from
the proxies named by --forwarded-allow-ips (policies, the audit log, sign-in throttling),
connections bounded while thousands of idle or trickling clients hold them, and a client
that leaves mid-body logged as one INFO line, never as an internal error.
"""

from __future__ import annotations

import json
import re
import resource
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from dwsched import signing
from dwsched.cli.keys import unlock_store
from dwsched.clock import SystemClock
from dwsched.runtime.keys import create_key
from dwsched.store import Store
from tests.api.sdk_helpers import utc_stamp
from tests.cli.helpers import Process, cli_env, dwsched_process
from tests.support.server import free_port

VERSION = "2024-05-18"
FORGED_IP = "10.1.2.3"
FORWARDED = {"x-forwarded-for": FORGED_IP, "x-forwarded-proto": "https"}
TRANSPORT_ENV = (
    "DWSCHED_FORWARDED_ALLOW_IPS",
    "DWSCHED_MAX_CONNECTIONS",
    "DWSCHED_HEADER_TIMEOUT",
    "DWSCHED_BODY_TIMEOUT",
    "DWSCHED_KEEP_ALIVE_TIMEOUT",
)
NOT_FROM_LOOPBACK = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Deny",
            "Action": "dataworks:*",
            "Resource": "*",
            "Condition": {"IpAddress": {"acs:SourceIp": "127.0.0.0/8"}},
        }
    ],
}
ONLY_OVER_TLS = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "dataworks:*",
            "Resource": "*",
            "Condition": {"Bool": {"acs:SecureTransport": "true"}},
        }
    ],
}


@dataclass
class Server:
    db: str
    endpoint: str
    process: Process
    keys: dict[str, tuple[str, str]]  # user -> (AccessKeyId, secret)

    def call(
        self, user: str, action: str, form: dict[str, str], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """An ACS3-signed POST as `user`, with `headers` sent besides (not signed)."""
        key_id, secret = self.keys[user]
        return httpx.post(
            f"http://{self.endpoint}/",
            headers={
                **signed_headers(self.endpoint, key_id, secret, action, form),
                **(headers or {}),
            },
            content=urlencode(form).encode(),
            timeout=30,
        )

    def sign_in(self, name: str, headers: dict[str, str] | None = None) -> httpx.Response:
        body = json.dumps({"UserName": name, "Password": "not-the-password"})
        return httpx.post(
            f"http://{self.endpoint}/console/api/signin",
            headers={"content-type": "application/json", **(headers or {})},
            content=body,
            timeout=30,
        )

    def audit_sources(self, user: str) -> list[str]:
        store = Store.open(self.db)
        try:
            with store.read() as tx:
                return [entry.source for entry in tx.audit.entries(user=user)]
        finally:
            store.close()


def signed_headers(
    endpoint: str, key_id: str, secret: str, action: str, form: dict[str, str]
) -> dict[str, str]:
    body = urlencode(form).encode()
    headers = {
        "accept": "application/json",
        "host": endpoint,
        "x-acs-action": action,
        "x-acs-version": VERSION,
        "x-acs-date": utc_stamp(),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": signing.body_sha256(body),
        "content-type": "application/x-www-form-urlencoded",
    }
    names = sorted(headers)
    to_sign = signing.acs3_string_to_sign(
        "POST", "/", {}, headers, names, signing.body_sha256(body)
    )
    signature = signing.acs3_signature(to_sign, secret)
    headers["authorization"] = signing.acs3_authorization(key_id, names, signature)
    return headers


def prepare(db: str) -> dict[str, tuple[str, str]]:
    """Users `walled` (an administrator denied from 127.0.0.0/8), `tls` (allowed only over
    TLS) and `admin`; each one's key."""
    now = SystemClock().now_ms()
    store = Store.open(db)
    try:
        unlock_store(store, db, None, quiet=True)
        with store.write() as tx:
            tx.policies.create("NotFromLoopback", json.dumps(NOT_FROM_LOOPBACK), "", now)
            tx.policies.create("OnlyOverTls", json.dumps(ONLY_OVER_TLS), "", now)
        policies = {
            "walled": ("AdministratorAccess", "NotFromLoopback"),
            "tls": ("OnlyOverTls",),
            "ops": ("AdministratorAccess",),
        }
        keys = {}
        for user, attached in policies.items():
            with store.write() as tx:
                tx.users.create(user, user, now)
            for policy in attached:
                with store.write() as tx:
                    tx.policies.attach(policy, "User", user, attach=True)
            key = create_key(store, f"{user}-key", now)
            with store.write() as tx:
                tx.users.set_key_user(key.id, user)
            keys[user] = (key.id, key.secret)
        return keys
    finally:
        store.close()


@contextmanager
def serving(tmp_path: Path, *options: str, **env: str) -> Iterator[Server]:
    """`dwsched serve` (no engine) on a fresh SQLite database prepared by `prepare`."""
    db = f"sqlite:///{tmp_path / 'transport.db'}"
    keys = prepare(db)
    port = free_port()
    environ = cli_env(**env)
    for name in TRANSPORT_ENV:
        environ.pop(name, None)
    args = ("serve", "--db", db, "--port", str(port), "--no-engine", *options)
    with dwsched_process(*args, env=environ) as process:
        process.wait_listening(port)
        yield Server(db, f"127.0.0.1:{port}", process, keys)
        process.interrupt()


def code(response: httpx.Response) -> str:
    return str(response.json().get("Code", "OK"))


def a_workspace() -> dict[str, str]:
    return {"Name": f"ws_{uuid.uuid4().hex[:12]}"}


# Forwarded headers


def test_forwarded_headers_are_ignored_unless_a_proxy_is_named(tmp_path: Path) -> None:
    # uvicorn's own FORWARDED_ALLOW_IPS must not open the door either.
    with serving(tmp_path, FORWARDED_ALLOW_IPS="*") as server:
        # A Deny on 127.0.0.0/8 still applies when the request claims to come from elsewhere.
        denied = server.call("walled", "CreateProject", a_workspace(), FORWARDED)
        assert (denied.status_code, code(denied)) == (403, "Forbidden.RAM"), denied.text
        # An Allow that needs TLS is not met over plain HTTP claiming to be https.
        plain = server.call("tls", "CreateProject", a_workspace(), FORWARDED)
        assert (plain.status_code, code(plain)) == (403, "Forbidden.RAM"), plain.text
        made = server.call("ops", "CreateProject", a_workspace(), FORWARDED)
        assert made.status_code == 200, made.text
        # The audit log records the real peer.
        for user in ("walled", "tls", "ops"):
            assert server.audit_sources(user) == ["127.0.0.1"]
        # Sign-in throttling counts this address, whatever address each attempt claims.
        for n in range(30):
            forged = {"x-forwarded-for": f"10.9.{n}.1"}
            assert server.sign_in(f"nobody{n}", forged).status_code == 401
        throttled = server.sign_in("nobody99", {"x-forwarded-for": "10.9.99.1"})
        assert (throttled.status_code, code(throttled)) == (429, "Throttling.User")
        assert set(server.audit_sources("nobody0")) == {"127.0.0.1"}
    assert "Traceback" not in server.process.stderr


def test_forwarded_headers_are_believed_from_a_named_proxy(tmp_path: Path) -> None:
    # Two worker processes: both must have the setting.
    options = ("--forwarded-allow-ips", "127.0.0.1", "--workers", "2")
    with serving(tmp_path, *options) as server:
        for _ in range(4):  # requests reach either process
            allowed = server.call("walled", "CreateProject", a_workspace(), FORWARDED)
            assert allowed.status_code == 200, allowed.text
            over_tls = server.call("tls", "CreateProject", a_workspace(), FORWARDED)
            assert over_tls.status_code == 200, over_tls.text
        # Without the headers the proxy's own address is the source: denied.
        direct = server.call("walled", "CreateProject", a_workspace())
        assert (direct.status_code, code(direct)) == (403, "Forbidden.RAM"), direct.text
        assert server.audit_sources("walled") == ["127.0.0.1"] + [FORGED_IP] * 4
        assert server.sign_in("nobody", FORWARDED).status_code == 401
        assert server.audit_sources("nobody") == [FORGED_IP]
    assert "Traceback" not in server.process.stderr


def test_the_trusted_proxies_option_is_checked(tmp_path: Path) -> None:
    from tests.cli.helpers import invoke

    result = invoke("serve", "--forwarded-allow-ips", "127.0.0.1,10.0.0.1/8")
    assert result.exit_code == 2
    assert "10.0.0.1/8" in result.output and "Traceback" not in result.output


# Connections


def _raise_own_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"this test needs {needed} open files (hard limit {hard})")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _open(port: int, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if first:
        sock.sendall(first)
    sock.setblocking(False)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def _answer(sock: socket.socket) -> bytes:
    try:
        return sock.recv(4096)
    except BlockingIOError:
        return b""
    except OSError:
        return b""


def _open_files(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


IDLE, TRICKLING_HEADERS, TRICKLING_BODIES = 2600, 300, 100


def test_idle_and_trickling_clients_do_not_keep_others_out(tmp_path: Path) -> None:
    """3,000 connections against a cap of 1,000: idle ones, ones sending their headers a
    byte at a time, ones sending their body a byte at a time. /healthz and signed calls
    answer throughout; the server holds no more than its cap; slow bodies get 408; every
    connection still waiting for its headers is closed after the header timeout."""
    _raise_own_fd_limit(IDLE + TRICKLING_HEADERS + TRICKLING_BODIES + 500)
    options = ("--max-connections", "1000", "--header-timeout", "4", "--body-timeout", "2")
    sockets: list[socket.socket] = []
    with serving(tmp_path, *options) as server:
        port = int(server.endpoint.rsplit(":", 1)[1])
        pid = server.process.popen.pid
        try:
            bodies = [
                _open(
                    port,
                    b"POST / HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    b"Content-Length: 100000\r\n\r\nA",
                )
                for _ in range(TRICKLING_BODIES)
            ]
            heads = [
                _open(port, b"POST / HTTP/1.1\r\nHost: x\r\n") for _ in range(TRICKLING_HEADERS)
            ]
            idle = [_open(port) for _ in range(IDLE)]
            sockets += bodies + heads + idle
            healthz, signed, most_files = 0, 0, 0
            started = time.monotonic()
            while time.monotonic() - started < 3:
                for sock in heads + bodies:
                    try:
                        sock.send(b"x")
                    except OSError:
                        pass  # closed by the server: evicted, or answered
                assert httpx.get(f"http://{server.endpoint}/healthz", timeout=5).status_code == 200
                healthz += 1
                listed = server.call("ops", "ListProjects", {"PageSize": "10"})
                assert listed.status_code == 200, listed.text
                signed += 1
                most_files = max(most_files, _open_files(pid))
                time.sleep(0.2)
            assert healthz >= 5 and signed >= 5
            assert most_files < 1000 + 200, most_files  # the cap, and the server's own files
            # Bodies that came too slowly were answered 408 (those not evicted).
            answers = [_answer(sock) for sock in bodies]
            assert any(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:3]
            assert all(a == b"" or a.startswith(b"HTTP/1.1 408") for a in answers)
            # Past the header timeout, nothing still waiting for headers is left open.
            deadline = time.monotonic() + 4 + 3
            waiting = heads + idle
            while waiting and time.monotonic() < deadline:
                waiting = [sock for sock in waiting if not _closed_by_server(sock)]
                time.sleep(0.2)
            assert waiting == []
            assert httpx.get(f"http://{server.endpoint}/healthz", timeout=5).status_code == 200
        finally:
            for sock in sockets:
                sock.close()
    assert "Traceback" not in server.process.stderr


def test_oversized_headers_are_refused(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        port = int(server.endpoint.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            try:
                for _ in range(20):
                    sock.sendall(b"X-Filler: " + b"y" * 8000 + b"\r\n")
            except OSError:
                pass  # closed by the server while sending
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 431"), answer


# A client's own faults


def test_a_client_leaving_mid_body_is_one_info_line(tmp_path: Path) -> None:
    head = (
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: 10000\r\n\r\n"
        + b"a" * 100
    )
    targets = [(b"/", b"application/x-www-form-urlencoded")] * 20 + [
        (b"/console/api/signin", b"application/json")
    ] * 5
    with serving(tmp_path) as server:
        port = int(server.endpoint.rsplit(":", 1)[1])
        for path, content_type in targets:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(head % (path, content_type))
                time.sleep(0.02)  # the server starts reading the body

        def lines() -> list[str]:
            return [ln for ln in server.process.stderr.splitlines() if "client_disconnected" in ln]

        server.process.wait_for(lambda: len(lines()) >= len(targets), "the disconnects' lines")
        assert httpx.get(f"http://{server.endpoint}/healthz", timeout=5).status_code == 200
        stderr = server.process.stderr
    assert len(lines()) == len(targets)
    assert all(re.search(r" INFO dwsched\.(api|web) client_disconnected ", ln) for ln in lines())
    for needle in ("Traceback", "internal_error", "console_error", " ERROR "):
        assert needle not in stderr, stderr
