"""Rules for workspaces."""

from __future__ import annotations

import re

from dwsched.domain.errors import InvalidArgument

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,63}")


def check_project_name(name: str, param: str = "Name") -> str:
    """A workspace name starts with a letter and holds 3 to 64 letters, digits or underscores."""
    if not NAME.fullmatch(name):
        raise InvalidArgument(
            param,
            f"The parameter {param} {name!r} must start with a letter and hold 3 to 64 letters, "
            "digits or underscores.",
        )
    return name
