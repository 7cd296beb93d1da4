"""Workers and resource groups as every process on a database sees them.

A worker is one process that claims and runs task instances; it registers itself (where it
runs, which process it is, the resource groups it serves), beats while it lives, and says
when it drains and when it has stopped. Recovery tells from that record whether a worker is
dead. A resource group's slots are the attempts of that group that run at once over every
worker; a group without a record of its own takes the `*` record's slots, or
DEFAULT_GROUP_SLOTS. Pure values and decisions; time as an argument.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_GROUP_SLOTS = 4
# The resource group record whose slots hold for every group without a record of its own.
OTHER_GROUPS = "*"
MAX_GROUP_SLOTS = 10_000
# A worker beats this often (its attempts' heartbeats and its own record)...
HEARTBEAT_MS = 5_000
# ... and one that has not beaten for this long is taken for dead: well above the 30 s a busy
# SQLite database may make a heartbeat wait (store.connect BUSY_TIMEOUT_MS).
STALE_MS = 12 * HEARTBEAT_MS
# A worker's record is deleted this long after its last beat (when another worker starts).
RETENTION_MS = 7 * 86_400_000


class WorkerState(enum.StrEnum):
    """What a worker's record says of it."""

    ALIVE = "Alive"  # beating
    DRAINING = "Draining"  # shutting down: finishing or stopping its attempts
    STOPPED = "Stopped"  # shut down
    SILENT = "Silent"  # no beat for STALE_MS: dead, or cut off from the database


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A registered worker. `groups` None: it serves every resource group. `running`: its
    attempts in progress when it was read (listings only, else 0)."""

    name: str
    host: str
    pid: int
    process: str | None  # pid:start-time (engine.runner.process_identity); None: unknown
    groups: tuple[str, ...] | None
    slots: int
    started_at: int
    heartbeat_at: int
    draining: bool = False
    stopped_at: int | None = None
    running: int = 0

    def state(self, now_ms: int) -> WorkerState:
        if self.stopped_at is not None:
            return WorkerState.STOPPED
        if self.draining:
            return WorkerState.DRAINING
        if self.heartbeat_at < now_ms - STALE_MS:
            return WorkerState.SILENT
        return WorkerState.ALIVE


@dataclass(frozen=True, slots=True)
class ResourceGroup:
    """A resource group's slot limit, shared by every worker on the database."""

    name: str
    slots: int
    create_time: int
    modify_time: int


def slot_limit(limits: Mapping[str, int], group: str) -> int:
    """The attempts of `group` that may run at once, over every worker: its own record's
    slots, else the `*` record's, else DEFAULT_GROUP_SLOTS."""
    return limits.get(group, limits.get(OTHER_GROUPS, DEFAULT_GROUP_SLOTS))


def parse_groups(text: str) -> tuple[str, ...] | None:
    """`a,b` as the groups a worker serves (None: every group; `-` names the group of nodes
    that name none, the empty name)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        return None
    return tuple(dict.fromkeys("" if n == "-" else n for n in names))


def group_label(name: str) -> str:
    """A resource group's name as the CLI and the console show it (`-` for the empty name)."""
    return name or "-"
