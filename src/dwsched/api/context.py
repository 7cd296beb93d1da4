"""What a handler receives besides its parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dwsched.api.params import Params
from dwsched.domain.users import account_id
from dwsched.store import Store

if TYPE_CHECKING:
    from dwsched.api.access import Caller


@dataclass(frozen=True, slots=True)
class Context:
    store: Store
    request_id: str
    access_key_id: str
    now_ms: int
    default_timezone: str
    caller: Caller | None = None  # who is asking (api.access); None outside the RPC route

    @property
    def user(self) -> str:
        """The name operation logs and the audit record: the user, else the key's id."""
        if self.caller is None or self.caller.user_id is None:  # the tenant's own key
            return self.access_key_id
        return self.caller.name

    @property
    def account(self) -> str:
        """The id `Owner`, `CreateUser`, `ModifyUser` and operation logs record: the user's
        id, else (the tenant's own key) the tenant's account id (domain.users)."""
        return account_id(None if self.caller is None else self.caller.user_id)


Handler = Callable[[Context, Params], dict[str, Any]]
