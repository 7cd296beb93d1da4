"""Guards of the console's sign-in: Argon2 work is bounded, and failed sign-ins slow down
further guessing, per user name and address, with delays that grow but never lock a user
out for good. docs/console.md says why each rule is as it is.

Argon2 costs about 0.1 s of a core and 64 MiB per check, by design: unbounded, a flood of
sign-ins would take the machine. At most `slots` checks run at once per process; a sign-in
arriving when all are busy is answered at once with 503 (never queued on the API's threads).

A try counts against counters of the database (store.signins), shared by every API process:

- `pair`: the user name from this address (IPv6: its /64). After 3 failures each further
  one holds the pair for 1 s, 2 s, 4 s ... up to 5 minutes. Only someone at that address
  can hold it.
- `name`: the user name from any address, for guessing spread over many addresses. After
  10 failures: 1 s, 2 s ... up to 1 minute, never more: a stranger can slow the user down
  but not keep them out.
- `source`: the address, whatever the name (a spray of names from one place). After 30
  failures: 1 s, 2 s ... up to 5 minutes.

A user who signed in from an address in the last 30 days is `trusted` there: their tries
from it count against the pair only, so failures of strangers elsewhere (or of other users at
a shared address) never hold them up. A success takes its try back: the pair starts again
from nothing, the name and the address keep the failures of others.

A try is counted as failed before its password is checked, in the same transaction as the
check of the counters (so tries arriving at once on several processes are all counted), and
taken back if it succeeds or never runs. Refused tries count nothing. A counter lapses an
hour after its last try, a trust after 30 days; lapsed rows are swept once a minute.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass

from dwsched.domain.errors import Throttled
from dwsched.domain.sessions import Claim, Counter
from dwsched.store import Store

PAIR, NAME, SOURCE = "pair", "name", "source"


@dataclass(frozen=True, slots=True)
class Limit:
    free: int  # failures before the first delay
    cap_ms: int  # the longest delay


LIMITS = {
    PAIR: Limit(free=3, cap_ms=5 * 60_000),
    NAME: Limit(free=10, cap_ms=60_000),
    SOURCE: Limit(free=30, cap_ms=5 * 60_000),
}
KEEP_MS = 3600_000  # a counter lapses this long after its last counted try
TRUST_MS = 30 * 24 * 3600_000  # how long a successful sign-in trusts its address
SWEEP_EVERY_MS = 60_000
MAX_SOURCE = 64


def hold_ms(kind: str, failures: int) -> int:
    """How long a counter refuses tries after its `failures`-th failure: nothing up to the
    kind's free failures, then 1 s doubling with each failure, capped."""
    limit = LIMITS[kind]
    if failures < limit.free:
        return 0
    return min(1000 << min(failures - limit.free, 30), limit.cap_ms)


def source_key(host: str) -> str:
    """The address a try is counted against: an IPv4 address, an IPv6 address's /64 (one
    host usually holds a whole /64), anything else as given (cut to 64 characters)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:MAX_SOURCE]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Busy(Exception):
    """Every Argon2 slot is taken."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """An admitted try: counted as failed until `succeeded` or `cancel`."""

    name: str
    source: str
    claim: Claim


class SignInGuard:
    """The sign-in throttle of one API process over the shared counters. `admit`,
    `succeeded` and `cancel` write to the database: call them off the event loop."""

    def __init__(self, store: Store, slots: int = 2) -> None:
        self.store = store
        self._slots = threading.BoundedSemaphore(slots)
        self._sweep_lock = threading.Lock()
        self._last_sweep = 0

    def admit(self, name: str, host: str, now_ms: int) -> Attempt:
        """The try, counted; Throttled (nothing counted) while one of its counters holds."""
        self._sweep(now_ms)
        source = source_key(host)
        counters = [Counter(PAIR, name, source)]
        with self.store.write() as tx:
            if not tx.signins.trusted(name, source, now_ms):
                counters += [Counter(NAME, name, ""), Counter(SOURCE, "", source)]
            claim = tx.signins.claim(counters, now_ms, hold_ms, KEEP_MS)
        if claim.wait_ms > 0:
            raise Throttled(
                "Too many failed sign-ins for this user name or from this address; "
                f"try again in {-(-claim.wait_ms // 1000)} s.",
                retry_after_ms=claim.wait_ms,
            )
        return Attempt(name, source, claim)

    def succeeded(self, attempt: Attempt, now_ms: int) -> None:
        """The password was right: the try is taken back, the pair starts again, and the
        address is trusted for this user."""
        trust = (attempt.name, attempt.source, now_ms + TRUST_MS)
        with self.store.write() as tx:
            tx.signins.settle(attempt.claim, forget=(PAIR,), trust=trust)

    def cancel(self, attempt: Attempt) -> None:
        """The password was never checked: the try is taken back."""
        with self.store.write() as tx:
            tx.signins.settle(attempt.claim)

    def slot(self) -> _Slot:
        """A context holding one Argon2 slot; Busy at once when none is free."""
        if not self._slots.acquire(blocking=False):
            raise Busy
        return _Slot(self._slots)

    def _sweep(self, now_ms: int) -> None:
        if now_ms - self._last_sweep < SWEEP_EVERY_MS or not self._sweep_lock.acquire(
            blocking=False
        ):
            return
        try:
            self._last_sweep = now_ms
            with self.store.write() as tx:
                tx.signins.sweep(now_ms)
        finally:
            self._sweep_lock.release()


class _Slot:
    def __init__(self, semaphore: threading.BoundedSemaphore) -> None:
        self._semaphore = semaphore

    def release(self) -> None:
        self._semaphore.release()
