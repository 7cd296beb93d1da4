"""Workflow instance ids and task instance ids never name one another (both databases): task
instances are numbered from TASK_INSTANCE_ID_BASE up, workflow instances below, and an
import of a workflow instance id in the task instances' range neither pulls the workflow
instances' numbering into it nor takes a task instance's number."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dwsched.domain.errors import InvalidArgument
from dwsched.store import Store
from dwsched.store.ids import TASK_INSTANCE_ID_BASE as BASE
from tests.store.test_dependencies_store import RUN, deploy, node, plan
from tests.support.factories import instance, project, put

NOW = 1_767_225_600_000


def ids(store: Store, table: str) -> list[int]:
    with store.read() as tx:
        return [
            int(i)
            for i in tx.conn.execute(sa.text(f"SELECT id FROM {table} ORDER BY id")).scalars()
        ]


def test_imports_in_the_task_range_keep_the_two_numberings_apart(store: Store) -> None:
    p = project(store)
    w = deploy(store, p.id, "00 00 01 * * ?", [node("a", ["a_out"]), node("b", inputs=["a_out"])])
    put(store, [instance(p.id, id=BASE + 500, unified_workflow_instance_id=BASE + 500)])
    store.generate_many([plan(w, RUN)], NOW)
    made = [i for i in ids(store, "workflow_instances") if i != BASE + 500]
    tasks = ids(store, "task_instances")
    assert made and max(made) < BASE  # the workflow instances' numbering stays below
    assert len(tasks) == 2 and min(tasks) > BASE + 500  # task ids continue past the import
    # An imported workflow instance may not take a task instance's number.
    before = ids(store, "workflow_instances")
    with pytest.raises(InvalidArgument) as refused:
        put(store, [instance(p.id, id=tasks[0]), instance(p.id, id=BASE + 900)])
    assert refused.value.param == "Id" and str(tasks[0]) in str(refused.value)
    assert ids(store, "workflow_instances") == before
