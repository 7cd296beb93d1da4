"""Users and the principal behind a request: who it is and the policies that apply to it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


class PrincipalType(StrEnum):
    """What a policy is attached to."""

    USER = "User"
    GROUP = "Group"
