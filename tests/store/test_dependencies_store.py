"""Dependencies across workflows and cycles in the store (both databases): edges made in
whichever order the workflows are generated, the first instance waiting for no previous
cycle, the planner not crowded by instances that wait elsewhere, outputs of workspaces the
deployer may not read, and the deployed links a migrated database starts with.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dwsched.domain import flowspec
from dwsched.domain.errors import Conflict, InvalidArgument
from dwsched.domain.generation import GenerationPlan
from dwsched.domain.models import InstanceType, Status
from dwsched.domain.operations import Operation
from dwsched.domain.runs import RunRequest
from dwsched.domain.schedule import Trigger, cycles_on
from dwsched.domain.workflows import DeployedWorkflow
from dwsched.store import Store
from dwsched.store.schema import task_instance_dependencies as tid, task_instances as ti
from tests.support.factories import project

TZ = "Asia/Shanghai"
RUN = date(2025, 4, 2)
NOW = 1_700_000_000_000


def node(node_id: str, outputs: Sequence[str] = (), inputs: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "id": node_id,
        "script": {"runtime": {"command": "VIRTUAL"}},
        "outputs": {"nodeOutputs": [{"data": o} for o in outputs]},
        "inputs": {"nodeOutputs": [{"data": i} for i in inputs]},
    }


def deploy(
    store: Store,
    project_id: int,
    cron: str,
    nodes: list[dict[str, Any]],
    dependencies: Sequence[dict[str, Any]] = (),
    readable: frozenset[int] | None = None,
) -> DeployedWorkflow:
    text = json.dumps(
        {
            "version": "1.1.0",
            "kind": "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": f"w_{uuid.uuid4().hex[:8]}",
                        "trigger": {"cron": cron, "timezone": TZ},
                        "nodes": nodes,
                        "dependencies": list(dependencies),
                    }
                ]
            },
        }
    )
    spec = flowspec.parse(text, TZ)
    with store.write() as tx:
        return tx.definitions.create(project_id, text, spec, "t", NOW, True, readable)[1]


def plan(w: DeployedWorkflow, *days: date) -> GenerationPlan:
    t = w.spec.trigger
    assert t.cron is not None
    trigger = Trigger(t.cron, t.timezone, t.start_ms, t.end_ms)
    return GenerationPlan(w, [(d, cycles_on(trigger, d)) for d in days], None)


def tasks_of(store: Store, w: DeployedWorkflow) -> list[Any]:
    with store.read() as tx:
        return list(
            tx.conn.execute(
                sa.select(ti.c.id, ti.c.upstream, ti.c.status, ti.c.trigger_time)
                .where(ti.c.workflow_id == w.id)
                .order_by(ti.c.trigger_time)
            )
        )


def edges_of(store: Store, task_instance_id: int) -> dict[int, str]:
    with store.read() as tx:
        rows = tx.conn.execute(
            sa.select(tid.c.upstream_id, tid.c.type).where(
                tid.c.task_instance_id == task_instance_id
            )
        )
        return {int(u): str(t) for u, t in rows}


@pytest.mark.parametrize("order", ["upstream first", "downstream first", "together"])
def test_edges_do_not_depend_on_the_order_workflows_are_generated(store: Store, order: str) -> None:
    p = project(store)
    out = f"ods.{uuid.uuid4().hex[:8]}"
    hourly = deploy(store, p.id, "00 00 * * * ?", [node("h", outputs=[out])])
    daily = deploy(store, p.id, "00 30 02 * * ?", [node("d", inputs=[out])])
    up, down = plan(hourly, RUN), plan(daily, RUN)
    batches = {
        "upstream first": [[up], [down]],
        "downstream first": [[down], [up]],
        "together": [[down, up]],
    }[order]
    for batch in batches:
        store.generate_many(batch, NOW)
    (d,) = tasks_of(store, daily)
    hours = tasks_of(store, hourly)
    assert len(hours) == 24
    assert sorted(json.loads(d.upstream)) == sorted(h.id for h in hours)
    assert edges_of(store, d.id) == {h.id: "Normal" for h in hours}


def test_the_first_instance_waits_for_no_previous_cycle_and_the_next_one_does(store: Store) -> None:
    p = project(store)
    w = deploy(
        store,
        p.id,
        "00 00 03 * * ?",
        [node("s")],
        [{"nodeId": "s", "depends": [{"type": "CrossCycleDependsOnSelf"}]}],
    )
    store.generate_many([plan(w, RUN, RUN + timedelta(days=1))], NOW)
    first, second = tasks_of(store, w)
    assert json.loads(first.upstream) == [] and edges_of(store, first.id) == {}
    assert json.loads(second.upstream) == [first.id]
    assert edges_of(store, second.id) == {first.id: "CrossCycleDependsOnSelf"}


def test_instances_waiting_elsewhere_do_not_crowd_out_the_planner(store: Store) -> None:
    """Ten daily downstreams wait for an upstream that has not run (and a task of theirs
    waits below the waiting one); with a planner batch of 3 a later, ready instance still
    moves, and so does the upstream."""
    p = project(store)
    out = f"ods.{uuid.uuid4().hex[:8]}"
    upstream = deploy(store, p.id, "00 00 23 * * ?", [node("u", outputs=[out])])
    waiting = [
        deploy(
            store,
            p.id,
            "00 00 01 * * ?",
            [node("d", inputs=[out]), node("d2")],
            [{"nodeId": "d2", "depends": [{"nodeId": "d"}]}],
        )
        for _ in range(10)
    ]
    ready = deploy(store, p.id, "00 00 05 * * ?", [node("r")])
    store.generate_many([plan(w, RUN) for w in [upstream, *waiting, ready]], NOW)
    late = tasks_of(store, ready)[0].trigger_time + 60_000
    assert late < tasks_of(store, upstream)[0].trigger_time  # the upstream's time is ahead
    assert store.plan(late, limit=3) == 2  # the upstream waits for its time, `ready` runs
    assert tasks_of(store, upstream)[0].status == Status.WAIT_TIME.value
    assert tasks_of(store, ready)[0].status == Status.WAIT_RESOURCE.value
    assert {t.status for w in waiting for t in tasks_of(store, w)} == {Status.NOT_RUN.value}
    at_upstream = tasks_of(store, upstream)[0].trigger_time
    assert store.plan(at_upstream, limit=3) == 1
    assert tasks_of(store, upstream)[0].status == Status.WAIT_RESOURCE.value


def test_an_output_of_a_workspace_the_deployer_may_not_read_is_unknown_to_it(store: Store) -> None:
    mine, theirs = project(store), project(store)
    out = f"ods.{uuid.uuid4().hex[:8]}"
    other = deploy(store, theirs.id, "00 00 01 * * ?", [node("u", outputs=[out])])
    # Producing the same name is refused without naming the other workspace's workflow.
    with pytest.raises(InvalidArgument) as duplicate:
        deploy(
            store, mine.id, "00 00 02 * * ?", [node("u", outputs=[out])], (), frozenset({mine.id})
        )
    assert "a node of a workspace you may not read" in duplicate.value.message
    assert other.spec.name not in duplicate.value.message
    with pytest.raises(InvalidArgument) as refused:
        deploy(
            store, mine.id, "00 00 02 * * ?", [node("d", inputs=[out])], (), frozenset({mine.id})
        )
    assert "nodes[0].inputs.nodeOutputs[0].data" in refused.value.message
    assert f"no deployed node produces the output {out!r}" in refused.value.message
    # Allowed to read it, the same spec deploys.
    deploy(
        store,
        mine.id,
        "00 00 02 * * ?",
        [node("d", inputs=[out])],
        (),
        frozenset({mine.id, theirs.id}),
    )


def test_a_task_read_as_an_upstream_elsewhere_is_not_moved_with_the_instance_reading_it(
    store: Store,
) -> None:
    """Day 2's `report` waits for day 1's (its previous cycle), which waits for `load` of
    another workflow. Planning day 2's instance (it has a ready task, `tidy`) reads day 1's
    `report` for its status: that must not move it while `load` has not succeeded."""
    p = project(store)
    out = f"ods.{uuid.uuid4().hex[:8]}"
    a = deploy(store, p.id, "00 00 01 * * ?", [node("load", outputs=[out])])
    b = deploy(
        store,
        p.id,
        "00 00 02 * * ?",
        [node("report", inputs=[out]), node("tidy")],
        [{"nodeId": "report", "depends": [{"type": "CrossCycleDependsOnSelf"}]}],
    )
    days = (RUN, RUN + timedelta(days=1))
    store.generate_many([plan(a, *days), plan(b, *days)], NOW)
    late = max(t.trigger_time for t in tasks_of(store, b)) + 60_000
    for _ in range(3):
        store.plan(late)
    with store.read() as tx:
        rows = tx.conn.execute(
            sa.select(ti.c.name, ti.c.trigger_time, ti.c.status)
            .where(ti.c.workflow_id.in_([a.id, b.id]))
            .order_by(ti.c.trigger_time, ti.c.name)
        ).all()
    status = {(r.name, n): r.status for n, r in enumerate(rows)}
    by_name: dict[str, list[str]] = {}
    for r in rows:
        by_name.setdefault(r.name, []).append(r.status)
    assert by_name["load"] == [Status.WAIT_RESOURCE.value] * 2  # due, nothing above them
    assert by_name["tidy"] == [Status.WAIT_RESOURCE.value] * 2
    assert by_name["report"] == [Status.NOT_RUN.value] * 2, status  # load has not succeeded


def test_an_upstream_reached_by_two_dependency_types_is_one_edge(store: Store) -> None:
    """`d` depends on `u` both in the same cycle and on its previous cycle; where both rules
    pick the same instance (an upstream scheduled later than the downstream), made in either
    order, generation writes one edge, not a duplicate key."""
    p = project(store)
    out = f"ods.{uuid.uuid4().hex[:8]}"
    u = deploy(store, p.id, "0 0 12-23 * * ?", [node("u", outputs=[out])])
    d = deploy(
        store,
        p.id,
        "0 0 0-5 * * ?",
        [node("d", inputs=[out])],
        [{"nodeId": "d", "depends": [{"type": "CrossCycleDependsOnOtherNode", "output": out}]}],
    )
    yesterday = RUN - timedelta(days=1)
    store.generate_many([plan(u, yesterday)], NOW)
    store.generate_many([plan(d, yesterday, RUN)], NOW)
    store.generate_many([plan(u, RUN)], NOW)
    for t in tasks_of(store, d):
        ups = json.loads(t.upstream)
        assert len(ups) == len(set(ups)) == len(edges_of(store, t.id)) > 0


def test_an_output_moving_to_another_node_keeps_one_link_per_pair_of_nodes(store: Store) -> None:
    p = project(store)
    x, z = f"ods.x{uuid.uuid4().hex[:6]}", f"ods.z{uuid.uuid4().hex[:6]}"

    def spec(nodes: list[dict[str, Any]]) -> str:
        workflow = {"name": "mover", "trigger": {"cron": "00 00 01 * * ?", "timezone": TZ}}
        return json.dumps(
            {"kind": "CycleWorkflow", "spec": {"workflows": [{**workflow, "nodes": nodes}]}}
        )

    def redeploy(text: str) -> None:
        with store.write() as tx:
            tx.definitions.create_or_replace(p.id, text, flowspec.parse(text, TZ), "t", NOW)

    redeploy(spec([node("n1", outputs=[x]), node("n2", outputs=[z])]))
    reader = deploy(store, p.id, "00 00 02 * * ?", [node("v", inputs=[x, z])])
    redeploy(spec([node("n1"), node("n2", outputs=[x, z])]))
    with store.read() as tx:
        deps = tx.workflows.dependencies(reader.id)
    assert len(deps) == 1 and deps[0][0] == "Normal"  # both outputs now of n2: one link


def test_a_deleted_workspace_frees_its_output_names_and_waits_for_its_dependents(
    store: Store,
) -> None:
    theirs, mine = project(store), project(store)
    out = f"ods.{uuid.uuid4().hex[:8]}"
    deploy(store, theirs.id, "00 00 01 * * ?", [node("u", outputs=[out])])
    reader = deploy(store, mine.id, "00 00 02 * * ?", [node("v", inputs=[out])])
    with pytest.raises(Conflict) as refused, store.write() as tx:
        tx.projects.delete(theirs.id)
    assert f"workflow {reader.spec.name!r}" in str(refused.value)
    with store.write() as tx:
        tx.definitions.delete(reader.definition_id, mine.id)
        tx.projects.delete(theirs.id)
    deploy(store, mine.id, "00 00 01 * * ?", [node("again", outputs=[out])])  # free again


def test_a_backfill_day_its_operation_still_holds_waits_when_the_day_before_ends(
    store: Store,
) -> None:
    """A self-dependent node's backfill with Parallelism 1: when day 1 ends, day 2 (still
    queued by its operation) is not planned through the edge; the release decides."""
    p = project(store)
    w = deploy(
        store,
        p.id,
        "00 00 03 * * ?",
        [{**node("s"), "script": {"runtime": {"command": "SHELL"}, "content": "true"}}],
        [{"nodeId": "s", "depends": [{"type": "CrossCycleDependsOnSelf"}]}],
    )
    request = RunRequest(
        project_id=p.id,
        name="bf",
        type=InstanceType.SUPPLEMENT_DATA,
        workflow_id=w.id,
        root_task_ids=(w.tasks[0].id,),
        ranges=((date(2023, 10, 1), date(2023, 10, 3)),),
        parallelism=1,
    )
    store.submit_run(uuid.uuid4().hex, request, "t", NOW)
    store.create_pending(NOW)
    store.release_queued(NOW)
    store.plan(NOW)
    claimed, _ = store.claim_tasks("w1", None, 10, NOW)
    assert len(claimed) == 1
    store.finish_task(claimed[0], Status.SUCCESS, 0, "", NOW + 1000)
    first, second, third = tasks_of(store, w)
    assert first.status == Status.SUCCESS.value
    assert json.loads(second.upstream) == [first.id]
    assert (second.status, third.status) == (Status.NOT_RUN.value, Status.NOT_RUN.value)


def test_the_previous_cycle_of_a_descendant_on_another_schedule_is_refused(store: Store) -> None:
    """U (12:00-23:00) on the previous cycle of D (00:00-05:00), which reads U's output: the
    proximity rule ties D's 00:00 to U's 12:00, which would wait for D's 00:00-04:00."""
    p = project(store)
    out = f"ods.{uuid.uuid4().hex[:8]}"
    d_out = f"ods.{uuid.uuid4().hex[:8]}"
    text = json.dumps(
        {
            "kind": "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": "u_flow",
                        "trigger": {"cron": "0 0 12-23 * * ?", "timezone": TZ},
                        "nodes": [node("u", outputs=[out])],
                    }
                ]
            },
        }
    )
    with store.write() as tx:
        tx.definitions.create_or_replace(p.id, text, flowspec.parse(text, TZ), "t", NOW)
    deploy(store, p.id, "0 0 0-5 * * ?", [node("d", inputs=[out], outputs=[d_out])])
    looped = json.loads(text)
    looped["spec"]["workflows"][0]["dependencies"] = [
        {"nodeId": "u", "depends": [{"type": "CrossCycleDependsOnOtherNode", "output": d_out}]}
    ]
    again = json.dumps(looped)
    with pytest.raises(InvalidArgument) as refused, store.write() as tx:
        tx.definitions.create_or_replace(p.id, again, flowspec.parse(again, TZ), "t", NOW)
    assert "use CrossCycleDependsOnChildren" in refused.value.message
    # On the same schedule the previous cycle is always earlier: allowed.
    same = json.loads(again)
    same["spec"]["workflows"][0]["trigger"]["cron"] = "0 0 0-5 * * ?"
    text = json.dumps(same)
    with store.write() as tx:
        tx.definitions.create_or_replace(p.id, text, flowspec.parse(text, TZ), "t", NOW)


def test_a_virtual_upstream_or_a_set_success_unblocks_downstreams_elsewhere_at_once(
    store: Store,
) -> None:
    """A VIRTUAL upstream ends in its claim, another is set to Success by an operator:
    both downstreams in other workflows are planned as that commits, with no planner
    round between."""
    p = project(store)
    outs = [f"ods.{uuid.uuid4().hex[:8]}" for _ in range(2)]
    shell = {"script": {"runtime": {"command": "SHELL"}, "content": "true"}}
    virtual = deploy(store, p.id, "00 00 01 * * ?", [node("u", outputs=[outs[0]])])
    real = deploy(store, p.id, "00 00 01 * * ?", [{**node("u", outputs=[outs[1]]), **shell}])
    downs = [
        deploy(store, p.id, "00 00 02 * * ?", [{**node("d", inputs=[o]), **shell}]) for o in outs
    ]
    store.generate_many([plan(w, RUN) for w in [virtual, real, *downs]], NOW)
    store.plan(NOW, thorough=False)
    due = tasks_of(store, virtual)[0].trigger_time
    store.plan(due, thorough=False)
    claimed, ended = store.claim_tasks("w1", None, 10, due)
    assert ended == 1 and len(claimed) == 1  # the VIRTUAL one ended, the SHELL one claimed
    assert tasks_of(store, downs[0])[0].status == Status.WAIT_TIME.value
    assert tasks_of(store, downs[1])[0].status == Status.NOT_RUN.value
    store.finish_task(claimed[0], Status.FAILURE, 1, "", due + 500)
    (failed,) = tasks_of(store, real)
    store.task_operation(Operation.SET_SUCCESS, [failed.id], "t", "", due + 1000)
    assert tasks_of(store, downs[1])[0].status == Status.WAIT_TIME.value


def test_a_dry_run_the_planner_ends_lets_the_tasks_below_it_move_in_the_same_round(
    store: Store,
) -> None:
    """Two dry-run nodes in a chain above a real one: when the planner reaches their
    time, both end and the task below them is ready, in one round."""
    p = project(store)
    w = deploy(
        store,
        p.id,
        "00 00 01 * * ?",
        [{**node("a"), "recurrence": "Skip"}, {**node("b"), "recurrence": "Skip"}, node("c")],
        [
            {"nodeId": "b", "depends": [{"nodeId": "a"}]},
            {"nodeId": "c", "depends": [{"nodeId": "b"}]},
        ],
    )
    store.generate_many([plan(w, RUN)], NOW)
    store.plan(NOW, thorough=False)
    due = tasks_of(store, w)[0].trigger_time
    store.plan(due, thorough=False)
    by_position = [t.status for t in tasks_of(store, w)]
    assert sorted(by_position) == sorted(
        [Status.SUCCESS.value, Status.SUCCESS.value, Status.WAIT_RESOURCE.value]
    )


def test_ready_instances_beyond_one_rounds_limit_are_all_planned(store: Store) -> None:
    """More instances ready at once than a round takes: later rounds take the rest, however
    long after their making."""
    p = project(store)
    ws = [deploy(store, p.id, "00 00 01 * * ?", [node("r")]) for _ in range(5)]
    store.generate_many([plan(w, RUN) for w in ws], NOW)
    store.plan(NOW, thorough=True, limit=100)
    late = tasks_of(store, ws[0])[0].trigger_time + 3_600_000
    moved = [store.plan(late + k * 1000, limit=2, thorough=False) for k in range(4)]
    assert sum(moved) == 5
