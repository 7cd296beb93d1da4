"""dependencies across workflows and cycles: output owners, deployed links, instance edges

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

The deployed workflows' outputs and links are filled in from their nodes (all local before
this revision). Output names were not unique across workflows before: the lowest task id
keeps a name that several nodes gave.
"""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
_log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    op.create_table(
        "task_outputs",
        sa.Column("env_type", sa.String(length=4), nullable=False),
        sa.Column("output", sa.String(length=512), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("workflow_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("env_type", "output", name=op.f("pk_task_outputs")),
    )
    with op.batch_alter_table("task_outputs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_outputs_workflow_id"), ["workflow_id"])
    op.create_table(
        "task_links",
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("upstream_task_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("workflow_id", sa.BigInteger(), nullable=False),
        sa.Column("upstream_workflow_id", sa.BigInteger(), nullable=False),
        sa.Column("output", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "upstream_task_id", "type", name=op.f("pk_task_links")),
    )
    with op.batch_alter_table("task_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_links_upstream_task_id"), ["upstream_task_id"])
        batch_op.create_index(batch_op.f("ix_task_links_workflow_id"), ["workflow_id"])
        batch_op.create_index(
            batch_op.f("ix_task_links_upstream_workflow_id"), ["upstream_workflow_id"]
        )
    op.create_table(
        "task_instance_dependencies",
        sa.Column("task_instance_id", sa.BigInteger(), nullable=False),
        sa.Column("upstream_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint(
            "task_instance_id", "upstream_id", name=op.f("pk_task_instance_dependencies")
        ),
    )
    with op.batch_alter_table("task_instance_dependencies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_instance_dependencies_upstream_id"), ["upstream_id"]
        )
    _fill(op.get_bind())


# Types that name the node itself since this revision; a node named by them before it is
# linked as another node's previous cycle.
_OF_ITSELF = ("CrossCycleDependsOnSelf", "CrossCycleDependsOnChildren")


def _fill(conn: sa.Connection) -> None:
    """The outputs and links of the deployed workflows' nodes."""
    rows = conn.execute(
        sa.text(
            "SELECT t.id, t.workflow_id, t.project_id, t.node_id, t.spec, w.env_type "
            "FROM tasks t JOIN workflows w ON w.id = t.workflow_id "
            "WHERE t.deleted = :no AND w.definition_id IS NOT NULL ORDER BY t.id"
        ),
        {"no": False},
    ).all()
    owners: dict[tuple[str, str], tuple[int, int, int]] = {}
    by_node: dict[tuple[int, str], int] = {}
    for r in rows:
        by_node[(r.workflow_id, r.node_id)] = r.id
        for output in json.loads(r.spec).get("outputs", []):
            owner = owners.setdefault((r.env_type, output), (r.id, r.workflow_id, r.project_id))
            if owner[1] != r.workflow_id:
                _log.warning(
                    "the output %r of workflow %s is kept by workflow %s (an output name has "
                    "one producer from revision 0009 on): rename it before redeploying %s",
                    output,
                    r.workflow_id,
                    owner[1],
                    r.workflow_id,
                )
    if owners:
        conn.execute(
            sa.text(
                "INSERT INTO task_outputs (env_type, output, task_id, workflow_id, project_id) "
                "VALUES (:env_type, :output, :task_id, :workflow_id, :project_id)"
            ),
            [
                {"env_type": e, "output": o, "task_id": t, "workflow_id": w, "project_id": p}
                for (e, o), (t, w, p) in owners.items()
            ],
        )
    links = {}
    for r in rows:
        for up in json.loads(r.spec).get("upstream", []):
            kind = up["type"]
            if up["node_id"]:  # a node of its workflow (every one, before this revision)
                found = by_node.get((r.workflow_id, up["node_id"]))
                upstream = None if found is None else (found, r.workflow_id)
                if kind in _OF_ITSELF and found != r.id:  # accepted before: another node's
                    kind = "CrossCycleDependsOnOtherNode"
            else:  # an output of another workflow's node
                producer = owners.get((r.env_type, up["output"]))
                upstream = None if producer is None else (producer[0], producer[1])
            if upstream is not None:
                links[(r.id, upstream[0], kind)] = {
                    "task_id": r.id,
                    "upstream_task_id": upstream[0],
                    "type": kind,
                    "workflow_id": r.workflow_id,
                    "upstream_workflow_id": upstream[1],
                    "output": up["output"],
                }
    if links:
        conn.execute(
            sa.text(
                "INSERT INTO task_links (task_id, upstream_task_id, type, workflow_id, "
                "upstream_workflow_id, output) VALUES (:task_id, :upstream_task_id, :type, "
                ":workflow_id, :upstream_workflow_id, :output)"
            ),
            list(links.values()),
        )


def downgrade() -> None:
    with op.batch_alter_table("task_instance_dependencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_instance_dependencies_upstream_id"))
    op.drop_table("task_instance_dependencies")
    with op.batch_alter_table("task_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_links_upstream_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_task_links_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_task_links_upstream_task_id"))
    op.drop_table("task_links")
    with op.batch_alter_table("task_outputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_outputs_workflow_id"))
    op.drop_table("task_outputs")
