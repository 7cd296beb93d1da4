"""What a handler receives besides its parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dwsched.api.params import Params
from dwsched.store import Store


@dataclass(frozen=True, slots=True)
class Context:
    store: Store
    request_id: str
    access_key_id: str
    now_ms: int
    default_timezone: str


Handler = Callable[[Context, Params], dict[str, Any]]
