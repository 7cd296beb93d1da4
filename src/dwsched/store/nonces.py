"""Signature nonces seen within the replay window, shared by all API processes.

A nonce is remembered until the request's own timestamp leaves the window, so the table
holds at most one window of traffic; expired rows are swept by the caller now and then.
Every signed request records one nonce, so the insert runs on the raw cursor.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from dwsched.store.schema import request_nonces
from dwsched.store.statements import Compiled, run


@lru_cache(maxsize=8)
def _insert(dialect: sa.Dialect) -> Compiled:
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(request_nonces)
        .values(
            access_key_id=sa.bindparam("key"),
            nonce=sa.bindparam("nonce"),
            expires_at=sa.bindparam("expires_at"),
        )
        .on_conflict_do_nothing()
        .returning(request_nonces.c.nonce)
    )
    return Compiled(statement, dialect)


def remember_nonce(
    cursor: Any, dialect: sa.Dialect, access_key_id: str, nonce: str, expires_at: int
) -> bool:
    """True when the nonce is new for this key; False when it was seen already."""
    rows = run(
        cursor, _insert(dialect), {"key": access_key_id, "nonce": nonce, "expires_at": expires_at}
    )
    return bool(rows)


def sweep_nonces(conn: sa.Connection, now_ms: int) -> int:
    done = conn.execute(sa.delete(request_nonces).where(request_nonces.c.expires_at < now_ms))
    return int(done.rowcount or 0)
