"""AccessKeys: the credentials that sign requests, their secrets sealed at rest (`secrets.py`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from dwsched.domain.errors import AccessKeyNotFound
from dwsched.domain.models import AccessKey, KeyStatus
from dwsched.store import nonces
from dwsched.store.dialect import lock_against_writers
from dwsched.store.schema import access_keys
from dwsched.store.secrets import (
    SecretBox,
    ServerKeyError,
    UnreadableSecret,
    reveal,
    sealed_key_id,
)
from dwsched.store.statements import Compiled, run


def _key(row: sa.Row[tuple[object, ...]]) -> AccessKey:
    """The key with its secret as stored (sealed, unless from before sealing)."""
    m = row._mapping
    return AccessKey(
        id=m["id"],
        secret=m["secret"],
        name=m["name"],
        status=KeyStatus(m["status"]),
        create_time=m["create_time"],
    )


@lru_cache(maxsize=8)
def _by_id(dialect: sa.Dialect) -> Compiled:
    return Compiled(sa.select(access_keys).where(access_keys.c.id == sa.bindparam("id")), dialect)


def key_on_cursor(
    cursor: Any, dialect: sa.Dialect, access_key_id: str, box: SecretBox | None = None
) -> AccessKey | None:
    """The key with its secret opened, on a raw cursor (every request looks its key up);
    UnreadableSecret when the secret is sealed with a key this process does not have."""
    rows = run(cursor, _by_id(dialect), {"id": access_key_id})
    if not rows:
        return None
    r = dict(zip(_KEY_COLUMNS, rows[0], strict=True))
    secret = reveal(box, r["id"], r["secret"])
    return AccessKey(r["id"], secret, r["name"], KeyStatus(r["status"]), r["create_time"])


_KEY_COLUMNS = [c.name for c in access_keys.columns]


class KeySession:
    """One signed request's key and nonce, inside one write transaction (Store.key_session)."""

    def __init__(
        self, cursor: Any, dialect: sa.Dialect, access_key_id: str, box: SecretBox | None = None
    ) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.key = key_on_cursor(cursor, dialect, access_key_id, box)
        self.now_ms: int | None = None

    def remember_nonce(self, nonce: str, expires_at: int, now_ms: int) -> bool:
        """True when the nonce is new (or expired) for this key; False when it is live."""
        if self.key is None:
            raise RuntimeError("no key to remember a nonce for")
        self.now_ms = now_ms
        return nonces.remember_nonce(
            self.cursor, self.dialect, self.key.id, nonce, expires_at, now_ms
        )


class Keys:
    """AccessKeys (`Tx.keys`): secrets written are sealed with the store's server key."""

    def __init__(self, conn: sa.Connection, secrets: SecretBox | None) -> None:
        self.conn = conn
        self.secrets = secrets

    def create(self, key: AccessKey) -> None:
        """Store a new key (`key.secret` is the plaintext), its secret sealed with the
        store's server key (as given without one)."""
        box = self.secrets
        self.conn.execute(
            sa.insert(access_keys).values(
                id=key.id,
                secret=box.seal(key.id, key.secret) if box is not None else key.secret,
                name=key.name,
                status=key.status.value,
                create_time=key.create_time,
            )
        )

    def all(self) -> list[AccessKey]:
        rows = self.conn.execute(sa.select(access_keys).order_by(access_keys.c.create_time))
        return [_key(r) for r in rows]

    def set_status(self, access_key_id: str, status: KeyStatus) -> None:
        done = self.conn.execute(
            sa.update(access_keys)
            .where(access_keys.c.id == access_key_id)
            .values(status=status.value)
        )
        if done.rowcount == 0:
            raise AccessKeyNotFound(access_key_id)

    def delete(self, access_key_id: str) -> None:
        done = self.conn.execute(sa.delete(access_keys).where(access_keys.c.id == access_key_id))
        if done.rowcount == 0:
            raise AccessKeyNotFound(access_key_id)

    def sealed_key_ids(self) -> set[str]:
        """The ids of the server keys the stored secrets are sealed with."""
        rows = self.conn.execute(
            sa.select(access_keys.c.secret).where(access_keys.c.secret.like("enc:%"))
        )
        return {kid for (stored,) in rows if (kid := sealed_key_id(stored)) is not None}

    def seal_plaintext(self) -> int:
        """Seal the secrets stored in plaintext (from before sealing) with the store's server
        key; how many there were."""
        box = self._box("no server key to seal secrets with")
        rows = self.conn.execute(
            sa.select(access_keys.c.id, access_keys.c.secret).where(
                access_keys.c.secret.not_like("enc:%")
            )
        ).all()
        return sum(
            self._replace_secret(key_id, stored, box.seal(key_id, stored))
            for key_id, stored in rows
        )

    def reseal(self, new: SecretBox) -> int:
        """Seal every secret with `new`: those sealed with the store's server key and
        plaintext ones; those sealed with `new` already stay. ServerKeyError for a secret
        sealed with any other key (the caller's transaction then changes nothing). How many
        were sealed anew; the store goes on with its own key (`Store.sealing_with(new)` is
        the store with the new one)."""
        old = self._box("no current server key to open secrets with")
        # Writers wait (a key created meanwhile would be sealed with the old key); readers,
        # hence signed requests, do not.
        lock_against_writers(self.conn, access_keys)
        rows = self.conn.execute(sa.select(access_keys.c.id, access_keys.c.secret)).all()
        done = 0
        for key_id, stored in rows:
            kid = sealed_key_id(stored)
            if kid == new.key_id:
                continue
            if kid is not None and kid != old.key_id:
                raise ServerKeyError(
                    f"The AccessKeySecret of {key_id} is sealed with server key {kid}, neither "
                    f"the current one ({old.key_id}) nor the new one ({new.key_id}); nothing "
                    "was changed."
                )
            try:
                secret = old.open(key_id, stored)
            except UnreadableSecret as exc:
                raise ServerKeyError(f"{exc}; nothing was changed.") from exc
            done += self._replace_secret(key_id, stored, new.seal(key_id, secret))
        return done

    def _box(self, missing: str) -> SecretBox:
        if self.secrets is None:
            raise RuntimeError(f"{missing} (Store.open(..., secrets=) or Store.sealing_with)")
        return self.secrets

    def _replace_secret(self, key_id: str, stored: str, sealed: str) -> int:
        """Compare-and-set, so that two processes sealing at once seal each secret once."""
        done = self.conn.execute(
            sa.update(access_keys)
            .where(access_keys.c.id == key_id, access_keys.c.secret == stored)
            .values(secret=sealed)
        )
        return done.rowcount
