"""Action name → handler, for the one API version served."""

from __future__ import annotations

from dwsched.api.actions import (
    members,
    operations,
    projects,
    task_instances,
    workflow_instances,
    workflows,
)
from dwsched.api.context import Handler
from dwsched.api.errors import API_VERSION
from dwsched.domain.errors import MissingArgument, UnknownAction

ACTIONS: dict[str, Handler] = {
    **workflow_instances.HANDLERS,
    **projects.HANDLERS,
    **workflows.HANDLERS,
    **task_instances.HANDLERS,
    **operations.HANDLERS,
    **members.HANDLERS,
}


def lookup(action: str | None, version: str | None) -> Handler:
    if not action:
        raise MissingArgument("Action")
    if not version:
        raise MissingArgument("Version")
    handler = ACTIONS.get(action)
    if handler is None or version != API_VERSION:
        raise UnknownAction(
            f"The action {action!r} in version {version!r} is not found; dwsched serves "
            f"version {API_VERSION}."
        )
    return handler


def reads_only(action: str | None) -> bool:
    """Get* and List* actions change nothing (beyond the request's nonce)."""
    return bool(action) and action.startswith(("Get", "List"))  # type: ignore[union-attr]
