"""AccessKeys, and the server key that seals their secrets at rest.

Ids and secrets come from the system's secure random source; a secret is returned once, to
be shown once, and stored sealed (`store/secrets.py`). The server key comes from
DWSCHED_SECRET_KEY, else from its file: created with mode 0600 on first use, refused when
group or others may read it. `rotate_server_key` seals every secret with a new key.
"""

from __future__ import annotations

import os
import secrets
import stat
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dwsched import config
from dwsched.domain.models import AccessKey, KeyStatus
from dwsched.store import SecretBox, ServerKeyError, Store, generate_server_key, sqlite_file

_ALPHABET = string.ascii_letters + string.digits
# How `serve --workers N` tells its worker processes where the key file is (a key from
# DWSCHED_SECRET_KEY reaches them by inheritance).
_HANDOVER_ENV = "_DWSCHED_SECRET_KEY_FILE"


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def create_key(store: Store, name: str, now_ms: int) -> AccessKey:
    """A new enabled key; its `secret` is the plaintext, stored sealed when the store has a
    server key (`unlock`)."""
    key = AccessKey(
        id="LTAI" + _random(20),
        secret=_random(30),
        name=name,
        status=KeyStatus.ENABLED,
        create_time=now_ms,
    )
    with store.write() as tx:
        tx.keys.create(key)
    return key


# The server key


def default_key_file(db_url: str, config_dir: Path) -> Path:
    """`FILE.key` beside a SQLite database file; `config_dir/secret.key` otherwise (a
    PostgreSQL database, SQLite in memory)."""
    database = sqlite_file(db_url)
    if database not in ("", ":memory:") and not database.startswith("file:"):
        return Path(database + ".key")
    return config_dir / "secret.key"


def read_key_file(path: Path) -> SecretBox:
    """The server key in `path`; ServerKeyError when it is missing, unreadable, malformed,
    open to group or others, or another user's."""
    try:
        found = path.stat()
        mode = found.st_mode
        if not stat.S_ISREG(mode):
            raise ServerKeyError(f"The server key file {path} is not a regular file.")
        if found.st_uid != os.geteuid():
            raise ServerKeyError(
                f"The server key file {path} belongs to uid {found.st_uid}, not to this "
                f"process's user (uid {os.geteuid()}): its owner could have planted or read "
                f"it; refusing to use it: run `chown {os.geteuid()} {path}` if it is yours."
            )
        if mode & 0o077:
            raise ServerKeyError(
                f"The server key file {path} may be read or written by group or others "
                f"(mode {stat.S_IMODE(mode):04o}); refusing to use it: run `chmod 600 {path}`."
            )
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ServerKeyError(f"Cannot read the server key file {path}: {_reason(exc)}") from exc
    return SecretBox(text, f"the server key file {path}", str(path))


def write_key_file(path: Path, key: str, replace: bool = True) -> bool:
    """Write `key` to `path` with mode 0600, atomically: a temporary file beside it, synced,
    then renamed over it (`replace`) or linked only where no file is (False when one was:
    two processes starting at once both use the first one's key)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
            made = True
        else:
            try:
                os.link(tmp, path)
                made = True
            except FileExistsError:
                made = False
        _sync_directory(path.parent)
    except OSError as exc:
        raise ServerKeyError(f"Cannot write the server key file {path}: {_reason(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return made


@dataclass(frozen=True, slots=True)
class Unlocked:
    store: Store  # the store sealing with `box`
    box: SecretBox
    created: bool  # the key file was made now
    sealed: int  # plaintext secrets sealed now


def unlock(store: Store, secret_key: str | None, key_file: Path) -> Unlocked:
    """`store` with the server key (`Unlocked.store`; `store` itself is left as it was):
    `secret_key` (DWSCHED_SECRET_KEY's value) if given, else the one in `key_file`, created
    when the database has no sealed secret yet. Then seal the secrets still stored in
    plaintext (from before sealing). ServerKeyError when the key is not the one the
    database's secrets are sealed with."""
    with store.read() as tx:
        sealed_with = tx.keys.sealed_key_ids()
    created = False
    if secret_key:
        box = SecretBox(secret_key, config.SECRET_KEY_ENV)
    elif key_file.exists():
        box = read_key_file(key_file)
    elif sealed_with:
        raise ServerKeyError(
            f"The server key file {key_file} does not exist, but the AccessKeySecrets in the "
            f"database are sealed with server key {', '.join(sorted(sealed_with))}: give "
            f"that key's file ({config.SECRET_KEY_FILE_ENV}) or the key "
            f"({config.SECRET_KEY_ENV})."
        )
    else:
        created = write_key_file(key_file, generate_server_key(), replace=False)
        box = read_key_file(key_file)
    foreign = sealed_with - {box.key_id}
    if foreign:
        hint = ""
        staged = _sibling(key_file, ".new")
        if not secret_key and staged.exists():
            hint = f" A rotation stopped half-way? The new key may be in {staged}."
        raise ServerKeyError(
            f"The AccessKeySecrets in the database are sealed with server key "
            f"{', '.join(sorted(foreign))}, but {box.source} holds server key "
            f"{box.key_id}.{hint}"
        )
    unlocked = store.sealing_with(box)
    with unlocked.write() as tx:
        sealed = tx.keys.seal_plaintext()
    return Unlocked(unlocked, box, created, sealed)


@dataclass(frozen=True, slots=True)
class Rotation:
    old_key_id: str
    new_key_id: str
    resealed: int
    key_file: Path | None  # holds the new key now (None: the key came from the environment)
    backup: Path | None  # holds the old key


def rotate_server_key(
    store: Store, secret_key: str | None, key_file: Path, new_key_file: Path | None
) -> Rotation:
    """Seal every secret with a new server key (from `new_key_file`, else generated) in one
    transaction. With the key in a file, the file then holds the new key (replaced
    atomically) and `FILE.old` the old one; a generated key is written to `FILE.new` before
    the transaction commits, so a crash never loses it. With `secret_key` (from the
    environment) no file is written: `new_key_file` is required."""
    if secret_key:
        if new_key_file is None:
            raise ServerKeyError(
                f"{config.SECRET_KEY_ENV} holds the server key, so there is no key file to "
                "write the new one to: put a new key in a file of mode 0600 and pass "
                "--new-key-file FILE."
            )
        old = SecretBox(secret_key, config.SECRET_KEY_ENV)
    elif not key_file.exists():
        raise ServerKeyError(
            f"There is no server key file {key_file} to rotate (start a server, or create a "
            f"key, to make one; or set {config.SECRET_KEY_FILE_ENV})."
        )
    else:
        old = read_key_file(key_file)
    if new_key_file is not None:
        new = read_key_file(new_key_file)
    else:
        new = SecretBox(generate_server_key(), "the new server key")
    if new.key_id == old.key_id:
        raise ServerKeyError(f"The new server key is the current one ({old.key_id}).")
    staged: Path | None = None
    if not secret_key and new_key_file is None:
        staged = _sibling(key_file, ".new")
        write_key_file(staged, new.export())
    try:
        with store.sealing_with(old).write() as tx:
            resealed = tx.keys.reseal(new)
            # The other secrets sealed with the server key: webhook URLs (not counted).
            tx.alerts.reseal(new)
            tx.users.reseal_webhooks(new)
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    if secret_key:
        return Rotation(old.key_id, new.key_id, resealed, None, None)
    backup = _sibling(key_file, ".old")
    try:
        write_key_file(backup, old.export())
        if staged is not None:
            os.replace(staged, key_file)
            _sync_directory(key_file.parent)
        else:
            write_key_file(key_file, new.export())
    except (OSError, ServerKeyError) as exc:
        reason = exc.message if isinstance(exc, ServerKeyError) else _reason(exc)
        raise ServerKeyError(
            f"The AccessKeySecrets are sealed with the new server key {new.key_id} now, but "
            f"{key_file} could not be updated ({reason}): put the key of "
            f"{staged or new_key_file} in {key_file} (mode 0600) before starting a server."
        ) from exc
    return Rotation(old.key_id, new.key_id, resealed, key_file, backup)


def handover(store: Store) -> dict[str, str]:
    """The environment worker processes need to open secrets as `store` does (`take_over`)."""
    box = store.secrets
    if box is None or box.path is None:
        return {}
    return {_HANDOVER_ENV: str(Path(box.path).resolve())}


def take_over(environ: Mapping[str, str]) -> SecretBox | None:
    """In a worker process: the server key its parent used (`handover`), to open its store
    with."""
    if environ.get(config.SECRET_KEY_ENV):
        return SecretBox(environ[config.SECRET_KEY_ENV], config.SECRET_KEY_ENV)
    if environ.get(_HANDOVER_ENV):
        return read_key_file(Path(environ[_HANDOVER_ENV]))
    return None


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
