"""Bulk loading: the unit of work of an import."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dwsched.domain.models import NewProject, WorkflowInstance


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """Instances to write, and the workspaces to create before them."""

    items: Sequence[WorkflowInstance]
    new_projects: Sequence[NewProject] = field(default_factory=tuple)
