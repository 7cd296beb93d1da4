"""The one Alembic history against `dwsched.store.schema.metadata`, on SQLite and PostgreSQL.

An empty database upgraded to head must be exactly what the metadata declares (autogenerate
finds nothing to do), be stamped with the head revision, and stay untouched by a second
upgrade; several processes opening a fresh database at once must all succeed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from dwsched.domain import flowspec
from dwsched.store import Store
from dwsched.store.connect import WRITE, create_engine
from dwsched.store.dialect import advance_sequence, new_ids
from dwsched.store.migrate import alembic_config, current_revision, head_revision, upgrade
from dwsched.store.schema import metadata, task_instances, workflow_instances
from tests.support.databases import new_database_url
from tests.support.factories import project


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    e = create_engine(db_url)
    yield e
    e.dispose()


def schema_diff(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def versions(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())


def shape(engine: sa.Engine) -> dict[str, Any]:
    """Tables with their columns, indexes, keys and constraints, as the database reports them."""
    inspector = sa.inspect(engine)
    found: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        found[table] = (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
            inspector.get_pk_constraint(table),
            sorted(str(fk) for fk in inspector.get_foreign_keys(table)),
            sorted(str(u) for u in inspector.get_unique_constraints(table)),
        )
    return found


def test_head_is_one_revision() -> None:
    head = head_revision()
    assert head is not None
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [head]


def test_upgrading_an_empty_database_gives_the_declared_schema(engine: sa.Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert schema_diff(engine) == []
    assert versions(engine) == [head_revision()]
    assert current_revision(engine) == head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert tables == set(metadata.tables) | {"alembic_version"}


def test_sqlite_table_options_are_as_declared(tmp_path: Path) -> None:
    """What autogenerate does not compare: WITHOUT ROWID tables and rowid-alias keys."""
    engine = create_engine(f"sqlite:///{tmp_path / 'options.db'}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            ddl = dict(
                conn.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                ).all()
            )
    finally:
        engine.dispose()
    for table in metadata.tables.values():
        without_rowid = table.dialect_options["sqlite"]["with_rowid"] is False
        assert ("WITHOUT ROWID" in ddl[table.name].upper()) == without_rowid, table.name
    for name in ("projects", "partitions", "workflows", "workflow_instances"):
        assert '"id" INTEGER NOT NULL' in ddl[name] or "id INTEGER NOT NULL" in ddl[name], name


def test_a_second_upgrade_changes_nothing(engine: sa.Engine) -> None:
    upgrade(engine)
    before = shape(engine)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        upgrade(engine)
        # And through Alembic itself, past dwsched's own "already at head" check.
        with engine.execution_options(**{WRITE: True}).begin() as conn:
            command.upgrade(alembic_config(conn), "head")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    writes = [
        s
        for s in statements
        if s.lstrip().split(None, 1)[0].upper()
        in ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")
    ]
    assert writes == []
    assert shape(engine) == before
    assert versions(engine) == [head_revision()]


def test_downgrade_to_base_and_back(engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.execution_options(**{WRITE: True}).begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    assert current_revision(engine) is None
    upgrade(engine)
    assert schema_diff(engine) == []
    assert versions(engine) == [head_revision()]


def test_store_open_migrates_and_reopens(db_url: str) -> None:
    with Store.open(db_url) as first:
        assert current_revision(first.database) == head_revision()
    with Store.open(db_url) as second:
        assert schema_diff(second.database) == []
        assert versions(second.database) == [head_revision()]


def open_concurrently(url: str, n: int) -> tuple[int, list[BaseException]]:
    """`n` threads call Store.open(url) at the same moment; (how many opened, the errors)."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    opened: list[Store] = []

    def open_store() -> None:
        barrier.wait()
        try:
            opened.append(Store.open(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in opened:
        s.close()
    return len(opened), errors


def test_concurrent_opens_of_a_fresh_postgresql_database_all_succeed(tmp_path: Path) -> None:
    """Several processes starting at once on an empty database (pg_advisory_xact_lock)."""
    for attempt in range(3):
        urls = new_database_url("postgres", tmp_path)
        url = next(urls)
        try:
            opened, errors = open_concurrently(url, 4)
            assert (opened, errors) == (4, []), attempt
            check = create_engine(url)
            try:
                assert versions(check) == [head_revision()]
                assert schema_diff(check) == []
            finally:
                check.dispose()
        finally:
            urls.close()


def test_keys_made_before_access_control_stay_administrators(engine: sa.Engine) -> None:
    with engine.execution_options(**{WRITE: True}).begin() as conn:
        command.upgrade(alembic_config(conn), "0003")
        conn.execute(
            sa.text(
                "INSERT INTO access_keys (id, secret, name, status, create_time) "
                "VALUES ('LTAIold', 's3cret', 'old', 'Enabled', 5)"
            )
        )
    upgrade(engine)
    store = Store(engine)
    with store.read() as tx:
        principal = tx.users.principal_of_key("LTAIold")
    assert principal is not None
    assert (principal.user.name, principal.policy_names) == ("admin", ("AdministratorAccess",))


def test_deployed_outputs_and_links_are_filled_in_from_the_nodes(engine: sa.Engine) -> None:
    """Revision 0009 derives the outputs and links of workflows deployed before it from their
    nodes: down to 0008 and up again gives back what deployment recorded."""
    upgrade(engine)
    store = Store(engine)
    p = project(store)
    up = _deploy(store, p.id, [{**_node("u"), "outputs": {"nodeOutputs": [{"data": "m.up"}]}}])
    _deploy(
        store,
        p.id,
        [
            {**_node("a"), "inputs": {"nodeOutputs": [{"data": "m.up"}]}},
            {**_node("b"), "outputs": {"nodeOutputs": [{"data": "m.b"}]}},
        ],
        [
            {"nodeId": "a", "depends": [{"nodeId": "b"}]},
            {"nodeId": "b", "depends": [{"type": "CrossCycleDependsOnSelf"}]},
        ],
    )
    assert up > 0

    def recorded() -> tuple[list[Any], list[Any]]:
        with engine.connect() as conn:
            return (
                sorted(conn.execute(sa.text("SELECT * FROM task_outputs")).all()),
                sorted(conn.execute(sa.text("SELECT * FROM task_links")).all()),
            )

    before = recorded()
    assert len(before[0]) == 2 and len(before[1]) == 3
    with engine.execution_options(**{WRITE: True}).begin() as conn:
        command.downgrade(alembic_config(conn), "0008")
        command.upgrade(alembic_config(conn), "head")
    assert recorded() == before


def _node(node_id: str) -> dict[str, Any]:
    return {"id": node_id, "script": {"runtime": {"command": "VIRTUAL"}}}


def _deploy(
    store: Store, project_id: int, nodes: list[dict[str, Any]], deps: list[Any] | None = None
) -> int:
    text = json.dumps(
        {
            "kind": "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": f"m{len(nodes)}{nodes[0]['id']}",
                        "trigger": {"cron": "00 00 01 * * ?", "timezone": "UTC"},
                        "nodes": nodes,
                        "dependencies": deps or [],
                    }
                ]
            },
        }
    )
    with store.write() as tx:
        return tx.definitions.create(
            project_id, text, flowspec.parse(text, "UTC"), "t", 1, nodes=True
        )[1].id


def test_owners_recorded_as_access_key_ids_or_user_names_become_account_ids(
    engine: sa.Engine,
) -> None:
    """Revision 0013: owners, creators and operators recorded as AccessKeyIds (or, for
    operations, user names) become account ids: the key's user's id, the tenant's `0` for a
    key without a user; values that name neither stay as they are."""
    upgrade(engine)
    store = Store(engine)
    with store.write() as tx:
        alice = tx.users.create("alice", "", 1).id
    p = project(store)
    workflow = _deploy(store, p.id, [_node("a")])
    with engine.execution_options(**{WRITE: True}).begin() as conn:
        command.downgrade(alembic_config(conn), "0012")
        conn.execute(
            sa.text(
                "INSERT INTO access_keys (id, secret, name, status, create_time, user_id) "
                "VALUES ('LTAIalice', 's', 'a', 'Enabled', 1, :alice), "
                "('LTAIroot', 's', 'r', 'Enabled', 1, NULL)"
            ),
            {"alice": alice},
        )
        conn.execute(sa.text("UPDATE projects SET owner = 'LTAIroot'"))
        conn.execute(
            sa.text(
                "UPDATE workflows SET owner = 'LTAIalice', create_user = 'LTAIroot', "
                "modify_user = 'someone else'"
            )
        )
        spec = json.loads(
            conn.execute(
                sa.text("SELECT spec FROM workflows WHERE id = :i"), {"i": workflow}
            ).scalar_one()
        )
        conn.execute(
            sa.text("UPDATE workflows SET spec = :s WHERE id = :i"),
            {"s": json.dumps({**spec, "owner": "LTAIalice"}), "i": workflow},
        )
        conn.execute(sa.text("UPDATE tasks SET owner = 'LTAIalice'"))
        conn.execute(
            sa.text(
                'INSERT INTO task_operation_logs (task_instance_id, create_time, "user", '
                "content) VALUES (1, 1, 'alice', 'rerun'), (1, 2, 'LTAIroot', 'stopped'), "
                "(1, 3, 'LTAIgone', 'suspended')"
            )
        )
        command.upgrade(alembic_config(conn), "head")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT owner FROM projects")).scalars().all() == ["0"]
        row = conn.execute(
            sa.text("SELECT owner, create_user, modify_user, spec FROM workflows")
        ).one()
        assert row[:3] == (str(alice), "0", "someone else")
        assert json.loads(row.spec)["owner"] == str(alice)
        assert conn.execute(sa.text("SELECT owner FROM tasks")).scalars().all() == [str(alice)]
        users = conn.execute(
            sa.text('SELECT "user" FROM task_operation_logs ORDER BY create_time')
        ).scalars()
        assert list(users) == [str(alice), "0", "LTAIgone"]
        assert "account_ids_0013" not in sa.inspect(conn).get_table_names()
    with store.read() as tx:
        assert tx.workflows.get(workflow).spec.owner == str(alice)


@pytest.mark.parametrize("before", [0, 41, 10**9 + 500])
def test_task_instance_ids_are_allocated_apart_from_workflow_instance_ids(
    engine: sa.Engine, before: int
) -> None:
    """Revision 0014: the next task instance id is at least 10**9 (the workflow instances'
    ids stay below), and a sequence already past it is not moved back."""
    with engine.execution_options(**{WRITE: True}).begin() as conn:
        command.upgrade(alembic_config(conn), "0013")
        if before:
            advance_sequence(conn, task_instances, before)
        command.upgrade(alembic_config(conn), "head")
    with engine.execution_options(**{WRITE: True}).begin() as conn:
        (first,) = new_ids(conn, task_instances, 1)
        (instance,) = new_ids(conn, workflow_instances, 1)
    assert first == max(10**9, before + 1)
    assert instance == 1
