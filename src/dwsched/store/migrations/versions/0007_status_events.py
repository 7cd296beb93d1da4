"""status events, their consumers' cursors, and the index that derives an instance's status

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("workflow_instance_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("old_status", sa.String(length=20), nullable=False),
        sa.Column("new_status", sa.String(length=20), nullable=False),
        sa.Column("run_number", sa.Integer(), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("txid", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_events")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("status_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_status_events_at"), ["at"])
        batch_op.create_index(
            batch_op.f("ix_status_events_instance_id_kind"), ["instance_id", "kind"]
        )
        batch_op.create_index(batch_op.f("ix_status_events_txid_id"), ["txid", "id"])
    op.create_table(
        "event_cursors",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("last_txid", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("modify_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name=op.f("pk_event_cursors")),
    )
    with op.batch_alter_table("task_instances", schema=None) as batch_op:
        batch_op.create_index("ix_ti_instance_status", ["workflow_instance_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("task_instances", schema=None) as batch_op:
        batch_op.drop_index("ix_ti_instance_status")
    op.drop_table("event_cursors")
    with op.batch_alter_table("status_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_events_txid_id"))
        batch_op.drop_index(batch_op.f("ix_status_events_instance_id_kind"))
        batch_op.drop_index(batch_op.f("ix_status_events_at"))
    op.drop_table("status_events")
