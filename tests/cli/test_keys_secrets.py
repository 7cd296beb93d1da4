"""AccessKeySecrets at rest through the command line: the server key (DWSCHED_SECRET_KEY or
its 0600 file), sealing on creation and on the first start, rotation, and no secret in the
database files or the logs."""

from __future__ import annotations

import contextlib
import json
import logging
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa
from alibabacloud_tea_openapi.exceptions import ClientException
from click.testing import Result
from Tea.exceptions import UnretryableException

from dwsched.clock import SystemClock
from dwsched.runtime.keys import create_key, default_key_file, unlock, write_key_file
from dwsched.store import Store
from dwsched.store.schema import access_keys
from dwsched.store.secrets import (
    SecretBox,
    ServerKeyError,
    UnreadableSecret,
    forget_opened,
    generate_server_key,
    sealed_key_id,
)
from tests.cli.helpers import (
    SHANGHAI_DAY_MS,
    clean_error,
    cli_env,
    dwsched_process,
    invoke,
    ok,
    option_blocks,
    sdk,
    sdk_list,
)
from tests.support.factories import project
from tests.support.server import LiveServer, free_port, running_server

NO_KEY_ENV: dict[str, str | None] = {"DWSCHED_SECRET_KEY": None, "DWSCHED_SECRET_KEY_FILE": None}


@pytest.fixture(autouse=True)
def _forgetful() -> Iterator[None]:
    """Secrets are opened with the server key, not from what this process saw earlier."""
    forget_opened()
    yield
    forget_opened()


def keys(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    return invoke("keys", *args, env={**NO_KEY_ENV, **(env or {})})


def new_key(db: str, *args: str, env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    result = ok(keys("create", "--db", db, "--json", *args, env=env))
    made: dict[str, str] = json.loads(result.stdout)
    return made


def stored(db: str) -> dict[str, str]:
    with Store.open(db) as store, store.read() as tx:
        return dict(tx.conn.execute(sa.select(access_keys.c.id, access_keys.c.secret)).all())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def key_text(path: Path) -> str:
    return path.read_text().strip()


@contextlib.contextmanager
def serving(
    db: str, key_file: Path | None = None, secret_key: str | None = None
) -> Iterator[LiveServer]:
    """A live server whose store has the server key, as `dwsched serve` gives it; what this
    process sealed or opened before is forgotten, so every secret is really decrypted. The
    fixture's own key was made in plaintext, so it is sealed here, as on a first start."""
    found = key_file or Path("/nonexistent/never.key")
    with running_server(db, server_key=lambda s: unlock(s, secret_key, found).store) as live:
        forget_opened()
        yield live


def authenticates(live: LiveServer, key_id: str, secret: str) -> bool:
    p = project(live.store)
    try:
        sdk_list(sdk(live.endpoint, key_id, secret), p.id, SHANGHAI_DAY_MS)
    except (ClientException, UnretryableException):
        return False
    return True


# Creation


def test_created_secrets_are_sealed_and_still_authenticate(db_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "server.key"
    made = [new_key(db_url, "--secret-key-file", str(key_file)) for _ in range(2)]
    assert mode(key_file) == 0o600
    kid = SecretBox(key_text(key_file), "file").key_id
    rows = stored(db_url)
    for key in made:
        assert rows[key["AccessKeyId"]].startswith(f"enc:{kid}:")
        assert key["AccessKeySecret"] not in rows[key["AccessKeyId"]]
    with serving(db_url, key_file) as live:
        for key in made:
            assert authenticates(live, key["AccessKeyId"], key["AccessKeySecret"])
        assert authenticates(live, live.key_id, live.secret)  # sealed on this "start"
        assert sdk_list(live.sdk("v2"), project(live.store).id, SHANGHAI_DAY_MS).total_count == 0
        assert not authenticates(live, made[0]["AccessKeyId"], made[0]["AccessKeySecret"] + "x")
    assert sealed_key_id(stored(db_url)[live.key_id]) == kid


def test_sqlite_database_and_wal_hold_no_plaintext_secret(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    with Store.open(db) as keeper:  # an open connection keeps the WAL from being checkpointed
        keeper.ping()
        made = [new_key(db) for _ in range(3)]
        plain = ok(keys("create", "--db", db, "--name", "shown"))
        shown = plain.stdout.split("AccessKeySecret:")[1].split()[0]
        assert shown not in plain.stderr
        wal = tmp_path / "k.db-wal"
        assert wal.exists()
        raw = b"".join((tmp_path / name).read_bytes() for name in ("k.db", "k.db-wal"))
    for secret in [k["AccessKeySecret"] for k in made] + [shown]:
        assert secret.encode() not in raw
    assert made[0]["AccessKeyId"].encode() in raw  # the rows are there
    assert (tmp_path / "k.db.key").exists()  # the default key file: beside the database
    assert mode(tmp_path / "k.db.key") == 0o600


def test_default_key_file_locations(tmp_path: Path) -> None:
    config_dir = tmp_path / "cfg"
    assert default_key_file("sqlite:///data/one.db", config_dir) == Path("data/one.db.key")
    assert default_key_file(f"sqlite:///{tmp_path}/a.db", config_dir) == tmp_path / "a.db.key"
    assert default_key_file("sqlite://", config_dir) == config_dir / "secret.key"
    assert default_key_file("postgresql://u@h:5432/db", config_dir) == config_dir / "secret.key"


def test_two_first_starts_at_once_share_one_key_file(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "server.key"
    first, second = generate_server_key(), generate_server_key()
    assert write_key_file(path, first, replace=False)
    assert not write_key_file(path, second, replace=False)
    assert key_text(path) == first
    assert mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["server.key"]  # no temporary left


# The server key's checks


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_may_read_is_refused(tmp_path: Path, loose: int) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    key_file = tmp_path / "loose.key"
    key_file.write_text(generate_server_key() + "\n")
    key_file.chmod(loose)
    result = clean_error(
        keys("create", "--db", db, "--secret-key-file", str(key_file)),
        str(key_file),
        "chmod 600",
        f"{loose:04o}",
    )
    assert key_text(key_file) not in result.output
    assert stored(db) == {}
    clean_error(
        invoke(
            "serve",
            "--db",
            db,
            "--port",
            str(free_port()),
            env={
                **NO_KEY_ENV,
                "DWSCHED_SECRET_KEY_FILE": str(key_file),
            },
        ),
        "chmod 600",
    )


@pytest.mark.parametrize(
    "bad",
    ["not-a-key", "x" * 44, generate_server_key()[:40]],
    ids=["not-a-key", "not-base64-of-32-bytes", "truncated"],
)
def test_a_bad_environment_key_is_a_clean_error(tmp_path: Path, bad: str) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    env = {"DWSCHED_SECRET_KEY": bad}
    for args in (("keys", "create", "--db", db), ("serve", "--db", db, "--port", str(free_port()))):
        result = clean_error(invoke(*args, env=env), "DWSCHED_SECRET_KEY", "server key")
        assert bad not in result.output
    assert stored(db) == {}


def test_a_key_file_that_is_not_a_key_is_a_clean_error(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    key_file = tmp_path / "junk.key"
    key_file.write_text("hello\n")
    key_file.chmod(0o600)
    clean_error(keys("create", "--db", db, "--secret-key-file", str(key_file)), str(key_file))


def test_the_environment_key_wins_and_writes_no_file(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    server_key = generate_server_key()
    made = new_key(db, env={"DWSCHED_SECRET_KEY": server_key})
    assert not (tmp_path / "k.db.key").exists()
    kid = SecretBox(server_key, "env").key_id
    assert sealed_key_id(stored(db)[made["AccessKeyId"]]) == kid
    with serving(db, secret_key=server_key) as live:
        assert authenticates(live, made["AccessKeyId"], made["AccessKeySecret"])


def test_another_key_than_the_databases_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    right = tmp_path / "right.key"
    new_key(db, "--secret-key-file", str(right))
    kid = SecretBox(key_text(right), "file").key_id
    wrong = tmp_path / "wrong.key"
    write_key_file(wrong, generate_server_key())
    clean_error(keys("create", "--db", db, "--secret-key-file", str(wrong)), kid)
    clean_error(keys("create", "--db", db, env={"DWSCHED_SECRET_KEY": generate_server_key()}), kid)
    # A missing key file is not replaced by a new key while the database needs the old one.
    missing = tmp_path / "missing.key"
    clean_error(keys("create", "--db", db, "--secret-key-file", str(missing)), "does not exist")
    assert not missing.exists()
    assert len(stored(db)) == 1


def test_a_server_given_the_wrong_key_fails_the_request_without_showing_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    made = new_key(db, "--secret-key-file", str(tmp_path / "right.key"))
    forget_opened()
    caplog.set_level(logging.DEBUG)
    wrong = SecretBox(generate_server_key(), "wrong")
    with running_server(db, server_key=lambda s: s.sealing_with(wrong)) as live:
        p = project(live.store)
        with pytest.raises(Exception) as failed:  # the SDK raises ServerException for a 500
            sdk_list(sdk(live.endpoint, made["AccessKeyId"], made["AccessKeySecret"]), p.id, 1)
        assert "InternalError" in str(failed.value)
        assert made["AccessKeySecret"] not in str(failed.value)
    assert "sealed with server key" in caplog.text  # the operator sees why
    assert made["AccessKeySecret"] not in caplog.text


# Logs


def test_logs_of_key_creation_and_requests_hold_no_secret(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key_file = tmp_path / "server.key"
    made = new_key(db_url, "--secret-key-file", str(key_file))
    plain = ok(keys("create", "--db", db_url, "--secret-key-file", str(key_file)))
    shown = plain.stdout.split("AccessKeySecret:")[1].split()[0]
    with serving(db_url, key_file) as live:
        runtime_key = create_key(live.store, "runtime", SystemClock().now_ms())
        for key_id, secret in (
            (made["AccessKeyId"], made["AccessKeySecret"]),
            (runtime_key.id, runtime_key.secret),
        ):
            assert authenticates(live, key_id, secret)
            assert not authenticates(live, key_id, secret[:-1] + "?")  # SignatureDoesNotMatch
        assert authenticates(live, live.key_id, live.secret)
    server_key = key_text(key_file)
    secrets = [made["AccessKeySecret"], shown, runtime_key.secret, live.secret, server_key]
    assert caplog.records  # the capture works: the server logged something
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in plain.stderr


# Plaintext from before


def test_plaintext_secrets_are_sealed_on_the_first_start_with_a_key(
    db_url: str, tmp_path: Path
) -> None:
    with Store.open(db_url) as before:  # a database from before sealing
        old = [create_key(before, f"old{n}", SystemClock().now_ms()) for n in range(2)]
    assert {stored(db_url)[k.id] for k in old} == {k.secret for k in old}
    key_file = tmp_path / "server.key"
    first = ok(keys("create", "--db", db_url, "--secret-key-file", str(key_file)))
    assert "Sealed 2 AccessKeySecret(s) stored in plaintext" in first.stderr
    assert "Created the server key file" in first.stderr
    kid = SecretBox(key_text(key_file), "file").key_id
    rows = stored(db_url)
    assert all(sealed_key_id(s) == kid for s in rows.values()), rows
    again = ok(keys("create", "--db", db_url, "--secret-key-file", str(key_file)))
    assert "Sealed" not in again.stderr and "Created" not in again.stderr
    forget_opened()
    with serving(db_url, key_file) as live:
        for key in old:
            assert authenticates(live, key.id, key.secret)


def test_serve_seals_plaintext_secrets_at_start_and_its_workers_open_them(
    tmp_path: Path,
) -> None:
    """Real processes (nothing remembered in this one): `serve --workers 2` with the key in
    DWSCHED_SECRET_KEY seals the keys made before, and both worker processes open them."""
    db = f"sqlite:///{tmp_path / 'w.db'}"
    with Store.open(db) as before:
        old = create_key(before, "old", SystemClock().now_ms())
        p = project(before)
    server_key = generate_server_key()
    port = free_port()
    env = cli_env(DWSCHED_SECRET_KEY=server_key)
    with dwsched_process("serve", "--db", db, "--port", str(port), "--workers", "2", env=env) as s:
        s.wait_listening(port)
        assert sealed_key_id(stored(db)[old.id]) == SecretBox(server_key, "env").key_id
        for _ in range(6):  # a new connection each time: either worker may answer
            client = sdk(f"127.0.0.1:{port}", old.id, old.secret)
            assert sdk_list(client, p.id, SHANGHAI_DAY_MS).total_count == 0
        assert s.interrupt() == 0, s.stderr
    assert "Sealed 1 AccessKeySecret(s)" in s.stderr
    assert old.secret not in s.stdout + s.stderr
    assert server_key not in s.stdout + s.stderr
    assert "Traceback" not in s.stderr


# Rotation


def test_rotation_keeps_keys_working_and_the_old_key_opens_nothing(
    db_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "server.key"
    made = [new_key(db_url, "--secret-key-file", str(key_file)) for _ in range(2)]
    old_key = key_text(key_file)
    result = ok(keys("rotate-server-key", "--db", db_url, "--secret-key-file", str(key_file)))
    new_server_key = key_text(key_file)
    old_box, new_box = SecretBox(old_key, "old"), SecretBox(new_server_key, "new")
    assert new_server_key != old_key
    assert f"Sealed 2 AccessKeySecret(s) with server key {new_box.key_id}" in result.stdout
    assert old_key not in result.output and new_server_key not in result.output
    backup = tmp_path / "server.key.old"
    assert key_text(backup) == old_key
    assert mode(key_file) == 0o600 and mode(backup) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("server")) == [
        "server.key",
        "server.key.old",
    ]
    rows = stored(db_url)
    forget_opened()
    for key in made:
        assert sealed_key_id(rows[key["AccessKeyId"]]) == new_box.key_id
        with pytest.raises(UnreadableSecret):
            old_box.open(key["AccessKeyId"], rows[key["AccessKeyId"]])
    with serving(db_url, key_file) as live:
        for key in made:
            assert authenticates(live, key["AccessKeyId"], key["AccessKeySecret"])
    # The old key file no longer starts anything on this database.
    clean_error(keys("create", "--db", db_url, "--secret-key-file", str(backup)), new_box.key_id)
    with Store.open(db_url) as store, pytest.raises(ServerKeyError):
        unlock(store, None, backup)
    # And a second rotation works the same way.
    ok(keys("rotate-server-key", "--db", db_url, "--secret-key-file", str(key_file)))
    assert key_text(backup) == new_server_key


def test_rotation_to_a_given_key_file(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    made = new_key(db)
    default = tmp_path / "k.db.key"
    chosen = tmp_path / "chosen.key"
    write_key_file(chosen, generate_server_key())
    ok(keys("rotate-server-key", "--db", db, "--new-key-file", str(chosen)))
    assert key_text(default) == key_text(chosen)
    with serving(db, default) as live:
        assert authenticates(live, made["AccessKeyId"], made["AccessKeySecret"])
    # The same key again is refused; so is a loose new key file.
    clean_error(keys("rotate-server-key", "--db", db, "--new-key-file", str(chosen)), "current")
    chosen.chmod(0o644)
    clean_error(keys("rotate-server-key", "--db", db, "--new-key-file", str(chosen)), "chmod 600")


def test_rotation_with_the_key_in_the_environment(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    first = generate_server_key()
    made = new_key(db, env={"DWSCHED_SECRET_KEY": first})
    env = {"DWSCHED_SECRET_KEY": first}
    clean_error(keys("rotate-server-key", "--db", db, env=env), "--new-key-file")
    new_file = tmp_path / "next.key"
    write_key_file(new_file, generate_server_key())
    done = ok(keys("rotate-server-key", "--db", db, "--new-key-file", str(new_file), env=env))
    assert "Set DWSCHED_SECRET_KEY to the key in" in done.stdout
    assert not (tmp_path / "k.db.key").exists()
    second = key_text(new_file)
    clean_error(keys("create", "--db", db, env=env), SecretBox(second, "new").key_id)
    also = new_key(db, env={"DWSCHED_SECRET_KEY": second})
    with serving(db, secret_key=second) as live:
        for key in (made, also):
            assert authenticates(live, key["AccessKeyId"], key["AccessKeySecret"])


def test_rotation_without_a_key_file_is_a_clean_error(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    clean_error(keys("rotate-server-key", "--db", db), "no server key file")


def test_a_failed_rotation_changes_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    new_key(db)
    key_file = tmp_path / "k.db.key"
    lost = SecretBox(generate_server_key(), "lost")  # a key nobody has any more
    with Store.open(db, secrets=lost) as store:
        create_key(store, "orphan", SystemClock().now_ms())
    before, key_before = stored(db), key_text(key_file)
    clean_error(keys("rotate-server-key", "--db", db), "nothing was changed")
    assert stored(db) == before
    assert key_text(key_file) == key_before
    assert sorted(p.name for p in tmp_path.iterdir() if ".key" in p.name) == ["k.db.key"]


# Help


def test_help_documents_the_server_key() -> None:
    for command in (("serve",), ("demo",), ("keys", "create"), ("keys", "rotate-server-key")):
        blocks = option_blocks(ok(invoke(*command, "--help")).stdout)
        assert "env var: DWSCHED_SECRET_KEY_FILE" in blocks["--secret-key-file"]
        assert "DWSCHED_SECRET_KEY," in blocks["--secret-key-file"]
        assert "0600" in blocks["--secret-key-file"]
    text = ok(invoke("keys", "rotate-server-key", "--help")).stdout
    assert "Stop every" in text and "KEYFILE.old" in text and "--new-key-file" in text
    assert "env var: DWSCHED_NEW_SECRET_KEY_FILE" in option_blocks(text)["--new-key-file"]
