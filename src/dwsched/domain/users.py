"""Users and the principal behind a request: who it is and the policies that apply to it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from dwsched.domain.errors import InvalidArgument

MAX_EMAIL = 254
# The account id of the tenant itself: what `Owner`, `CreateUser`, `ModifyUser` and the
# operation log's `User` hold for a request made with the tenant's own key (a key without a
# user), as DataWorks shows an Alibaba Cloud account's UID. User ids start at 1, so it
# names no user.
TENANT_ACCOUNT_ID = "0"
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    display_name: str
    create_time: int


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind an AccessKey or a console session: its user and every policy that
    applies to it (attached to the user or to one of its groups), as (name, document text or
    None for a built-in)."""

    user: User
    policy_names: tuple[str, ...]
    custom_documents: tuple[tuple[str, str], ...]


def account_id(user_id: int | None) -> str:
    """The id `Owner`, `CreateUser`, `ModifyUser` and operation logs show for a caller: its
    user's id, or TENANT_ACCOUNT_ID for the tenant's own key (`user_id` None)."""
    return TENANT_ACCOUNT_ID if user_id is None else str(user_id)


class PrincipalType(StrEnum):
    """What a policy is attached to."""

    USER = "User"
    GROUP = "Group"


@dataclass(frozen=True, slots=True)
class Contact:
    """Where a user's alerts go (AliUid and TaskOwner receivers): an e-mail address for the
    Mail channel and a webhook URL (whole here; stored sealed, shown masked)."""

    user_id: int
    name: str
    email: str | None = None
    webhook: str | None = None


def check_email(text: str, param: str = "--email") -> str:
    """An e-mail address's shape (local@domain.tld); InvalidArgument otherwise."""
    if len(text) > MAX_EMAIL or not _EMAIL.fullmatch(text):
        raise InvalidArgument(param, f"{param} {text!r} is not an e-mail address.")
    return text
