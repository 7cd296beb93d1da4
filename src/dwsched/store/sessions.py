"""Web console sessions: a row per sign-in, found by the SHA-256 of its cookie."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from dwsched.store.schema import console_sessions, users


@dataclass(frozen=True, slots=True)
class Session:
    user_id: int
    user_name: str
    csrf_token: str
    create_time: int
    last_seen: int
    expires_at: int


def create(
    conn: sa.Connection, digest: str, user_id: int, csrf_token: str, now_ms: int, expires_at: int
) -> None:
    conn.execute(sa.delete(console_sessions).where(console_sessions.c.expires_at <= now_ms))
    conn.execute(
        sa.insert(console_sessions).values(
            id=digest,
            user_id=user_id,
            csrf_token=csrf_token,
            create_time=now_ms,
            last_seen=now_ms,
            expires_at=expires_at,
        )
    )


def find(conn: sa.Connection, digest: str, now_ms: int) -> Session | None:
    """The live session with this digest, with its user's name; None if it lapsed, was
    ended, or its user is gone."""
    c = console_sessions.c
    row = conn.execute(
        sa.select(c.user_id, users.c.name, c.csrf_token, c.create_time, c.last_seen, c.expires_at)
        .join(users, users.c.id == c.user_id)
        .where(c.id == digest, c.expires_at > now_ms)
    ).first()
    if row is None:
        return None
    return Session(
        int(row.user_id),
        str(row.name),
        str(row.csrf_token),
        int(row.create_time),
        int(row.last_seen),
        int(row.expires_at),
    )


def touch(conn: sa.Connection, digest: str, now_ms: int, expires_at: int) -> None:
    conn.execute(
        sa.update(console_sessions)
        .where(console_sessions.c.id == digest)
        .values(last_seen=now_ms, expires_at=expires_at)
    )


def end(conn: sa.Connection, digest: str) -> None:
    conn.execute(sa.delete(console_sessions).where(console_sessions.c.id == digest))
