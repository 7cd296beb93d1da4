"""Web console sessions and the counters of failed console sign-ins (the rules that read them
are web.signin's)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Session:
    """A live console session, found by the SHA-256 of its cookie."""

    user_id: int
    user_name: str
    csrf_token: str
    create_time: int
    last_seen: int
    expires_at: int


@dataclass(frozen=True, slots=True, order=True)
class Counter:
    """One counter of failed sign-ins; `user_name` or `source` is "" when it counts any."""

    kind: str
    user_name: str
    source: str


@dataclass(frozen=True, slots=True)
class Claim:
    """A try admitted at `at_ms` and counted as failed until it is settled; `blocked` is the
    refusal time it gave each counter. `wait_ms` > 0 instead: refused, nothing counted."""

    counters: tuple[Counter, ...]
    at_ms: int
    blocked: dict[Counter, int]
    wait_ms: int = 0
