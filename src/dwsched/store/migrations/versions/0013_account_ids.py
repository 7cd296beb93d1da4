"""owners, creators and operators recorded as account ids

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-20

`Owner`, `CreateUser`, `ModifyUser` and the operation log's `User` held the AccessKeyId of
the request (or, for operations, the user's name): DataWorks shows account ids there, the
ids members carry. Each recorded AccessKeyId becomes its user's id, or the tenant's account
id (domain.users.TENANT_ACCOUNT_ID) for a key without a user; each user's name becomes the
user's id. Values that name neither (an owner a FlowSpec or an import gave, a key deleted
since) are left as they are. The workflows' parsed specs carry their owner too. Downgrading
leaves the ids: the keys and names they came from are not recorded.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TENANT_ACCOUNT_ID = "0"  # domain.users.TENANT_ACCOUNT_ID when this revision was written
_MAP = "account_ids_0013"
# (table, column) holding who owns, made, changed or operated on something.
COLUMNS = (
    ("projects", "owner"),
    ("workflows", "owner"),
    ("workflows", "create_user"),
    ("workflows", "modify_user"),
    ("workflow_definitions", "owner"),
    ("tasks", "owner"),
    ("workflow_instances", "owner"),
    ("workflow_instances", "create_user"),
    ("workflow_instances", "modify_user"),
    ("task_instances", "owner"),
    ("operations", "user"),
    ("task_operation_logs", "user"),
)


def upgrade() -> None:
    conn = op.get_bind()
    accounts = _accounts(conn)
    if not accounts:
        return
    mapping = sa.Table(
        _MAP,
        sa.MetaData(),
        sa.Column("old", sa.String(128), primary_key=True),
        sa.Column("new", sa.String(64), nullable=False),
    )
    mapping.create(conn)
    conn.execute(sa.insert(mapping), [{"old": k, "new": v} for k, v in accounts.items()])
    for table, column in COLUMNS:
        # One pass over each table, whatever the number of keys and users.
        t = sa.table(table, sa.column(column))
        col = t.c[column]
        new = sa.select(mapping.c.new).where(mapping.c.old == col).scalar_subquery()
        conn.execute(sa.update(t).where(col.in_(sa.select(mapping.c.old))).values({column: new}))
    mapping.drop(conn)
    _respec(conn, accounts)


def _accounts(conn: sa.Connection) -> dict[str, str]:
    """Old value -> account id: every AccessKeyId, then every user's name that is not an
    AccessKeyId and not digits (digits are read as account ids already)."""
    found: dict[str, str] = {}
    for r in conn.execute(sa.text("SELECT id, user_id FROM access_keys")):
        found[str(r.id)] = TENANT_ACCOUNT_ID if r.user_id is None else str(r.user_id)
    for r in conn.execute(sa.text("SELECT id, name FROM users")):
        name = str(r.name)
        if name not in found and not name.isdigit():
            found[name] = str(r.id)
    return found


def _respec(conn: sa.Connection, accounts: dict[str, str]) -> None:
    """The owner inside each deployed workflow's parsed spec (what GetWorkflow shows and new
    instances take)."""
    rows = conn.execute(sa.text("SELECT id, spec FROM workflows WHERE spec <> ''")).all()
    for r in rows:
        spec = json.loads(r.spec)
        owner = spec.get("owner")
        if isinstance(owner, str) and owner in accounts:
            spec["owner"] = accounts[owner]
            conn.execute(
                sa.text("UPDATE workflows SET spec = :spec WHERE id = :id"),
                {"spec": json.dumps(spec, ensure_ascii=False, separators=(",", ":")), "id": r.id},
            )


def downgrade() -> None:
    pass
