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

# Workflows: those deployed from a FlowSpec definition (the engine schedules and runs them),
# and those only named by imported instances (records: `definition_id` is null, the engine
# never runs them). The trigger and strategy columns are the deployed version's.
workflows = sa.Table(
    "workflows",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("project_id", sa.BigInteger(), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("modify_time", sa.BigInteger(), nullable=False),
    sa.Column("definition_id", sa.BigInteger(), nullable=True),
    sa.Column("env_type", sa.String(4), nullable=False, server_default="Prod"),
    sa.Column("kind", sa.String(32), nullable=False, server_default=sa.text("''")),
    sa.Column("client_unique_code", sa.String(256), nullable=False, server_default=sa.text("''")),
    sa.Column("description", sa.Text(), nullable=False, server_default=sa.text("''")),
    sa.Column("parameters", sa.Text(), nullable=False, server_default=sa.text("''")),
    sa.Column("trigger_type", sa.String(16), nullable=False, server_default=sa.text("''")),
    sa.Column("cron", sa.String(256), nullable=True),
    sa.Column("timezone", sa.String(64), nullable=False, server_default=sa.text("''")),
    sa.Column("start_time", sa.String(32), nullable=False, server_default=sa.text("''")),
    sa.Column("end_time", sa.String(32), nullable=False, server_default=sa.text("''")),
    sa.Column("start_ms", sa.BigInteger(), nullable=True),
    sa.Column("end_ms", sa.BigInteger(), nullable=True),
    sa.Column("instance_mode", sa.String(16), nullable=False, server_default=sa.text("''")),
    # The normalised spec of the deployed version (JSON), and its number: instances are
    # generated from the version current when they are made.
    sa.Column("spec", sa.Text(), nullable=False, server_default=sa.text("''")),
    sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("deploy_time", sa.BigInteger(), nullable=True),
    sa.Column("create_user", sa.String(64), nullable=False, server_default=sa.text("''")),
    sa.Column("modify_user", sa.String(64), nullable=False, server_default=sa.text("''")),
    # Scheduling: the first run date (yyyymmdd) of the deployment and the last one whose
    # Normal instances exist (the scheduler's catch-up point).
    sa.Column("first_run_day", sa.Integer(), nullable=True),
    sa.Column("generated_through", sa.Integer(), nullable=True),
    sa.Index(None, "project_id", "id"),
    sa.Index(None, "definition_id"),
)

# Data Studio workflow definitions: the FlowSpec text as given, and the deployed workflow it
# became (a definition is deployed when it is created or updated).
workflow_definitions = sa.Table(
    "workflow_definitions",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("project_id", sa.BigInteger(), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("spec", sa.Text(), nullable=False),
    sa.Column("workflow_id", sa.BigInteger(), nullable=True),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("modify_time", sa.BigInteger(), nullable=False),
    sa.Index(None, "project_id", "id"),
    sqlite_autoincrement=True,  # ids are public: never reused after a delete
)

# The deployed nodes of a workflow. A node keeps its task id across versions (matched by
# its spec id); a node dropped by a later version is kept, marked deleted, for the task
# instances that name it.
tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("workflow_id", sa.BigInteger(), nullable=False),
    sa.Column("project_id", sa.BigInteger(), nullable=False),
    sa.Column("node_id", sa.String(256), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),  # upstream before downstream
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("spec", sa.Text(), nullable=False),  # the node as JSON (domain NodeSpec)
    sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("modify_time", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("workflow_id", "node_id"),
    sqlite_autoincrement=True,
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

# Task instances: one per node of every workflow instance the engine made (imported
# instances have none: the engine never runs them). The node's settings are copied in when
# the instance is made, so a later deployment changes only later instances.
task_instances = sa.Table(
    "task_instances",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("workflow_instance_id", sa.BigInteger(), nullable=False),
    sa.Column("partition_id", sa.BigInteger(), nullable=False),
    sa.Column("project_id", sa.BigInteger(), nullable=False),
    sa.Column("env_type", sa.String(4), nullable=False),
    sa.Column("biz_day", sa.Integer(), nullable=False),
    sa.Column("workflow_id", sa.BigInteger(), nullable=False),
    sa.Column("task_id", sa.BigInteger(), nullable=False),
    sa.Column("unified_workflow_instance_id", sa.BigInteger(), nullable=False),
    sa.Column("workflow_instance_type", sa.String(16), nullable=False),
    sa.Column("trigger_type", sa.String(16), nullable=False),
    sa.Column("trigger_recurrence", sa.String(32), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),  # upstream before downstream
    # JSON: the ids of the task instances it waits for (its workflow instance's, and those
    # of task_instance_dependencies)
    sa.Column("upstream", sa.Text(), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("period_number", sa.Integer(), nullable=False),
    sa.Column("trigger_time", sa.BigInteger(), nullable=False),
    sa.Column("priority", sa.Integer(), nullable=False),
    sa.Column("resource_group", sa.String(128), nullable=False),
    sa.Column("spec", sa.Text(), nullable=False),  # the node (domain NodeSpec) as deployed
    sa.Column("parameters", sa.Text(), nullable=False),  # the workflow's `k=v` parameters
    sa.Column("run_number", sa.Integer(), nullable=False),
    sa.Column("started_time", sa.BigInteger(), nullable=True),
    sa.Column("finished_time", sa.BigInteger(), nullable=True),
    sa.Column("waiting_trigger_time", sa.BigInteger(), nullable=True),
    sa.Column("waiting_resource_time", sa.BigInteger(), nullable=True),
    sa.Column("next_try_at", sa.BigInteger(), nullable=True),  # a retry waits until then
    # The attempt in progress: the worker that claimed it, its process, its last heartbeat.
    sa.Column("worker", sa.String(128), nullable=True),
    sa.Column("pid", sa.Integer(), nullable=True),
    sa.Column("process", sa.String(64), nullable=True),
    sa.Column("heartbeat_at", sa.BigInteger(), nullable=True),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("modify_time", sa.BigInteger(), nullable=False),
    # Operations (0003): frozen by SuspendTaskInstances (it does not run, nor does anything
    # below it); the latest operation's name (the API's OperationType); when an HTTP trigger
    # node was fired (TriggerSchedulerTaskInstance) before it reached WaitTrigger.
    sa.Column("suspended", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("operation_type", sa.String(32), nullable=False, server_default=sa.text("''")),
    sa.Column("triggered_at", sa.BigInteger(), nullable=True),
    sa.Index("ix_ti_part_id", "partition_id", "id"),
    sa.Index("ix_ti_instance", "workflow_instance_id", "position"),
    sa.Index("ix_ti_status", "status", "trigger_time", "id"),
    # Claiming: the most urgent waiting task first (one priority at a time, highest first;
    # then trigger time).
    sa.Index("ix_ti_claim", "status", "priority", "trigger_time", "id"),
    sqlite_autoincrement=True,
)

# One row per attempt of a task instance: its outcome and its (size-capped) log.
task_attempts = sa.Table(
    "task_attempts",
    metadata,
    sa.Column("task_instance_id", sa.BigInteger(), primary_key=True),
    sa.Column("run_number", sa.Integer(), primary_key=True),
    sa.Column("worker", sa.String(128), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("exit_code", sa.Integer(), nullable=True),
    sa.Column("started_time", sa.BigInteger(), nullable=False),
    sa.Column("finished_time", sa.BigInteger(), nullable=True),
    sa.Column("log", sa.Text(), nullable=False),
)

# The cycles the scheduler has made instances for: generating twice is a no-op.
scheduled_cycles = sa.Table(
    "scheduled_cycles",
    metadata,
    sa.Column("workflow_id", sa.BigInteger(), primary_key=True),
    sa.Column("trigger_time", sa.BigInteger(), primary_key=True),
    sa.Column("workflow_instance_id", sa.BigInteger(), nullable=False),
)

# Asynchronous operations (CreateWorkflowInstances, RerunWorkflowInstances): the request as
# validated, its status and its result. The scheduler creates the instances of a Creating
# one in one transaction, so a crash leaves it Creating and it is created after restart.
operations = sa.Table(
    "operations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("project_id", sa.BigInteger(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("request", sa.Text(), nullable=False),  # JSON (domain.runs.RunRequest)
    sa.Column("result", sa.Text(), nullable=False, server_default=sa.text("''")),  # JSON
    sa.Column("failure_message", sa.Text(), nullable=False, server_default=sa.text("''")),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("modify_time", sa.BigInteger(), nullable=False),
    sa.Index(None, "status"),
)

# The workflow instances an operation created, and whether each may run: NotStarted (made
# with AutoStartEnabled=false: waits for StartWorkflowInstances), Queued (a backfill's
# BizDate waiting for its turn under Parallelism and RunPolicy), Released (runs). The
# planner moves only instances with no row here or a Released one.
operation_instances = sa.Table(
    "operation_instances",
    metadata,
    sa.Column("workflow_instance_id", sa.BigInteger(), primary_key=True),
    sa.Column("operation_id", sa.String(64), nullable=False),
    sa.Column("biz_day", sa.Integer(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Index(None, "operation_id", "state"),
    sa.Index(None, "state", "workflow_instance_id"),
)

# Who did what to a task instance, when (ListTaskInstanceOperationLogs).
task_operation_logs = sa.Table(
    "task_operation_logs",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("task_instance_id", sa.BigInteger(), nullable=False),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("content", sa.Text(), nullable=False),
    sa.Index(None, "task_instance_id", "create_time", "id"),
    sqlite_autoincrement=True,
)

# Counters for ids that are not a table's own key (WorkflowTaskInstanceId).
id_counters = sa.Table(
    "id_counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("next_value", sa.BigInteger(), nullable=False),
)

# Access control (0004): users own AccessKeys; RAM-style policy documents are attached to
# users or groups; workspace members hold DataWorks workspace roles.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(128), nullable=False, server_default=sa.text("''")),
    sa.Column("password_hash", sa.Text(), nullable=True),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    # Contact (0011): where alerts for this user go (AliUid and TaskOwner receivers); the
    # webhook URL sealed like AccessKeySecrets (store.secrets).
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("webhook", sa.Text(), nullable=True),
    sqlite_autoincrement=True,
)

user_groups = sa.Table(
    "user_groups",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sqlite_autoincrement=True,
)

group_users = sa.Table(
    "group_users",
    metadata,
    sa.Column("group_id", sa.BigInteger(), primary_key=True),
    sa.Column("user_id", sa.BigInteger(), primary_key=True),
    sa.Index(None, "user_id"),
)

# Custom policies (the built-in ones are defined in code: domain.policies).
policies = sa.Table(
    "policies",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("description", sa.Text(), nullable=False, server_default=sa.text("''")),
    sa.Column("document", sa.Text(), nullable=False),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
)

policy_attachments = sa.Table(
    "policy_attachments",
    metadata,
    sa.Column("policy_name", sa.String(128), primary_key=True),
    sa.Column("principal_type", sa.String(8), primary_key=True),  # User | Group
    sa.Column("principal_id", sa.BigInteger(), primary_key=True),
    sa.Index(None, "principal_type", "principal_id"),
)

project_members = sa.Table(
    "project_members",
    metadata,
    sa.Column("project_id", sa.BigInteger(), primary_key=True),
    sa.Column("user_id", sa.BigInteger(), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, server_default=sa.text("'Normal'")),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Index(None, "user_id"),
)

member_roles = sa.Table(
    "member_roles",
    metadata,
    sa.Column("project_id", sa.BigInteger(), primary_key=True),
    sa.Column("user_id", sa.BigInteger(), primary_key=True),
    sa.Column("role_code", sa.String(64), primary_key=True),
)

# The secret is stored encrypted with the server key (`enc:` + key id + token); keys made
# before 0004 belong to the `admin` user the migration creates.
access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("secret", sa.Text(), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("user_id", sa.BigInteger(), nullable=True),
    sa.Index(None, "user_id"),
)

# Throttling: per (AccessKey, action class), the tokens a process has leased from the
# shared budget (see api/throttle.py).
throttle_buckets = sa.Table(
    "throttle_buckets",
    metadata,
    sa.Column("access_key_id", sa.String(64), primary_key=True),
    sa.Column("action_class", sa.String(16), primary_key=True),
    sa.Column("tokens", sa.Float(), nullable=False),
    sa.Column("updated_at", sa.BigInteger(), nullable=False),
)

# Every mutating action: who, with which key, what, on which ids, how it ended.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("user_name", sa.String(64), nullable=False),
    sa.Column("access_key_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("project_id", sa.BigInteger(), nullable=True),
    sa.Column("targets", sa.Text(), nullable=False),  # JSON list of ids
    sa.Column("parameters", sa.Text(), nullable=False),  # JSON, secrets removed
    sa.Column("result", sa.String(64), nullable=False),  # OK or the error Code
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Index(None, "create_time", "id"),
    sqlite_autoincrement=True,
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

# Web console sign-ins (0005): the session cookie's SHA-256 (never the cookie itself), its
# user, the CSRF token the page must send back, and when it lapses.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.BigInteger(), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("last_seen", sa.BigInteger(), nullable=False),
    sa.Column("expires_at", sa.BigInteger(), nullable=False),
    sa.Index(None, "user_id"),
    sa.Index(None, "expires_at"),
)

# Console sign-in throttling (0006), shared by every API process on the database: a row per
# counter of failed sign-ins (`kind` pair: a user name from one address; name: a user name
# from anywhere; source: an address, any name) with the time until which tries are refused,
# and a row of kind `trusted` per (user name, address) that signed in lately. Rows lapse at
# `expires_at` and are swept (web/signin.py).
signin_failures = sa.Table(
    "signin_failures",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("user_name", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer(), nullable=False),
    sa.Column("blocked_until", sa.BigInteger(), nullable=False),
    sa.Column("expires_at", sa.BigInteger(), nullable=False),
    sa.Index(None, "expires_at"),
)

# Status events (0007): one row per change of a task instance's status, and per derived
# change of a workflow instance's, written with the change (store.transitions). Its id is
# the consumers' cursor (alerts, metrics: event_cursors); old rows every cursor has passed
# are swept (docs/events.md).
status_events = sa.Table(
    "status_events",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),  # task | workflow
    sa.Column("instance_id", sa.BigInteger(), nullable=False),
    sa.Column("workflow_instance_id", sa.BigInteger(), nullable=False),
    sa.Column("project_id", sa.BigInteger(), nullable=False),
    sa.Column("old_status", sa.String(20), nullable=False),
    sa.Column("new_status", sa.String(20), nullable=False),
    sa.Column("run_number", sa.Integer(), nullable=True),  # task events: the attempt's
    sa.Column("at", sa.BigInteger(), nullable=False),
    sa.Column("cause", sa.String(16), nullable=False),
    # The writing transaction's id on PostgreSQL (0 on SQLite, whose one writer commits ids
    # in order): consumers read in (txid, id) order only what every older transaction has
    # settled, so an id taken by a transaction that commits late is never skipped.
    sa.Column("txid", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    sa.Index(None, "at"),
    sa.Index(None, "instance_id", "kind"),
    sa.Index(None, "txid", "id"),
    sqlite_autoincrement=True,  # a cursor never sees an id again
)

# A consumer of status events: the last event id it has handled.
event_cursors = sa.Table(
    "event_cursors",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("last_txid", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    sa.Column("last_event_id", sa.BigInteger(), nullable=False),
    sa.Column("modify_time", sa.BigInteger(), nullable=False),
)

# A workflow instance's status is derived from probes of this index (one per status), not
# from reading every task of the instance (0007).
sa.Index("ix_ti_instance_status", task_instances.c.workflow_instance_id, task_instances.c.status)
# The planner's every-second look at the waiting tasks changed lately (0010).
sa.Index("ix_ti_status_modified", task_instances.c.status, task_instances.c.modify_time)

# Resource groups (0008): the attempts of a group that run at once over every worker on the
# database (a group without a row takes the `*` row's slots, else 4; domain.workers).
resource_groups = sa.Table(
    "resource_groups",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("slots", sa.Integer(), nullable=False),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("modify_time", sa.BigInteger(), nullable=False),
)

# Workers (0008): each worker process registers a row as it starts (its `name` is what
# task_instances.worker holds), beats it with its attempts' heartbeats and marks it draining,
# then stopped, as it shuts down. Recovery tells a dead worker by its host, pid and process
# identity (pid:start-time). `groups`: a JSON list of the resource groups it serves, null for
# every group. Rows are deleted a week after their last beat.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("process", sa.String(64), nullable=True),
    sa.Column("groups", sa.Text(), nullable=True),
    sa.Column("slots", sa.Integer(), nullable=False),
    sa.Column("started_at", sa.BigInteger(), nullable=False),
    sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
    sa.Column("draining", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("stopped_at", sa.BigInteger(), nullable=True),
    sa.Index(None, "heartbeat_at"),
)

# Dependencies across workflows and cycles (0009, docs/dependencies.md).
#
# An output name (typically `project.table`) is owned by one deployed node per environment,
# over every workspace: a node of any workflow that names it as an input depends on its owner.
task_outputs = sa.Table(
    "task_outputs",
    metadata,
    sa.Column("env_type", sa.String(4), primary_key=True),
    sa.Column("output", sa.String(512), primary_key=True),
    sa.Column("task_id", sa.BigInteger(), nullable=False),
    sa.Column("workflow_id", sa.BigInteger(), nullable=False),
    sa.Column("project_id", sa.BigInteger(), nullable=False),
    sa.Index(None, "workflow_id"),
)

# The deployed nodes' dependencies, one row per (node, upstream node, type): those inside a
# workflow and those across workflows, for the children of a node (CrossCycleDependsOnChildren),
# the dependents of a workflow that is changed or deleted, and the cycles a deploy would close.
task_links = sa.Table(
    "task_links",
    metadata,
    sa.Column("task_id", sa.BigInteger(), primary_key=True),
    sa.Column("upstream_task_id", sa.BigInteger(), primary_key=True),
    sa.Column("type", sa.String(32), primary_key=True),  # the FlowSpec dependency type
    sa.Column("workflow_id", sa.BigInteger(), nullable=False),  # the dependent's
    sa.Column("upstream_workflow_id", sa.BigInteger(), nullable=False),
    sa.Column("output", sa.String(512), nullable=False),  # as the spec named it
    sa.Index(None, "upstream_task_id"),
    sa.Index(None, "workflow_id"),
    sa.Index(None, "upstream_workflow_id"),
)

# The instance-level dependencies that leave a workflow instance (on another workflow's
# instance, or on a previous cycle), resolved when the instance is made. The upstream ids
# are in task_instances.upstream too, which is what planning reads; this table gives each
# its type and finds a task instance's downstreams elsewhere. RemoveTaskInstanceDependencies
# deletes rows (and the ids) of a waiting task instance.
task_instance_dependencies = sa.Table(
    "task_instance_dependencies",
    metadata,
    sa.Column("task_instance_id", sa.BigInteger(), primary_key=True),
    sa.Column("upstream_id", sa.BigInteger(), primary_key=True),
    sa.Column("type", sa.String(32), nullable=False),  # the FlowSpec dependency type
    sa.Index(None, "upstream_id"),
)

# Custom alert rules (0011, docs/alerts.md). `trigger_condition` and `notification` are the
# rule's documents in DataWorks' shape (domain.alerts), the notification's webhook URLs
# sealed with the server key (store.secrets). `owner` is a user id. Ids are never given again
# (AUTOINCREMENT): authorisation relies on an id staying the same rule.
alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("owner", sa.BigInteger(), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("trigger_type", sa.String(32), nullable=False),
    sa.Column("trigger_condition", sa.Text(), nullable=False),
    sa.Column("notification", sa.Text(), nullable=False),
    sa.Column("create_time", sa.BigInteger(), nullable=False),
    sa.Column("modify_time", sa.BigInteger(), nullable=False),
    sa.Column("create_user", sa.String(128), nullable=False),
    sa.Column("modify_user", sa.String(128), nullable=False),
    sa.Index(None, "trigger_type", "enabled"),
    sqlite_autoincrement=True,
)

# What each rule watches, one row per target: a task (`target` its id), a workspace (its
# id) or a resource group (its name), with the workspace it is in (null for a resource
# group). The evaluator finds the enabled rules watching a task instance's task or workspace
# on (target_type, target); authorisation reads a rule's workspaces on the primary key.
alert_rule_targets = sa.Table(
    "alert_rule_targets",
    metadata,
    sa.Column("rule_id", sa.BigInteger(), sa.ForeignKey("alert_rules.id"), primary_key=True),
    sa.Column("target_type", sa.String(16), primary_key=True),
    sa.Column("target", sa.String(128), primary_key=True),
    sa.Column("project_id", sa.BigInteger(), nullable=True),
    sa.Index(None, "target_type", "target"),
    sa.Index(None, "project_id"),
)

# Alerts (0012, docs/alerts.md): the outbox. An alert is one row of `alert_events`, written
# in the transaction that consumed its cause (a status event, a condition checked on the
# scheduler's tick), once per `dedupe_key` however many processes see it; each of its
# receivers is one row of `alert_deliveries`, sent by whichever process leases it, every
# try a row of `alert_delivery_attempts`.
alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("rule_id", sa.BigInteger(), nullable=True),  # None: a run's own Alert setting
    sa.Column("dedupe_key", sa.String(255), nullable=False, unique=True),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("project_id", sa.BigInteger(), nullable=False),
    sa.Column("task_instance_id", sa.BigInteger(), nullable=True),
    sa.Column("workflow_instance_id", sa.BigInteger(), nullable=True),
    sa.Column("notice", sa.Text(), nullable=False),  # domain.notices.Notice as JSON
    # pending (deliveries outstanding), sent, failed (some delivery gave up), silenced,
    # over_maximum, unreachable (no receiver could be reached)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Index(None, "rule_id", "created_at"),
    sa.Index(None, "project_id", "created_at"),
    sqlite_autoincrement=True,
)

alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("event_id", sa.BigInteger(), nullable=False, index=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("receiver", sa.String(255), nullable=False),  # shown: masked
    sa.Column("address", sa.Text(), nullable=False),  # sealed (store.secrets)
    sa.Column("state", sa.String(16), nullable=False),  # pending | sent | failed
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_try_at", sa.BigInteger(), nullable=False),
    sa.Column("lease_owner", sa.String(255), nullable=True),
    sa.Column("lease_until", sa.BigInteger(), nullable=True),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("sent_at", sa.BigInteger(), nullable=True),
    sa.Index(None, "state", "next_try_at"),
    sqlite_autoincrement=True,
)

alert_delivery_attempts = sa.Table(
    "alert_delivery_attempts",
    metadata,
    sa.Column("delivery_id", sa.BigInteger(), primary_key=True),
    sa.Column("attempt", sa.Integer(), primary_key=True),
    sa.Column("worker", sa.String(255), nullable=False),
    sa.Column("started_at", sa.BigInteger(), nullable=False),
    sa.Column("duration_ms", sa.Integer(), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # sent | failed | refused
    sa.Column("detail", sa.Text(), nullable=False),
)
