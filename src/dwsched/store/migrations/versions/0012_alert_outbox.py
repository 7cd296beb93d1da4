"""alerts: the outbox of alert events, their deliveries and every delivery attempt

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_events",
        sa.Column("id", _ID, nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("task_instance_id", sa.BigInteger(), nullable=True),
        sa.Column("workflow_instance_id", sa.BigInteger(), nullable=True),
        sa.Column("notice", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_alert_events_dedupe_key")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_events_rule_id_created_at"), ["rule_id", "created_at"]
        )
        batch_op.create_index(
            batch_op.f("ix_alert_events_project_id_created_at"), ["project_id", "created_at"]
        )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("receiver", sa.String(length=255), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_deliveries_event_id"), ["event_id"])
        batch_op.create_index(
            batch_op.f("ix_alert_deliveries_state_next_try_at"), ["state", "next_try_at"]
        )
    op.create_table(
        "alert_delivery_attempts",
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", "attempt", name=op.f("pk_alert_delivery_attempts")),
    )


def downgrade() -> None:
    op.drop_table("alert_delivery_attempts")
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_state_next_try_at"))
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_event_id"))
    op.drop_table("alert_deliveries")
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_events_project_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_alert_events_rule_id_created_at"))
    op.drop_table("alert_events")
