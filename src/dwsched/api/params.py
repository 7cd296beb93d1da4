"""Typed reading of DataWorks request parameters.

Parameters arrive as text from the query string and the form body together. Arrays and
objects come as JSON text (`Ids=[1,2]`) or, from some clients, flattened (`Ids.1=1`);
booleans as `true`/`True`. Every reader names the parameter in the error it raises.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from dwsched.domain.errors import InvalidArgument, MissingArgument

E = TypeVar("E", bound=enum.Enum)
INT64_MAX = 2**63 - 1
_BOOLS = {"true": True, "false": False}
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_INDEX = re.compile(r"[1-9][0-9]{0,5}")


MAX_ITEM_LENGTH = 1024  # characters of one item of a list parameter


class Params:
    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    def text(self, name: str, required: bool = False, max_length: int = 1024) -> str | None:
        value = self.values.get(name)
        if value is None:
            if required:
                raise MissingArgument(name)
            return None
        if required and not value.strip():
            raise MissingArgument(name)
        if len(value) > max_length:
            raise InvalidArgument(
                name, f"The parameter {name} is longer than {max_length} characters."
            )
        no_nul(name, value)
        return value

    def required_text(self, name: str, max_length: int = 1024) -> str:
        value = self.text(name, required=True, max_length=max_length)
        assert value is not None
        return value

    def integer(
        self, name: str, required: bool = False, minimum: int = 1, maximum: int = INT64_MAX
    ) -> int | None:
        value = self.text(name, required=required, max_length=32)
        if value is None:
            return None
        return to_int(name, value.strip(), minimum, maximum)

    def required_integer(self, name: str, minimum: int = 1, maximum: int = INT64_MAX) -> int:
        value = self.integer(name, required=True, minimum=minimum, maximum=maximum)
        assert value is not None
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.text(name, max_length=8)
        if value is None:
            return None
        found = _BOOLS.get(value.strip().lower())
        if found is None:
            raise InvalidArgument(
                name, f"The parameter {name} must be true or false, got {value!r}."
            )
        return found

    def choice(self, name: str, kind: type[E]) -> E | None:
        value = self.text(name, max_length=64)
        if value is None:
            return None
        return to_choice(name, value, kind)

    def json_value(self, name: str) -> Any:
        """The parameter as JSON text, or the flat `Name.1`, `Name.2` form as a list."""
        value = self.values.get(name)
        if value is None:
            flat = self._flat_list(name)
            return flat
        try:
            return msgspec.json.decode(value)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise InvalidArgument(name, f"The parameter {name} is not valid JSON: {exc}.") from exc

    def int_list(self, name: str, maximum_items: int) -> list[int] | None:
        value = self.json_value(name)
        if value is None:
            return None
        if not isinstance(value, list):
            raise InvalidArgument(name, f"The parameter {name} must be a JSON array of integers.")
        if len(value) > maximum_items:
            raise InvalidArgument(
                name, f"The parameter {name} takes at most {maximum_items} items, got {len(value)}."
            )
        return [to_int(name, item, 1, INT64_MAX) for item in value]

    def str_list(
        self, name: str, maximum_items: int, max_length: int = MAX_ITEM_LENGTH
    ) -> list[str] | None:
        value = self.json_value(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidArgument(name, f"The parameter {name} must be a JSON array of strings.")
        for item in value:
            no_nul(name, item)
            if len(item) > max_length:
                raise InvalidArgument(
                    name, f"The parameter {name} holds an item longer than {max_length} characters."
                )
        if len(value) > maximum_items:
            raise InvalidArgument(
                name, f"The parameter {name} takes at most {maximum_items} items, got {len(value)}."
            )
        return value

    def json_object(self, name: str) -> dict[str, Any] | None:
        if name not in self.values:
            return None
        value = self.json_value(name)
        if not isinstance(value, dict):
            raise InvalidArgument(name, f"The parameter {name} must be a JSON object.")
        return value

    def _flat_list(self, name: str) -> list[str] | None:
        prefix = f"{name}."
        items: list[tuple[int, str]] = []
        for key, value in self.values.items():
            if key.startswith(prefix):
                index = key[len(prefix) :]
                if not _INDEX.fullmatch(index):
                    raise InvalidArgument(name, f"The parameter {key} is not a valid list item.")
                items.append((int(index), value))
        if not items:
            return None
        return [value for _, value in sorted(items)]


def no_nul(name: str, value: str) -> None:
    if "\x00" in value:
        raise InvalidArgument(name, f"The parameter {name} must not contain the NUL character.")


def to_int(name: str, value: object, minimum: int, maximum: int) -> int:
    if isinstance(value, bool):
        raise InvalidArgument(name, f"The parameter {name} must be an integer, got {value!r}.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value)
    else:
        raise InvalidArgument(name, f"The parameter {name} must be an integer, got {value!r}.")
    if not minimum <= number <= maximum:
        raise InvalidArgument(
            name, f"The parameter {name} must be between {minimum} and {maximum}, got {number}."
        )
    return number


def to_choice(name: str, value: object, kind: type[E]) -> E:
    for member in kind:
        if member.value == value:
            return member
    allowed = ", ".join(str(m.value) for m in kind)
    raise InvalidArgument(name, f"The parameter {name} must be one of {allowed}, got {value!r}.")
