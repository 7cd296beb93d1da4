"""AccessKeys: the credentials that sign requests."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from dwsched.domain.errors import AccessKeyNotFound
from dwsched.domain.models import AccessKey, KeyStatus
from dwsched.store import nonces
from dwsched.store.schema import access_keys
from dwsched.store.statements import Compiled, run


def _key(row: sa.Row[tuple[object, ...]]) -> AccessKey:
    m = row._mapping
    return AccessKey(
        id=m["id"],
        secret=m["secret"],
        name=m["name"],
        status=KeyStatus(m["status"]),
        create_time=m["create_time"],
    )


def insert_key(conn: sa.Connection, key: AccessKey) -> None:
    conn.execute(
        sa.insert(access_keys).values(
            id=key.id,
            secret=key.secret,
            name=key.name,
            status=key.status.value,
            create_time=key.create_time,
        )
    )


@lru_cache(maxsize=8)
def _by_id(dialect: sa.Dialect) -> Compiled:
    return Compiled(sa.select(access_keys).where(access_keys.c.id == sa.bindparam("id")), dialect)


def key_on_cursor(cursor: Any, dialect: sa.Dialect, access_key_id: str) -> AccessKey | None:
    """The key, on a raw cursor (every request looks its key up)."""
    rows = run(cursor, _by_id(dialect), {"id": access_key_id})
    if not rows:
        return None
    r = dict(zip(_KEY_COLUMNS, rows[0], strict=True))
    return AccessKey(r["id"], r["secret"], r["name"], KeyStatus(r["status"]), r["create_time"])


_KEY_COLUMNS = [c.name for c in access_keys.columns]


class KeySession:
    """One signed request's key and nonce, inside one write transaction (Store.key_session)."""

    def __init__(self, cursor: Any, dialect: sa.Dialect, access_key_id: str) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.key = key_on_cursor(cursor, dialect, access_key_id)
        self.now_ms: int | None = None

    def remember_nonce(self, nonce: str, expires_at: int, now_ms: int) -> bool:
        """True when the nonce is new (or expired) for this key; False when it is live."""
        if self.key is None:
            raise RuntimeError("no key to remember a nonce for")
        self.now_ms = now_ms
        return nonces.remember_nonce(
            self.cursor, self.dialect, self.key.id, nonce, expires_at, now_ms
        )


def all_keys(conn: sa.Connection) -> list[AccessKey]:
    rows = conn.execute(sa.select(access_keys).order_by(access_keys.c.create_time))
    return [_key(r) for r in rows]


def set_key_status(conn: sa.Connection, access_key_id: str, status: KeyStatus) -> None:
    done = conn.execute(
        sa.update(access_keys).where(access_keys.c.id == access_key_id).values(status=status.value)
    )
    if done.rowcount == 0:
        raise AccessKeyNotFound(access_key_id)


def delete_key(conn: sa.Connection, access_key_id: str) -> None:
    done = conn.execute(sa.delete(access_keys).where(access_keys.c.id == access_key_id))
    if done.rowcount == 0:
        raise AccessKeyNotFound(access_key_id)
