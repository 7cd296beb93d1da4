"""Signature nonces seen within the replay window, shared by all API processes.

A nonce is remembered until the request's own timestamp leaves the window, so the table
holds at most one window of traffic; expired rows are swept by the caller now and then.
"""

from __future__ import annotations

import sqlalchemy as sa

from dwsched.store.dialect import insert_ignoring_conflicts
from dwsched.store.schema import request_nonces


def remember_nonce(conn: sa.Connection, access_key_id: str, nonce: str, expires_at: int) -> bool:
    """True when the nonce is new for this key; False when it was seen already."""
    stmt = (
        insert_ignoring_conflicts(conn, request_nonces)
        .values(access_key_id=access_key_id, nonce=nonce, expires_at=expires_at)
        .returning(request_nonces.c.nonce)
    )
    return conn.execute(stmt).first() is not None


def sweep_nonces(conn: sa.Connection, now_ms: int) -> int:
    done = conn.execute(sa.delete(request_nonces).where(request_nonces.c.expires_at < now_ms))
    return int(done.rowcount or 0)
