"""Web console sessions: a row per sign-in, found by the SHA-256 of its cookie."""

from __future__ import annotations

import sqlalchemy as sa

from dwsched.domain.sessions import Session
from dwsched.store.schema import console_sessions, users


class Sessions:
    """Console sessions by the SHA-256 of their cookie (`Tx.sessions`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def create(
        self, digest: str, user_id: int, csrf_token: str, now_ms: int, expires_at: int
    ) -> None:
        self.conn.execute(
            sa.delete(console_sessions).where(console_sessions.c.expires_at <= now_ms)
        )
        self.conn.execute(
            sa.insert(console_sessions).values(
                id=digest,
                user_id=user_id,
                csrf_token=csrf_token,
                create_time=now_ms,
                last_seen=now_ms,
                expires_at=expires_at,
            )
        )

    def find(self, digest: str, now_ms: int) -> Session | None:
        """The live session with this digest, with its user's name; None if it lapsed, was
        ended, or its user is gone."""
        c = console_sessions.c
        row = self.conn.execute(
            sa.select(
                c.user_id, users.c.name, c.csrf_token, c.create_time, c.last_seen, c.expires_at
            )
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

    def touch(self, digest: str, now_ms: int, expires_at: int) -> None:
        self.conn.execute(
            sa.update(console_sessions)
            .where(console_sessions.c.id == digest)
            .values(last_seen=now_ms, expires_at=expires_at)
        )

    def end(self, digest: str) -> None:
        self.conn.execute(sa.delete(console_sessions).where(console_sessions.c.id == digest))
