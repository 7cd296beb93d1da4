"""custom alert rules and the users' contact fields

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-20

`alert_rules` holds each rule (its trigger condition and notification as JSON, webhook URLs
sealed); `alert_rule_targets` what it watches, for the evaluator's lookup by task and
workspace. Users get an optional e-mail address and webhook (sealed) for alerts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("owner", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("trigger_type", sa.String(length=32), nullable=False),
        sa.Column("trigger_condition", sa.Text(), nullable=False),
        sa.Column("notification", sa.Text(), nullable=False),
        sa.Column("create_time", sa.BigInteger(), nullable=False),
        sa.Column("modify_time", sa.BigInteger(), nullable=False),
        sa.Column("create_user", sa.String(length=128), nullable=False),
        sa.Column("modify_user", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_rules_trigger_type_enabled"), ["trigger_type", "enabled"]
        )
    op.create_table(
        "alert_rule_targets",
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alert_rule_targets_rule_id_alert_rules"),
        ),
        sa.PrimaryKeyConstraint(
            "rule_id", "target_type", "target", name=op.f("pk_alert_rule_targets")
        ),
    )
    with op.batch_alter_table("alert_rule_targets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_rule_targets_target_type_target"), ["target_type", "target"]
        )
        batch_op.create_index(batch_op.f("ix_alert_rule_targets_project_id"), ["project_id"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("webhook", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("webhook")
        batch_op.drop_column("email")
    op.drop_table("alert_rule_targets")
    op.drop_table("alert_rules")
