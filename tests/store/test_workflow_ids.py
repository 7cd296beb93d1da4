"""Workflow ids are never 1 (DataWorks' default workflow), never an imported workflow's, and
never given again after a delete, so an id cannot move to another workspace (issue 12)."""

from __future__ import annotations

import json

from dwsched.clock import SystemClock
from dwsched.domain import flowspec
from dwsched.store import Store
from tests.support.factories import instance, project, put

NOW = SystemClock().now_ms()
TZ = "Asia/Shanghai"


def deploy(store: Store, project_id: int, name: str) -> tuple[int, int]:
    """(definition id, workflow id) of a new manual workflow."""
    text = json.dumps(
        {
            "version": "1.1.0",
            "kind": "ManualWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": name,
                        "trigger": {"type": "Manual", "timezone": TZ},
                        "nodes": [{"id": "n", "script": {"runtime": {"command": "VIRTUAL"}}}],
                    }
                ]
            },
        }
    )
    with store.write() as tx:
        definition, deployed = tx.definitions.create(
            project_id, text, flowspec.parse(text, TZ), "tester", NOW, nodes=True
        )
    return definition.id, deployed.id


def test_a_workflow_id_is_never_1_nor_imported_nor_reused(store: Store) -> None:
    a, b = project(store), project(store)
    _, first = deploy(store, a.id, "first")
    assert first > 1
    # Instances imported with workflow ids ahead of the engine's: those ids stay theirs.
    put(store, [instance(a.id, id=9_000_001, workflow_id=first + 5)])
    definition, second = deploy(store, a.id, "second")
    assert second > first + 5
    # The newest workflow deleted: its id is not given to another workspace's.
    with store.write() as tx:
        tx.definitions.delete(definition, a.id)
    _, third = deploy(store, b.id, "third")
    assert third > second
