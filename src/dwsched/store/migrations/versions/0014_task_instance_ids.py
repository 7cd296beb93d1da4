"""task instance ids apart from workflow instance ids

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-21

Workflow instances and task instances were numbered from 1 each, so in a small installation
one number named one of each, and an id copied from a list of one kind could be taken for
the other (`dwsched tasks rerun 2` meant for workflow instance 2). From this revision task
instance ids are allocated from TASK_INSTANCE_ID_BASE up: a thousand million workflow
instances fit below it, so the ids the engine hands out from here on name one instance of
one kind. Ids allocated before keep their numbers (the CLI says which instance of which
kind it acted on). Downgrading leaves the sequence where it is.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TASK_INSTANCE_ID_BASE = 1_000_000_000


def upgrade() -> None:
    conn = op.get_bind()
    top = TASK_INSTANCE_ID_BASE - 1  # the next id allocated is at least the base
    if conn.dialect.name == "postgresql":
        sequence = conn.exec_driver_sql(
            "SELECT pg_get_serial_sequence('task_instances', 'id')"
        ).scalar_one()
        last, called = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {sequence}").one()
        following = int(last) + 1 if called else int(last)
        if following <= top:
            conn.exec_driver_sql("SELECT setval(%s, %s)", (sequence, top))
        return
    moved = conn.exec_driver_sql(
        "UPDATE sqlite_sequence SET seq = ? WHERE name = 'task_instances' AND seq < ?",
        (top, top),
    ).rowcount
    if not moved:
        conn.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'task_instances', ? WHERE NOT EXISTS "
            "(SELECT 1 FROM sqlite_sequence WHERE name = 'task_instances')",
            (top,),
        )


def downgrade() -> None:
    pass
