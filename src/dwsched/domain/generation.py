"""What the scheduler reads and decides when it makes the instances of deployed cycle
workflows. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from dwsched.domain.schedule import Cycle
from dwsched.domain.workflows import DeployedWorkflow


@dataclass(frozen=True, slots=True)
class ScheduledWorkflow:
    """A deployed cycle workflow with a cron, and how far its instances are made."""

    workflow: DeployedWorkflow
    first_run_day: date | None
    generated_through: date | None


@dataclass(frozen=True, slots=True)
class GenerationPlan:
    """What the scheduler makes for one workflow: cycles per run date, in date order."""

    workflow: DeployedWorkflow
    run_days: Sequence[tuple[date, Sequence[Cycle]]]
    first_run_day: date | None
