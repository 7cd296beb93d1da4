"""Throttling: a token bucket per (AccessKey, action class), shared by every process.

Action classes: `read` and `write` (api.registry declares each action's), each with a rate
(tokens per second) and a burst (the bucket's size). Over the limit a request is refused
with `Throttled` (HTTP 429 `Throttling.User` with `x-acs-retry-after` in ms, which the
official SDK raises as ThrottlingException) before its handler runs.

Design: one budget across processes without a lock per request.
- The budget is one row per bucket in `throttle_buckets` (store/throttle.py): the tokens
  left at `updated_at`; refilled on read by elapsed time * rate, capped at the burst.
- Each process admits requests from a local lease held in memory. Only when its lease is
  empty does it go to the database: one short write transaction takes up to
  `lease_size(burst)` whole tokens (a quarter of the burst, at least one) from the row.
  A busy key costs one database write per lease, not per request.
- When the row has not one whole token, the request is refused with the time until one
  refills, and that answer is remembered: until then the process refuses that bucket's
  requests in memory (no token can appear sooner: tokens only refill, leases are never
  returned), so a client hammering a throttled key does not hammer the database.
- Bound: the requests admitted in any interval of t seconds, across all processes, are at
  most burst + rate * t, plus the leased tokens left unused in processes at its start
  (at most one lease per process and bucket).
- Time is the request's `now_ms` (the injected clock), never read here.
- Leases of one bucket are taken one at a time per process (a lock per bucket, held over
  the database write); admitting from the lease takes a process-wide lock for a few
  dictionary operations only.
- `wait` false (on the event loop, SQLite): a request whose lease is empty raises StoreBusy
  instead of touching the database, and the caller serves it on a worker thread (without
  authenticating it again: its nonce is spent).
- Settings: `--throttle` / `DWSCHED_THROTTLE` (`parse_throttle`), e.g. the default
  `read=200/400,write=20/40`; `off` leaves every request unthrottled.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from dwsched.domain.errors import InvalidArgument, StoreBusy, Throttled
from dwsched.store import Store

READ, WRITE = "read", "write"
CLASSES = (READ, WRITE)
OFF = "off"
_PART = re.compile(
    r"(?P<cls>[a-z_]+)\s*=\s*"
    r"(?:(?P<off>off)|(?P<rate>[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?)\s*/\s*(?P<burst>[0-9]+))"
)


@dataclass(frozen=True)
class Limit:
    """`rate` requests per second on average, `burst` at once."""

    rate: float
    burst: int

    def __str__(self) -> str:
        return f"{repr(self.rate).removesuffix('.0')}/{self.burst}"


@dataclass(frozen=True)
class ThrottleSettings:
    """The limit of each throttled action class; a class without one is not throttled."""

    limits: Mapping[str, Limit]

    def __str__(self) -> str:
        """The setting's text, as `parse_throttle` reads it."""
        return ",".join(f"{c}={self.limits[c] if c in self.limits else OFF}" for c in CLASSES)


def parse_throttle(text: str, base: ThrottleSettings | None = None) -> ThrottleSettings | None:
    """`off`, or comma-separated `CLASS=RATE/BURST` or `CLASS=off` for the classes `read`
    and `write` (e.g. `read=50/100,write=10/20`); a class not named keeps its limit in
    `base`. None when no class is throttled. InvalidArgument says what is wrong."""
    spec = text.strip().lower()
    if spec == OFF:
        return None
    limits = dict(base.limits) if base is not None else {}
    seen: set[str] = set()
    for part in (p.strip() for p in spec.split(",")):
        match = _PART.fullmatch(part)
        if match is None:
            raise _invalid(text, f"{part!r} is not CLASS=RATE/BURST or CLASS=off")
        cls = match["cls"]
        if cls not in CLASSES:
            raise _invalid(text, f"{cls!r} is not an action class")
        if cls in seen:
            raise _invalid(text, f"the class {cls!r} is given twice")
        seen.add(cls)
        if match["off"]:
            limits.pop(cls, None)
            continue
        rate, burst = float(match["rate"]), int(match["burst"])
        if rate <= 0 or burst < 1:
            raise _invalid(text, f"{part!r} needs a rate above 0 and a burst of 1 or more")
        limits[cls] = Limit(rate, burst)
    return ThrottleSettings(limits) if limits else None


def _invalid(text: str, why: str) -> InvalidArgument:
    return InvalidArgument(
        "--throttle",
        f"The throttle setting {text!r} is not valid: {why}. Give CLASS=RATE/BURST or "
        f"CLASS=off, comma-separated, with CLASS one of {', '.join(CLASSES)} "
        "(e.g. read=50/100,write=10/20), or off.",
    )


def lease_size(burst: int) -> int:
    """Tokens a process takes from the shared bucket at a time."""
    return max(1, burst // 4)


@dataclass
class _Bucket:
    """This process's part of one shared bucket."""

    leased: int = 0  # tokens taken from the row, not yet spent
    empty_until_ms: int = 0  # the row has no whole token before then
    leasing: threading.Lock = field(default_factory=threading.Lock)


class Throttle:
    """Admits or refuses each authenticated request (thread-safe)."""

    def __init__(self, store: Store, settings: ThrottleSettings) -> None:
        self.store = store
        self.settings = settings
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def admit(self, access_key_id: str, cls: str, now_ms: int, wait: bool = True) -> None:
        """Return when a request of the action class `cls` may run; Throttled when its key
        is over the class's limit. `wait` false: StoreBusy rather than going to the
        database."""
        limit = self.settings.limits.get(cls)
        if limit is None:
            return
        with self._lock:
            bucket = self._buckets.setdefault((access_key_id, cls), _Bucket())
            if _from_lease(bucket, cls, limit, now_ms):
                return
        if not wait:
            raise StoreBusy("The throttle's lease is spent; leasing needs the database.")
        with bucket.leasing:
            with self._lock:  # another thread may have leased while this one waited
                if _from_lease(bucket, cls, limit, now_ms):
                    return
            with self.store.write() as tx:
                lease = tx.throttle.lease(
                    access_key_id,
                    cls,
                    limit.rate,
                    limit.burst,
                    lease_size(limit.burst),
                    now_ms,
                )
            with self._lock:
                if lease.granted:
                    bucket.leased += lease.granted - 1
                    return
                bucket.empty_until_ms = now_ms + lease.retry_after_ms
        raise _throttled(cls, limit, lease.retry_after_ms)


def _from_lease(bucket: _Bucket, cls: str, limit: Limit, now_ms: int) -> bool:
    """True when a leased token was spent; Throttled while the shared bucket is known to be
    empty. The caller holds the Throttle's lock."""
    if bucket.leased > 0:
        bucket.leased -= 1
        return True
    if now_ms < bucket.empty_until_ms:
        raise _throttled(cls, limit, bucket.empty_until_ms - now_ms)
    return False


def _throttled(cls: str, limit: Limit, retry_after_ms: int) -> Throttled:
    return Throttled(
        f"Request was denied due to user flow control: this AccessKey may make {limit.rate:g} "
        f"{cls} requests a second (bursts of {limit.burst}); retry after {retry_after_ms} ms.",
        max(1, retry_after_ms),
    )
