"""An attempt a worker has claimed: what it needs to run a task instance once. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dwsched.domain.flowspec import NodeSpec
from dwsched.domain.models import EnvType, Status

# At most this many VIRTUAL nodes (nothing to run) end in one claiming transaction.
VIRTUAL_PER_CLAIM = 200


@dataclass(frozen=True, slots=True)
class Claimed:
    """A task instance a worker now runs: attempt `run_number`."""

    id: int
    workflow_instance_id: int
    run_number: int
    status: Status  # Running, or CheckingCondition for a branch node
    node: NodeSpec
    parameters: str
    biz_day: date
    trigger_time: int
    timezone: str
    env_type: EnvType
    worker: str
    # Read as the attempt of a worker that stopped beating (stale): ending it is a recovery.
    recovering: bool = False
