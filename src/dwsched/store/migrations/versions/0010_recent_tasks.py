"""the planner's index of waiting tasks by their last change

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

The planner looks every second only at the tasks that changed lately (made, rerun, moved)
and at the downstreams of tasks that succeeded lately; the whole set of waiting tasks,
which grows with every blocked one, is read once a minute (store.planning).
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ti_status_modified", "task_instances", ["status", "modify_time"])


def downgrade() -> None:
    op.drop_index("ix_ti_status_modified", table_name="task_instances")
