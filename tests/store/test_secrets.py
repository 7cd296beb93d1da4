"""AccessKeySecrets sealed at rest: the cipher (`store/secrets.py`) and the store's key paths
on both databases."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dwsched.clock import SystemClock
from dwsched.domain.models import AccessKey, KeyStatus
from dwsched.runtime.keys import create_key
from dwsched.store import Store, secrets
from dwsched.store.schema import access_keys
from dwsched.store.secrets import (
    SecretBox,
    ServerKeyError,
    UnreadableSecret,
    forget_opened,
    generate_server_key,
    reveal,
    sealed_key_id,
)


@pytest.fixture(autouse=True)
def _forgetful() -> Iterator[None]:
    """Each test opens secrets with its own keys, not from what earlier tests opened."""
    forget_opened()
    yield
    forget_opened()


def box(name: str = "test") -> SecretBox:
    return SecretBox(generate_server_key(), name)


def stored_secrets(store: Store) -> dict[str, str]:
    with store.read() as tx:
        return dict(tx.conn.execute(sa.select(access_keys.c.id, access_keys.c.secret)).all())


def session_secret(store: Store, key_id: str) -> str:
    with store.key_session(key_id) as session:
        assert session.key is not None
        return session.key.secret


def plaintext_key(store: Store, key_id: str, secret: str) -> None:
    """A key as stored before secrets were sealed."""
    with store.write() as tx:
        tx.conn.execute(
            sa.insert(access_keys).values(
                id=key_id, secret=secret, name="old", status="Enabled", create_time=1
            )
        )


# The cipher


def test_sealed_form_names_the_server_key_and_opens_again() -> None:
    key = generate_server_key()
    b = SecretBox(key, "test")
    assert b.key_id == hashlib.sha256(base64.urlsafe_b64decode(key)).hexdigest()[:8]
    stored = b.seal("LTAIone", "s3cret-value-of-thirty-chars!!")
    assert stored.startswith(f"enc:{b.key_id}:")
    assert "s3cret" not in stored
    assert sealed_key_id(stored) == b.key_id
    assert b.seal("LTAIone", "s3cret-value-of-thirty-chars!!") != stored  # a fresh IV each time
    forget_opened()
    assert b.open("LTAIone", stored) == "s3cret-value-of-thirty-chars!!"
    assert reveal(b, "LTAIone", stored) == "s3cret-value-of-thirty-chars!!"


def test_another_key_or_an_altered_token_does_not_open() -> None:
    a, b = box("a"), box("b")
    stored = a.seal("LTAIone", "the-secret")
    forget_opened()
    with pytest.raises(UnreadableSecret, match=f"sealed with server key {a.key_id}") as wrong:
        b.open("LTAIone", stored)
    assert "the-secret" not in str(wrong.value)
    # Another key that claims the same id: the HMAC refuses it.
    impostor = SecretBox(generate_server_key(), "impostor")
    impostor.key_id = a.key_id
    with pytest.raises(UnreadableSecret, match="altered"):
        impostor.open("LTAIone", stored)
    altered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
    with pytest.raises(UnreadableSecret, match="altered"):
        a.open("LTAIone", altered)


def test_plaintext_from_before_is_read_as_it_is() -> None:
    assert reveal(None, "LTAIold", "plain-secret") == "plain-secret"
    assert box().open("LTAIold", "plain-secret") == "plain-secret"
    assert sealed_key_id("plain-secret") is None


def test_without_a_key_only_what_this_process_knows_opens() -> None:
    a = box()
    stored = a.seal("LTAIone", "known-here")
    assert reveal(None, "LTAIone", stored) == "known-here"  # this process sealed it
    forget_opened()
    with pytest.raises(UnreadableSecret, match="no server key"):
        reveal(None, "LTAIone", stored)
    # The id is part of what is remembered: another key's row with the same text is not it.
    a.open("LTAIone", stored)
    with pytest.raises(UnreadableSecret):
        reveal(None, "LTAItwo", stored)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "short",
        "x" * 44,
        base64.urlsafe_b64encode(b"16 bytes only!!!").decode(),
        generate_server_key()[:-2] + "!=",
        generate_server_key() + "A",
    ],
    ids=["empty", "short", "not-base64", "16-bytes", "bad-character", "too-long"],
)
def test_a_malformed_server_key_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ServerKeyError, match="does not hold a server key") as refused:
        SecretBox(bad, "DWSCHED_SECRET_KEY")
    assert refused.value.message.startswith("DWSCHED_SECRET_KEY")
    if bad:
        assert bad not in refused.value.message


def test_surrounding_whitespace_of_a_key_is_ignored() -> None:
    key = generate_server_key()
    assert SecretBox(f"  {key}\n", "file").key_id == SecretBox(key, "env").key_id
    assert key not in repr(SecretBox(key, "env"))


# The store


def test_created_keys_are_sealed_and_open_for_requests(db_url: str) -> None:
    b = box()
    with Store.open(db_url, secrets=b) as store:
        key = create_key(store, "sealed", SystemClock().now_ms())
        stored = stored_secrets(store)[key.id]
        assert stored.startswith(f"enc:{b.key_id}:") and key.secret not in stored
        with store.read() as tx:
            assert all(k.secret == stored for k in tx.keys.all() if k.id == key.id)
        forget_opened()
    with Store.open(db_url) as again:  # another process: only the server key opens it
        with pytest.raises(UnreadableSecret):
            session_secret(again, key.id)
        assert session_secret(again.sealing_with(b), key.id) == key.secret


def test_a_secret_is_decrypted_once_per_process(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = box()
    with Store.open(db_url, secrets=b) as store:
        key = create_key(store, "hot", SystemClock().now_ms())
        forget_opened()
        calls: list[Any] = []
        real = b._fernet.decrypt
        monkeypatch.setattr(b._fernet, "decrypt", lambda token: calls.append(1) or real(token))
        for _ in range(5):
            assert session_secret(store, key.id) == key.secret
        assert len(calls) == 1


def test_sqlite_files_hold_no_plaintext_secret(tmp_path: Path) -> None:
    db = tmp_path / "raw.db"
    made: list[AccessKey] = []
    with Store.open(f"sqlite:///{db}", secrets=box()) as store:
        made = [create_key(store, f"k{n}", SystemClock().now_ms()) for n in range(5)]
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("raw.db"))
        assert (tmp_path / "raw.db-wal").exists()  # the rows may be in the WAL only: read both
        for key in made:
            assert key.id.encode() in raw
            assert key.secret.encode() not in raw


def test_plaintext_secrets_are_accepted_then_sealed_once(db_url: str) -> None:
    b = box()
    with Store.open(db_url) as plain:
        plaintext_key(plain, "LTAIbeforeSealing0001", "old-plain-secret-1")
        plaintext_key(plain, "LTAIbeforeSealing0002", "old-plain-secret-2")
        store = plain.sealing_with(b)
        assert session_secret(store, "LTAIbeforeSealing0001") == "old-plain-secret-1"
        with store.write() as tx:
            assert tx.keys.sealed_key_ids() == set()
            assert tx.keys.seal_plaintext() == 2
            assert tx.keys.seal_plaintext() == 0
        rows = stored_secrets(store)
        assert all(sealed_key_id(s) == b.key_id for s in rows.values())
        with store.read() as tx:
            assert tx.keys.sealed_key_ids() == {b.key_id}
        forget_opened()
        assert session_secret(store, "LTAIbeforeSealing0002") == "old-plain-secret-2"


def test_resealing_moves_every_secret_to_the_new_key(db_url: str) -> None:
    old, new = box("old"), box("new")
    with Store.open(db_url, secrets=old) as before_rotation:
        made = [create_key(before_rotation, f"k{n}", SystemClock().now_ms()) for n in range(3)]
        plaintext_key(before_rotation, "LTAIstillPlain0000001", "still-plain")
        before = stored_secrets(before_rotation)
        with before_rotation.write() as tx:
            assert tx.keys.reseal(new) == 4
        assert before_rotation.secrets is old  # resealing changes no store's key
        store = before_rotation.sealing_with(new)
        after = stored_secrets(store)
        with store.read() as tx:
            assert tx.keys.sealed_key_ids() == {new.key_id}
        forget_opened()
        for key in made:
            assert after[key.id] != before[key.id]
            with pytest.raises(UnreadableSecret):
                old.open(key.id, after[key.id])
            assert session_secret(store, key.id) == key.secret
        assert session_secret(store, "LTAIstillPlain0000001") == "still-plain"
        with store.write() as tx:
            assert tx.keys.reseal(box("newer")) == 4


def test_resealing_stops_at_a_secret_of_an_unknown_key_and_changes_nothing(db_url: str) -> None:
    old, new, stranger = box("old"), box("new"), box("stranger")
    with Store.open(db_url, secrets=old) as store:
        create_key(store, "mine", SystemClock().now_ms())
        create_key(store.sealing_with(stranger), "theirs", SystemClock().now_ms())
        before = stored_secrets(store)
        with pytest.raises(ServerKeyError, match=stranger.key_id) as refused:
            with store.write() as tx:
                tx.keys.reseal(new)
        assert "nothing was changed" in refused.value.message
        assert stored_secrets(store) == before
        assert store.secrets is old


def test_keys_are_created_as_given_without_a_server_key(db_url: str) -> None:
    """Library use and tests: a store given no server key keeps secrets as it gets them."""
    with Store.open(db_url) as store:
        key = create_key(store, "plain", SystemClock().now_ms())
        assert stored_secrets(store)[key.id] == key.secret
        assert session_secret(store, key.id) == key.secret
        with pytest.raises(RuntimeError, match="no server key"):
            with store.write() as tx:
                tx.keys.seal_plaintext()


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_MAX_OPENED", 3)
    b = box()
    for n in range(7):
        b.seal(f"LTAI{n}", f"secret-{n}")
    assert 1 <= len(secrets._opened) <= 3


def test_key_status_is_unchanged_by_sealing(db_url: str) -> None:
    with Store.open(db_url, secrets=box()) as store:
        key = create_key(store, "status", SystemClock().now_ms())
        with store.write() as tx:
            tx.keys.set_status(key.id, KeyStatus.DISABLED)
        with store.key_session(key.id) as session:
            assert session.key is not None and session.key.status is KeyStatus.DISABLED
