"""Deployed workflows: the version of a FlowSpec definition that the engine schedules."""

from __future__ import annotations

from dataclasses import dataclass

from dwsched.domain.flowspec import NodeSpec, WorkflowSpec
from dwsched.domain.models import EnvType


@dataclass(frozen=True, slots=True)
class DeployedTask:
    """A node of a deployed workflow; its id stays the same across versions."""

    id: int
    workflow_id: int
    project_id: int
    owner: str
    node: NodeSpec
    create_time: int
    modify_time: int


@dataclass(frozen=True, slots=True)
class DeployedWorkflow:
    id: int
    project_id: int
    definition_id: int
    env_type: EnvType
    spec: WorkflowSpec  # the deployed version
    version: int
    deploy_time: int
    create_time: int
    modify_time: int
    create_user: str
    modify_user: str
    tasks: tuple[DeployedTask, ...]  # upstream before downstream; deleted nodes left out
