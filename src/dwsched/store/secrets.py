"""AccessKeySecrets at rest: sealed with the server key (Fernet: AES-128-CBC and HMAC-SHA256).

Stored form: `enc:<key id>:<Fernet token>`. The key id is the first 8 hex digits of the
SHA-256 of the server key, so a rotation tells the secrets sealed with the old key from the
new ones, and a process with the wrong key says so instead of failing every signature. A
stored secret without the `enc:` prefix is plaintext from before secrets were sealed: it is
used as it is until a start with a server key seals it (`Keys.seal_plaintext`).

Every signed request needs its key's secret, and opening one costs a Fernet decryption (an
HMAC and AES, about 10 µs): opened secrets are kept per process, keyed by (AccessKeyId,
stored form). A secret this process sealed is kept too: the process knows it already.

No message here carries a secret or a server key.
"""

from __future__ import annotations

import base64
import hashlib
import re

from cryptography.fernet import Fernet, InvalidToken

from dwsched.domain.errors import DwschedError

PREFIX = "enc:"
_SERVER_KEY = re.compile(r"[A-Za-z0-9_-]{43}=")
_MAX_OPENED = 10_000
_opened: dict[tuple[str, str], str] = {}


class ServerKeyError(DwschedError):
    """The server key is malformed or unusable, or not the one the stored secrets need."""


class UnreadableSecret(RuntimeError):
    """A stored secret this process cannot open: the server's fault (a missing or wrong
    server key, a tampered row), never the client's, so not a DwschedError."""


def generate_server_key() -> str:
    """A new random server key: 32 bytes in URL-safe base64 (44 characters)."""
    return Fernet.generate_key().decode("ascii")


def sealed_key_id(stored: str) -> str | None:
    """The id of the server key a stored secret is sealed with; None for plaintext."""
    if not stored.startswith(PREFIX):
        return None
    return stored[len(PREFIX) :].partition(":")[0]


class SecretBox:
    """Seals and opens AccessKeySecrets with one server key. `source` names where the key
    came from (an environment variable, a file) for messages; `path` is its file, if any."""

    def __init__(self, server_key: str, source: str, path: str | None = None) -> None:
        text = server_key.strip()
        if not _SERVER_KEY.fullmatch(text):
            raise ServerKeyError(
                f"{source[:1].upper()}{source[1:]} does not hold a server key: expected 32 "
                "bytes in URL-safe base64 "
                "(44 characters ending in '='), such as `dwsched keys rotate-server-key` "
                "generates."
            )
        self._key = text
        self._fernet = Fernet(text.encode("ascii"))
        raw = base64.urlsafe_b64decode(text)
        self.key_id = hashlib.sha256(raw).hexdigest()[:8]
        self.source = source
        self.path = path

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r}, source={self.source!r})"

    def export(self) -> str:
        """The server key itself, to write to its file."""
        return self._key

    def seal(self, access_key_id: str, secret: str) -> str:
        """The stored form of `secret`."""
        token = self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")
        stored = f"{PREFIX}{self.key_id}:{token}"
        _remember(access_key_id, stored, secret)
        return stored

    def open(self, access_key_id: str, stored: str) -> str:
        """The secret a stored form seals with this key; UnreadableSecret otherwise."""
        kid = sealed_key_id(stored)
        if kid is None:
            return stored
        if kid != self.key_id:
            raise UnreadableSecret(
                f"The AccessKeySecret of {access_key_id} is sealed with server key {kid}, "
                f"but this process has server key {self.key_id} ({self.source})"
            )
        token = stored[len(PREFIX) + len(kid) + 1 :]
        try:
            secret = self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise UnreadableSecret(
                f"The AccessKeySecret of {access_key_id} does not open with server key "
                f"{self.key_id}: the stored value was altered"
            ) from exc
        _remember(access_key_id, stored, secret)
        return secret


def reveal(box: SecretBox | None, access_key_id: str, stored: str) -> str:
    """The secret of a stored form: plaintext as it is, a sealed one from this process's
    memory or else opened with `box` (UnreadableSecret without one)."""
    if not stored.startswith(PREFIX):
        return stored
    known = _opened.get((access_key_id, stored))
    if known is not None:
        return known
    if box is None:
        raise UnreadableSecret(
            f"The AccessKeySecret of {access_key_id} is sealed with server key "
            f"{sealed_key_id(stored)}, and this process was given no server key"
        )
    return box.open(access_key_id, stored)


def resealed(old: SecretBox, new: SecretBox, label: str, stored: str) -> str:
    """`stored` sealed with `new` (as it is when it is already): a rotation of the server
    key for the other secrets the store keeps (webhook URLs). ServerKeyError when `old`
    cannot open it."""
    if sealed_key_id(stored) == new.key_id:
        return stored
    try:
        return new.seal(label, reveal(old, label, stored))
    except UnreadableSecret as exc:
        raise ServerKeyError(f"{exc}; nothing was changed.") from exc


def forget_opened() -> None:
    """Drop the secrets this process keeps (tests; they are never wrong to keep)."""
    _opened.clear()


def _remember(access_key_id: str, stored: str, secret: str) -> None:
    if len(_opened) >= _MAX_OPENED:
        _opened.clear()
    _opened[(access_key_id, stored)] = secret
