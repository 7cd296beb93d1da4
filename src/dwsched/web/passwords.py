"""Console passwords: Argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile),
salted per password; the hash string carries its own parameters."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dwsched.domain.errors import InvalidArgument

_hasher = PasswordHasher()
MIN_LENGTH = 8
MAX_LENGTH = 1024
# Verified against when the user is unknown, so that a wrong name costs what a wrong
# password costs (no timing tells which names exist).
_DUMMY = _hasher.hash("dwsched-no-such-user")


def check_new(password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidArgument(
            "password", f"The password must be {MIN_LENGTH} to {MAX_LENGTH} characters long."
        )
    if "\x00" in password:
        raise InvalidArgument("password", "The password must not contain a NUL character.")


def hash_password(password: str) -> str:
    check_new(password)
    return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """True when `password` matches the stored hash (None: an unknown user, always False
    after the same work)."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
