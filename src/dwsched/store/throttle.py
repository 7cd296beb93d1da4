"""The shared token buckets of API throttling: one row per (AccessKey, action class).

A row holds the tokens left in the bucket at `updated_at` (epoch ms); what has refilled
since is computed when the row is next read, so nothing writes while nobody asks. Every
process on the database leases tokens from the same row (see api/throttle.py), one short
write transaction per lease.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa

from dwsched.store.dialect import insert_on_conflict
from dwsched.store.schema import throttle_buckets as tb


@dataclass(frozen=True)
class Lease:
    """What one lease got: `granted` tokens (0 when the bucket had not one whole token);
    `retry_after_ms`, when nothing was granted, the time until one token has refilled."""

    granted: int
    retry_after_ms: int


def refill(tokens: float, updated_at: int, now_ms: int, rate: float, burst: int) -> float:
    """The tokens in a bucket at `now_ms`: `rate` per second since `updated_at`, at most
    `burst`. A clock behind `updated_at` (another process's) refills nothing."""
    return min(float(burst), tokens + max(0, now_ms - updated_at) * rate / 1000.0)


class Buckets:
    """The shared token buckets (`Tx.throttle`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def lease(
        self,
        access_key_id: str,
        action_class: str,
        rate: float,
        burst: int,
        want: int,
        now_ms: int,
    ) -> Lease:
        """Take up to `want` whole tokens from the key's bucket for the class, creating it full.

        The transaction must be a write one: the upsert locks the row on PostgreSQL, and
        SQLite's `BEGIN IMMEDIATE` serialises the writers, so two processes never lease the same
        token.
        """
        tokens, updated_at = self._locked_row(access_key_id, action_class, burst, now_ms)
        available = refill(tokens, updated_at, now_ms, rate, burst)
        # A token that has refilled but for a float's rounding (1 - 1e-16) counts as whole.
        granted = min(want, math.floor(available + 1e-9))
        retry_after_ms = 0
        if granted == 0:
            retry_after_ms = max(1, math.ceil((1.0 - available) * 1000.0 / rate))
        self.conn.execute(
            sa.update(tb)
            .where(tb.c.access_key_id == access_key_id, tb.c.action_class == action_class)
            .values(tokens=max(0.0, available - granted), updated_at=max(updated_at, now_ms))
        )
        return Lease(granted, retry_after_ms)

    def _locked_row(
        self, access_key_id: str, action_class: str, burst: int, now_ms: int
    ) -> tuple[float, int]:
        """The row's (tokens, updated_at), inserted full when missing, locked until commit."""
        statement = insert_on_conflict(self.conn.dialect, tb).values(
            access_key_id=access_key_id,
            action_class=action_class,
            tokens=float(burst),
            updated_at=now_ms,
        )
        # A no-op update rather than DO NOTHING: RETURNING then gives the existing row too,
        # and PostgreSQL locks it (one round trip instead of an insert and a SELECT FOR UPDATE).
        upsert = statement.on_conflict_do_update(
            index_elements=[tb.c.access_key_id, tb.c.action_class],
            set_={"tokens": tb.c.tokens},
        ).returning(tb.c.tokens, tb.c.updated_at)
        row = self.conn.execute(upsert).one()
        return float(row.tokens), int(row.updated_at)
