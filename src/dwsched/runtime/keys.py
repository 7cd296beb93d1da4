"""AccessKey creation: ids and secrets from the system's secure random source."""

from __future__ import annotations

import secrets
import string

from dwsched.domain.models import AccessKey, KeyStatus
from dwsched.store import Store

_ALPHABET = string.ascii_letters + string.digits


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def create_key(store: Store, name: str, now_ms: int) -> AccessKey:
    key = AccessKey(
        id="LTAI" + _random(20),
        secret=_random(30),
        name=name,
        status=KeyStatus.ENABLED,
        create_time=now_ms,
    )
    store.create_key(key)
    return key
