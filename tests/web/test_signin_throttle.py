"""Console sign-in throttling (web/signin.py) on both databases, under a manual clock: delays
that grow per user name and address up to a cap, a stranger's failures never keeping the
real user out of their own address, counts shared by two console apps on one database (two
API processes), refused tries audited, lapsed rows swept.

The consoles run in this process (over httpx's ASGI transport, which lets a test choose each
request's client address) on a Store each, as the processes of `serve --workers 2` do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from starlette.applications import Starlette

from dwsched.api.calls import Calls
from dwsched.clock import ManualClock
from dwsched.store import Store
from dwsched.store.schema import signin_failures
from dwsched.store.signins import Counter
from dwsched.web import passwords
from dwsched.web.console import Console
from dwsched.web.signin import (
    KEEP_MS,
    SWEEP_EVERY_MS,
    TRUST_MS,
    SignInGuard,
    hold_ms,
    source_key,
)

START = 1_800_000_000_000
PASSWORD = "correct horse battery"
WRONG = "wrong horse battery"
HOME, OFFICE = "198.51.100.7", "198.51.100.8"
ATTACKER = "203.0.113.66"


@dataclass
class Console_:
    """One API process's console over its own Store."""

    store: Store
    clock: ManualClock
    app: Starlette

    def sign_in(self, name: str, password: str, address: str) -> tuple[int, str, int]:
        """(HTTP status, Code or "OK", x-acs-retry-after in ms or 0) of a sign-in from
        `address`."""
        answer = asyncio.run(self._post(address, {"UserName": name, "Password": password}))
        code = "OK" if answer.status_code == 200 else answer.json()["Code"]
        return answer.status_code, code, int(answer.headers.get("x-acs-retry-after", 0))

    async def _post(self, address: str, body: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(self.app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            return await client.post("/console/api/signin", json=body)


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The throttle is under test, not Argon2: its cheapest parameters keep the many
    password checks here fast (the real ones cost 0.1 s and 64 MiB each)."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", hasher)
    monkeypatch.setattr(passwords, "_DUMMY", hasher.hash("dwsched-no-such-user"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def consoles(db_url: str, clock: ManualClock) -> Iterator[list[Console_]]:
    """Two consoles (two processes) on one database, sharing the time."""
    stores = [Store.open(db_url), Store.open(db_url)]
    made = []
    for store in stores:
        console = Console(store, clock, Calls(store, clock, "Asia/Shanghai"))
        made.append(Console_(store, clock, Starlette(routes=console.routes())))
    try:
        yield made
    finally:
        for store in stores:
            store.close()


@pytest.fixture
def one(consoles: list[Console_]) -> Console_:
    return consoles[0]


def user(store: Store, name: str) -> None:
    with store.write() as tx:
        tx.users.create(name, name, START)
        tx.policies.attach("ReadOnlyAccess", "User", name, attach=True)
        tx.users.set_password(name, passwords.hash_password(PASSWORD))


def failures(store: Store) -> dict[Counter, int]:
    t = signin_failures.c
    with store.read() as tx:
        found = tx.conn.execute(
            sa.select(t.kind, t.user_name, t.source, t.failures).where(t.kind != "trusted")
        )
        return {Counter(r.kind, r.user_name, r.source): int(r.failures) for r in found}


def rows(store: Store) -> list[tuple[str, str, str]]:
    t = signin_failures.c
    with store.read() as tx:
        found = tx.conn.execute(sa.select(t.kind, t.user_name, t.source).order_by(t.kind, t.source))
        return [(r.kind, r.user_name, r.source) for r in found]


# The rules alone


def test_holds_grow_from_one_second_to_a_cap() -> None:
    assert [hold_ms("pair", n) for n in range(1, 14)] == [
        0,
        0,
        1000,
        2000,
        4000,
        8000,
        16000,
        32000,
        64000,
        128000,
        256000,
        300000,
        300000,
    ]
    assert hold_ms("pair", 10**6) == 300_000
    assert [hold_ms("name", n) for n in (9, 10, 11, 15, 16, 1000)] == [
        0,
        1000,
        2000,
        32000,
        60000,
        60000,
    ]
    assert hold_ms("source", 29) == 0 and hold_ms("source", 30) == 1000


def test_addresses_are_counted_by_host_and_ipv6_by_its_64() -> None:
    assert source_key("198.51.100.7") == "198.51.100.7"
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:ffff::9")
    assert source_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
    assert source_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert source_key("x" * 100) == "x" * 64


# Over HTTP, under the manual clock


def test_delays_grow_for_a_name_from_an_address_and_are_audited(one: Console_) -> None:
    user(one.store, "target")
    clock = one.clock
    for _ in range(2):
        assert one.sign_in("target", WRONG, ATTACKER)[:2] == (401, "SignInFailed")
    # From the third failure on, each one holds the next try: 1 s, 2 s, 4 s ... 5 minutes.
    for hold in (1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000):
        assert one.sign_in("target", WRONG, ATTACKER)[:2] == (401, "SignInFailed")
        status, code, retry = one.sign_in("target", PASSWORD, ATTACKER)  # not even checked
        assert (status, code, retry) == (429, "Throttling.User", hold)
        clock.advance(hold - 1)
        assert one.sign_in("target", WRONG, ATTACKER)[:3] == (429, "Throttling.User", 1)
        clock.advance(1)
    # The right password once the hold is over: in, and the pair starts again.
    assert one.sign_in("target", PASSWORD, ATTACKER)[0] == 200
    for _ in range(2):
        assert one.sign_in("target", WRONG, ATTACKER)[0] == 401
    assert one.sign_in("target", WRONG, ATTACKER)[0] == 401
    assert one.sign_in("target", WRONG, ATTACKER)[:3] == (429, "Throttling.User", 1000)

    # Another user, and the same user from another address, are not held up by the pair.
    user(one.store, "other")
    assert one.sign_in("other", PASSWORD, ATTACKER)[0] == 200
    assert one.sign_in("target", PASSWORD, HOME)[0] == 200
    with one.store.read() as tx:
        results = [e.result for e in tx.audit.entries(user="target") if e.action == "ConsoleSignIn"]
    assert results.count("Throttling.User") == 2 * 11 + 1
    assert results.count("SignInFailed") == 2 + 11 + 3
    assert results.count("OK") == 2


def test_a_stranger_never_keeps_the_user_out_of_their_own_address(one: Console_) -> None:
    user(one.store, "alice")
    clock = one.clock
    assert one.sign_in("alice", PASSWORD, HOME)[0] == 200  # HOME is now alice's
    # Guessing spread over many addresses: after 10 failures the name is held too,
    # from any address alice has not signed in from, for at most a minute at a time.
    for n in range(40):
        status, _, retry = one.sign_in("alice", WRONG, f"203.0.113.{n}")
        if status == 429:
            assert 0 < retry <= 60_000
            clock.advance(retry)
            assert one.sign_in("alice", WRONG, f"203.0.113.{n}")[0] == 401
        # Whatever the stranger does, alice at home signs in at once.
        if n % 10 == 9:
            assert one.sign_in("alice", PASSWORD, HOME)[0] == 200
    status, code, retry = one.sign_in("alice", PASSWORD, OFFICE)
    assert (status, code) == (429, "Throttling.User") and retry == 60_000  # held, not out
    clock.advance(retry)
    assert one.sign_in("alice", PASSWORD, OFFICE)[0] == 200
    # One address hammering the name: its own pair is held longer and longer, up to 5
    # minutes (the name's minute holds it until then); home and office are not held.
    holds: list[int] = []
    while not holds or holds[-1] < 300_000:
        assert one.sign_in("alice", WRONG, ATTACKER)[0] == 401
        status, _, retry = one.sign_in("alice", WRONG, ATTACKER)
        assert status == 429
        holds.append(retry)
        assert one.sign_in("alice", PASSWORD, HOME)[0] == 200
        assert one.sign_in("alice", PASSWORD, OFFICE)[0] == 200  # trusted now too
        clock.advance(retry)
        assert len(holds) < 20
    assert holds[-4:] == [64_000, 128_000, 256_000, 300_000] and set(holds[:-4]) == {60_000}


def test_an_address_spraying_names_is_held_but_not_a_user_at_home_there(one: Console_) -> None:
    user(one.store, "bob")
    assert one.sign_in("bob", PASSWORD, ATTACKER)[0] == 200  # bob signs in from there
    for n in range(30):
        assert one.sign_in(f"nobody{n}", WRONG, ATTACKER)[0] == 401
    assert one.sign_in("nobody99", WRONG, ATTACKER)[:3] == (429, "Throttling.User", 1000)
    assert one.sign_in("bob", PASSWORD, ATTACKER)[0] == 200  # trusted there
    assert one.sign_in("nobody99", WRONG, "2001:db8::1")[0] == 401  # elsewhere: not held


def test_two_processes_share_the_counts(consoles: list[Console_]) -> None:
    first, second = consoles
    user(first.store, "carol")
    assert first.sign_in("carol", WRONG, ATTACKER)[0] == 401
    assert second.sign_in("carol", WRONG, ATTACKER)[0] == 401
    assert first.sign_in("carol", WRONG, ATTACKER)[0] == 401  # the third: held 1 s
    for console in (first, second):
        assert console.sign_in("carol", PASSWORD, ATTACKER)[:3] == (429, "Throttling.User", 1000)
    first.clock.advance(1000)
    assert second.sign_in("carol", WRONG, ATTACKER)[0] == 401  # the fourth: held 2 s
    assert first.sign_in("carol", PASSWORD, ATTACKER)[2] == 2000
    # A success on one process starts the pair again for both.
    first.clock.advance(2000)
    assert second.sign_in("carol", PASSWORD, ATTACKER)[0] == 200
    assert first.sign_in("carol", WRONG, ATTACKER)[0] == 401
    assert first.sign_in("carol", WRONG, ATTACKER)[0] == 401


def test_lapsed_counters_and_trusts_are_swept(one: Console_) -> None:
    user(one.store, "dave")
    clock = one.clock
    assert one.sign_in("dave", PASSWORD, HOME)[0] == 200
    for n in range(5):
        assert one.sign_in(f"x{n}", WRONG, ATTACKER)[0] == 401
    assert len(rows(one.store)) == 1 + 5 * 2 + 1  # a trust; pair and name each; the address
    clock.advance(KEEP_MS + SWEEP_EVERY_MS + 1)
    assert one.sign_in("dave", PASSWORD, HOME)[0] == 200  # sweeps, then renews the trust
    assert rows(one.store) == [("trusted", "dave", HOME)]
    clock.advance(TRUST_MS + SWEEP_EVERY_MS + 1)
    assert one.sign_in("nobody", WRONG, OFFICE)[0] == 401
    assert [r[0] for r in rows(one.store)] == ["name", "pair", "source"]


def test_a_counter_starts_again_once_it_lapsed_even_unswept(store: Store) -> None:
    counter = Counter("pair", "erin", ATTACKER)
    for n in range(3):
        with store.write() as tx:
            assert tx.signins.claim([counter], START + n, hold_ms, KEEP_MS).wait_ms == 0
    with store.write() as tx:
        assert tx.signins.claim([counter], START + 3, hold_ms, KEEP_MS).wait_ms == 999
    later = START + 2 + KEEP_MS + 1  # lapsed; no sweep has run
    for n in range(2):
        with store.write() as tx:
            assert tx.signins.claim([counter], later + n, hold_ms, KEEP_MS).wait_ms == 0
    assert failures(store) == {counter: 2}


def test_a_try_never_checked_is_taken_back(store: Store) -> None:
    guard = SignInGuard(store)
    user(store, "fay")
    for n in range(2):
        guard.admit("fay", ATTACKER, START + n)  # counted as failed until settled
    attempt = guard.admit("fay", ATTACKER, START + 2)  # the third: holds 1 s
    assert failures(store)[Counter("pair", "fay", ATTACKER)] == 3
    guard.cancel(attempt)  # Busy: the password was never checked
    assert failures(store)[Counter("pair", "fay", ATTACKER)] == 2
    guard.admit("fay", ATTACKER, START + 3)  # not held
    done = guard.admit("fay", HOME, START + 4)
    guard.succeeded(done, START + 5)
    assert Counter("pair", "fay", HOME) not in failures(store)
    assert failures(store)[Counter("name", "fay", "")] == 3
    assert rows(store)[-1] == ("trusted", "fay", HOME)
