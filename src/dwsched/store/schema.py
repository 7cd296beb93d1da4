"""Every table and index, the single source that Alembic migrations must match.

Workflow instances are read one (project, env, BizDate) partition at a time (DESIGN.md §3), so
every index that serves listing leads with the partition's id and ends with the instance id:
a sort, a page and a count each stay inside one partition's slice of the index.
`biz_day` is the calendar day as yyyymmdd; its instant depends on the workspace's zone.
"""

from __future__ import annotations

import sqlalchemy as sa

# SQLite makes a rowid alias (and so an autoincrementing key) only of INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("display_name", sa.String(256), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("dev_environment_enabled", sa.Boolean(), nullable=False),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("modify_time", sa.BigInteger(), nullable=False),
    sqlite_autoincrement=True,  # never give a deleted workspace's id to a new one
)

workflows = sa.Table(
    "workflows",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("project_id", sa.BigInteger(), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("modify_time", sa.BigInteger(), nullable=False),
    sa.Index(None, "project_id", "id"),
)

# One row per (project, env, BizDate): the unit every listing stays inside. Instances and
# their tag index carry its small integer id, so that index keys are short and compare fast.
partitions = sa.Table(
    "partitions",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("project_id", sa.BigInteger(), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("env_type", sa.String(4), nullable=False),
    sa.Column("biz_day", sa.Integer(), nullable=False),
    # How many instances the partition holds: an unfiltered listing's TotalCount without a
    # scan. Kept by store.instances, the only module that inserts or deletes instances.
    sa.Column("instance_count", sa.BigInteger(), nullable=False, server_default="0"),
    sa.UniqueConstraint("project_id", "env_type", "biz_day"),
)

workflow_instances = sa.Table(
    "workflow_instances",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("partition_id", sa.BigInteger(), sa.ForeignKey("partitions.id"), nullable=False),
    sa.Column("project_id", sa.BigInteger(), nullable=False),
    sa.Column("env_type", sa.String(4), nullable=False),
    sa.Column("biz_day", sa.Integer(), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("workflow_id", sa.BigInteger(), nullable=False),
    sa.Column("workflow_task_instance_id", sa.BigInteger(), nullable=False),
    sa.Column("unified_workflow_instance_id", sa.BigInteger(), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    # casefold(name): Name filters are case-insensitive for every script, not only ASCII.
    sa.Column("name_folded", sa.Text(), nullable=False),  # folding may lengthen a name
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("create_user", sa.String(64), nullable=False),
    sa.Column("modify_user", sa.String(64), nullable=False),
    sa.Column("trigger_time", sa.BigInteger(), nullable=False),
    sa.Column("started_time", sa.BigInteger(), nullable=True),
    sa.Column("finished_time", sa.BigInteger(), nullable=True),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("modify_time", sa.BigInteger(), nullable=False),
    sa.Column("workflow_parameters", sa.Text(), nullable=False),
    # The tags as the API shows them ([[key, value], ...] JSON); instance_tags serves filtering.
    sa.Column("tags", sa.Text(), nullable=False),
    sa.Index("ix_wi_part_id", "partition_id", "id"),
    sa.Index("ix_wi_part_status", "partition_id", "status", "id"),
    sa.Index("ix_wi_part_trigger", "partition_id", "trigger_time", "id"),
    sa.Index("ix_wi_part_started", "partition_id", "started_time", "id"),
    sa.Index("ix_wi_part_finished", "partition_id", "finished_time", "id"),
    sa.Index("ix_wi_part_create", "partition_id", "create_time", "id"),
    sa.Index("ix_wi_part_workflow", "partition_id", "workflow_id", "id"),
    sa.Index("ix_wi_part_unified", "partition_id", "unified_workflow_instance_id"),
    # Covers the Name filter: a substring search reads the partition's slice of this index,
    # not its rows.
    sa.Index("ix_wi_part_name", "partition_id", "name_folded"),
    sqlite_autoincrement=True,  # ids are public: never reused after a delete
)

# The distinct (key, value) tags of each instance, clustered by partition and tag: a Tags
# filter is one key range per tag inside the partition. (A WITHOUT ROWID table on SQLite.)
instance_tags = sa.Table(
    "instance_tags",
    metadata,
    sa.Column("partition_id", sa.BigInteger(), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.String(256), primary_key=True),
    sa.Column("instance_id", sa.BigInteger(), primary_key=True),
    sqlite_with_rowid=False,
)

access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
)

# Nonces seen in the replay window, shared by every API process of one deployment.
request_nonces = sa.Table(
    "request_nonces",
    metadata,
    sa.Column("access_key_id", sa.String(64), primary_key=True),
    sa.Column("nonce", sa.String(128), primary_key=True),
    sa.Column("expires_at", sa.BigInteger(), nullable=False),
    sa.Index(None, "expires_at"),
)
