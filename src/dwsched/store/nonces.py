"""Signature nonces seen within the replay window, shared by all API processes.

A nonce is remembered until the request's own timestamp leaves the window, so the table
holds at most one window of traffic; expired rows are swept by the caller now and then.
Every signed request records one nonce, so the insert runs on the raw cursor.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from dwsched.store.dialect import insert_on_conflict, skip_commit_flush
from dwsched.store.schema import request_nonces
from dwsched.store.statements import Compiled, run


@lru_cache(maxsize=8)
def _insert(dialect: sa.Dialect) -> Compiled:
    statement = insert_on_conflict(dialect, request_nonces).values(
        access_key_id=sa.bindparam("key"),
        nonce=sa.bindparam("nonce"),
        expires_at=sa.bindparam("expires_at"),
    )
    # A row left by an expired request (not swept yet) is taken over; a live one wins.
    upsert = statement.on_conflict_do_update(
        index_elements=[request_nonces.c.access_key_id, request_nonces.c.nonce],
        set_={"expires_at": statement.excluded.expires_at},
        where=request_nonces.c.expires_at < sa.bindparam("now"),
    ).returning(request_nonces.c.nonce)
    return Compiled(upsert, dialect)


def remember_nonce(
    cursor: Any, dialect: sa.Dialect, access_key_id: str, nonce: str, expires_at: int, now_ms: int
) -> bool:
    """True when the nonce is new (or expired) for this key; False when it is live already."""
    # Not worth a WAL flush per request: a crash loses at most the last moments of nonces,
    # and replaying those needs a captured request within its 15 minutes.
    skip_commit_flush(cursor, dialect)
    values = {"key": access_key_id, "nonce": nonce, "expires_at": expires_at, "now": now_ms}
    return bool(run(cursor, _insert(dialect), values))


class Nonces:
    """Replay protection's nonces (`Tx.nonces`; recording one runs on the raw cursor)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def sweep(self, now_ms: int) -> int:
        done = self.conn.execute(
            sa.delete(request_nonces).where(request_nonces.c.expires_at < now_ms)
        )
        return int(done.rowcount or 0)
