"""Guards of the console's sign-in: Argon2 work is bounded, and repeated failures are
slowed down per user name and per source address.

Argon2 costs about 0.1 s of a core and 64 MiB per check, by design: unbounded, a flood of
sign-ins would take the machine. At most `slots` checks run at once; a sign-in arriving
when all are busy is answered at once with 503 (never queued on the API's threads). Five
failures for one name within a minute, or thirty from one address, refuse further tries
(429) until the minute has passed. The counts live in this process (each API process
counts its own), which bounds guessing without a database write per attempt.
"""

from __future__ import annotations

import threading
from collections import deque

from dwsched.domain.errors import Throttled

WINDOW_MS = 60_000
PER_NAME = 5
PER_SOURCE = 30
MAX_TRACKED = 100_000


class Busy(Exception):
    """Every Argon2 slot is taken."""


class SignInGuard:
    def __init__(self, slots: int = 2) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._failures: dict[str, deque[int]] = {}

    def check(self, name: str, source: str, now_ms: int) -> None:
        """Throttled when the name or the address failed too often in the last minute."""
        with self._lock:
            for key, limit in ((f"name:{name}", PER_NAME), (f"source:{source}", PER_SOURCE)):
                recent = self._recent(key, now_ms)
                if len(recent) >= limit:
                    wait = recent[0] + WINDOW_MS - now_ms
                    raise Throttled(
                        "Too many failed sign-ins for this user name or from this address; "
                        f"try again in {max(1, wait // 1000)} s.",
                        retry_after_ms=max(wait, 1),
                    )

    def failed(self, name: str, source: str, now_ms: int) -> None:
        with self._lock:
            if len(self._failures) > MAX_TRACKED:
                self._failures.clear()
            for key in (f"name:{name}", f"source:{source}"):
                self._failures.setdefault(key, deque()).append(now_ms)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(f"name:{name}", None)

    def slot(self) -> _Slot:
        """A context holding one Argon2 slot; Busy at once when none is free."""
        if not self._slots.acquire(blocking=False):
            raise Busy
        return _Slot(self._slots)

    def _recent(self, key: str, now_ms: int) -> deque[int]:
        found = self._failures.get(key)
        if found is None:
            return deque()
        while found and found[0] <= now_ms - WINDOW_MS:
            found.popleft()
        if not found:
            del self._failures[key]
        return found


class _Slot:
    def __init__(self, semaphore: threading.BoundedSemaphore) -> None:
        self._semaphore = semaphore

    def release(self) -> None:
        self._semaphore.release()
