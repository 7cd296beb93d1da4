"""Console sign-in counters, shared by every API process on the database.

A counter (`kind`, user name, address) holds the failed sign-ins counted against it and the
time until which further tries are refused; a `trusted` row remembers that a user signed in
from an address. The rules (which counters a try counts against, how long each failure holds
them) are web.signin's; this module reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from dwsched.store.schema import signin_failures

TRUSTED = "trusted"
c = signin_failures.c


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


def _is(counter: Counter) -> sa.ColumnElement[bool]:
    return sa.and_(
        c.kind == counter.kind, c.user_name == counter.user_name, c.source == counter.source
    )


def counts(
    conn: sa.Connection, counters: Sequence[Counter], now_ms: int
) -> dict[Counter, tuple[int, int]]:
    """The live counters among `counters`: (failures, blocked_until), their rows locked until
    the transaction ends on PostgreSQL (SQLite's write transaction holds the lock already)."""
    if not counters:
        return {}
    rows = conn.execute(
        sa.select(c.kind, c.user_name, c.source, c.failures, c.blocked_until)
        .where(sa.or_(*(_is(k) for k in counters)), c.expires_at >= now_ms)
        .order_by(c.kind, c.user_name, c.source)
        .with_for_update()
    )
    return {
        Counter(r.kind, r.user_name, r.source): (int(r.failures), int(r.blocked_until))
        for r in rows
    }


def count_failure(
    conn: sa.Connection,
    counter: Counter,
    failures: int,
    blocked_until: int,
    now_ms: int,
    expires_at: int,
) -> None:
    """Count one failure: the row gets `failures` (one more than it had, as the caller read
    it) and refuses tries until `blocked_until`; a row that lapsed starts again."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(signin_failures).values(
        kind=counter.kind,
        user_name=counter.user_name,
        source=counter.source,
        failures=failures,
        blocked_until=blocked_until,
        expires_at=expires_at,
    )
    new = statement.excluded
    lapsed = c.expires_at < now_ms
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[c.kind, c.user_name, c.source],
            set_={
                # A row another process inserted meanwhile (both read none) still counts.
                "failures": sa.case(
                    (lapsed, new.failures),
                    (c.failures >= new.failures, c.failures + 1),
                    else_=new.failures,
                ),
                "blocked_until": sa.case(
                    (sa.and_(~lapsed, c.blocked_until > new.blocked_until), c.blocked_until),
                    else_=new.blocked_until,
                ),
                "expires_at": new.expires_at,
            },
        )
    )


def refund(conn: sa.Connection, counter: Counter, claimed_until: int, reopen_at: int) -> None:
    """Take back a failure counted in advance (the try succeeded, or never ran); the counter
    opens again at `reopen_at` unless a later try has set its own refusal time since."""
    conn.execute(
        sa.update(signin_failures)
        .where(_is(counter))
        .values(
            failures=sa.case((c.failures > 0, c.failures - 1), else_=0),
            blocked_until=sa.case(
                (c.blocked_until == claimed_until, reopen_at), else_=c.blocked_until
            ),
        )
    )


def forget(conn: sa.Connection, counter: Counter) -> None:
    conn.execute(sa.delete(signin_failures).where(_is(counter)))


def forget_if_clear(conn: sa.Connection, counter: Counter, now_ms: int) -> None:
    """Delete the counter if it counts no failure and holds nothing (a refund emptied it)."""
    conn.execute(
        sa.delete(signin_failures).where(_is(counter), c.failures == 0, c.blocked_until <= now_ms)
    )


def is_trusted(conn: sa.Connection, user_name: str, source: str, now_ms: int) -> bool:
    """Whether the user signed in from this address lately (the row has not lapsed)."""
    found = conn.execute(
        sa.select(c.kind).where(_is(Counter(TRUSTED, user_name, source)), c.expires_at >= now_ms)
    ).first()
    return found is not None


def trust(conn: sa.Connection, user_name: str, source: str, until_ms: int) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(signin_failures).values(
        kind=TRUSTED,
        user_name=user_name,
        source=source,
        failures=0,
        blocked_until=0,
        expires_at=until_ms,
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[c.kind, c.user_name, c.source],
            set_={"expires_at": statement.excluded.expires_at},
        )
    )


def sweep(conn: sa.Connection, now_ms: int) -> int:
    """Delete the rows that lapsed; how many."""
    done = conn.execute(sa.delete(signin_failures).where(c.expires_at < now_ms))
    return int(done.rowcount or 0)
