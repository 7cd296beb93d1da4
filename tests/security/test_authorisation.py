"""Authorised where it acts (security review, high): ids that did not exist yet skipped the
workspace check, and a handler then acted on whatever had been created with them meanwhile.

- The race, on PostgreSQL with two API servers on one database: an outsider suspends and
  stops the next task instance ids while a member of workspace b creates instances; nothing
  of b is touched, and the audit log shows only refusals.
- For a caller who is not a tenant administrator, an id of a workspace it is not a member of
  and an id that does not exist get the very same answer, for every kind of id.
- A tenant administrator still gets the handlers' own not-found answers, and the audit
  record names the workspace a request actually touched.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alibabacloud_dataworks_public20240518 import models as M

from dwsched.api.calls import Calls, Who
from dwsched.api.context import Context
from dwsched.api.params import Params
from dwsched.api.registry import RULES
from dwsched.clock import SystemClock
from dwsched.domain import alerts
from dwsched.domain.access import Where
from dwsched.runtime.keys import create_key
from dwsched.store import Store
from dwsched.store.schema import task_instances, task_operation_logs
from tests.api.sdk_helpers import acs3
from tests.engine.test_engine import TZ, node
from tests.support.databases import new_database_url
from tests.support.factories import instance, project, put
from tests.support.server import LiveServer, running_server
from tests.support.specs import qualified

CLOCK = SystemClock()
MISSING = 8_000_000_000_001  # an id no test database reaches
MISSING_OPERATION = "0" * 32
NOTIFY = {"Channels": ["Mail"], "Receivers": [{"ReceiverType": "TaskOwner"}]}
NOW = CLOCK.now_ms()
RACE_SECONDS = 2.0


def manual_flow() -> str:
    """A manual workflow of two VIRTUAL nodes: each run makes two task instances. Its name
    is its own and qualifies its outputs (an output name has one producer in a database)."""
    nodes = [node("x", "VIRTUAL"), node("y", "VIRTUAL", after="x")]
    spec = {
        "version": "1.1.0",
        "kind": "ManualWorkflow",
        "spec": {
            "workflows": [
                {
                    "name": f"flow_{time.monotonic_ns()}",
                    "trigger": {"type": "Manual", "timezone": TZ},
                    "strategy": {"instanceMode": "T+1", "rerunTimes": 0},
                    "nodes": nodes,
                }
            ]
        },
    }
    return json.dumps(qualified(spec))


@dataclass
class Key:
    id: str
    secret: str


def user_key(store: Store, name: str, policy: str, member_of: int | None = None) -> Key:
    """A user with one built-in policy, O&M Engineer in `member_of`, and an AccessKey."""
    with store.write() as tx:
        user = tx.users.create(name, name, CLOCK.now_ms())
        tx.policies.attach(policy, "User", name, attach=True)
    if member_of is not None:
        with store.write() as tx:
            tx.members.add(member_of, user.id, ["role_project_pe"], CLOCK.now_ms())
    key = create_key(store, f"{name}-key", CLOCK.now_ms())
    with store.write() as tx:
        tx.users.set_key_user(key.id, name)
    return Key(key.id, key.secret)


@dataclass
class Space:
    """A workspace with a deployed manual workflow and one run of it."""

    id: int
    definition: str
    workflow: int
    tasks: list[int]
    operation: str
    instance: int
    task_instances: list[int]
    alert_rule: int = 0  # a custom alert rule watching the workspace


def deploy(live: LiveServer, project_id: int) -> tuple[str, int, list[int]]:
    root = live.sdk()
    job = root.import_workflow_definition(
        M.ImportWorkflowDefinitionRequest(project_id=project_id, spec=manual_flow())
    ).body.async_job
    assert job.status == "Success", job.error
    workflow = root.get_workflow_definition(
        M.GetWorkflowDefinitionRequest(id=job.response)
    ).body.workflow_definition.workflow_id
    tasks = root.get_workflow(M.GetWorkflowRequest(id=workflow)).body.workflow.tasks
    return str(job.response), int(workflow), [int(t.id) for t in tasks]


def space(live: LiveServer) -> Space:
    """A new workspace, its workflow deployed and run once (the run created at once, as
    the scheduler would create it)."""
    store, root = live.store, live.sdk()
    project_id = project(store).id
    definition, workflow, tasks = deploy(live, project_id)
    operation = root.create_workflow_instances(
        M.CreateWorkflowInstancesRequest(
            project_id=project_id, name="run", type="ManualWorkflow", workflow_id=workflow
        )
    ).body.operation_id
    store.create_pending(CLOCK.now_ms())
    result = root.get_create_workflow_instances_result(
        M.GetCreateWorkflowInstancesResultRequest(operation_id=operation)
    ).body.result
    assert result.status == "Created", result.failure_message
    (made,) = result.workflow_instance_ids
    with store.read() as tx:
        ti = task_instances.c
        found = tx.conn.execute(
            sa.select(ti.id).where(ti.workflow_instance_id == made).order_by(ti.id)
        ).scalars()
        own = [int(i) for i in found]
    with store.write() as tx:
        rule = alerts.NewRule(
            "watch",
            0,
            True,
            alerts.parse_trigger(
                {"Type": "Error", "Target": {"Type": "Project", "Ids": [project_id]}}
            ),
            alerts.parse_notification(NOTIFY),
            {project_id: project_id},
        )
        rule_id = tx.alerts.create(rule, "test", CLOCK.now_ms())
    return Space(project_id, definition, workflow, tasks, operation, int(made), own, rule_id)


def call(live: LiveServer, key: Key | None, action: str, params: dict[str, Any]) -> Any:
    """The raw answer: (HTTP status, JSON body)."""
    signer = {} if key is None else {"key_id": key.id, "secret": key.secret}
    response = acs3(live, action, form=params, **signer).send()
    return response.status_code, response.json()


# The race


def suspended_or_stopped(store: Store, project_id: int) -> list[int]:
    ti = task_instances.c
    with store.read() as tx:
        rows = tx.conn.execute(
            sa.select(ti.id).where(
                ti.project_id == project_id,
                sa.or_(ti.suspended == sa.true(), ti.operation_type != ""),
            )
        )
        return [int(i) for i in rows.scalars()]


def newest_task_instance(store: Store) -> int:
    with store.read() as tx:
        return int(tx.conn.execute(sa.select(sa.func.max(task_instances.c.id))).scalar() or 0)


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    yield from new_database_url("postgres", tmp_path)


def test_an_outsider_racing_the_next_ids_touches_nothing(pg_url: str) -> None:
    """Two API servers on one PostgreSQL database: the member creates instances through one,
    the outsider loops SuspendTaskInstances / StopTaskInstances on the next 100 task instance
    ids through the other (it even knows the newest id: a stronger attacker than one that
    guesses)."""
    with running_server(pg_url) as creating, running_server(pg_url) as attacked:
        store = creating.store
        ours = project(store).id
        theirs = space(creating)
        member = user_key(store, "member", "WorkspaceOperatorAccess", member_of=theirs.id)
        outsider = user_key(store, "outsider", "WorkspaceOperatorAccess", member_of=ours)
        stop = threading.Event()
        created: list[str] = []
        sent: list[int] = []
        failures: list[BaseException] = []

        def create() -> None:
            client = creating.sdk(key_id=member.id, secret=member.secret)
            request = M.CreateWorkflowInstancesRequest(
                project_id=theirs.id, name="run", type="ManualWorkflow", workflow_id=theirs.workflow
            )
            while not stop.is_set():
                created.append(client.create_workflow_instances(request).body.operation_id)
                store.create_pending(CLOCK.now_ms())  # as the scheduler does on every tick

        def attack(n: int) -> None:
            actions = ("SuspendTaskInstances", "StopTaskInstances")
            while not stop.is_set():
                newest = newest_task_instance(attacked.store)
                # Mostly ids that do not exist yet; every fourth request some that do, too.
                first = max(1, newest - 2) if len(sent) % 4 == 3 else newest + 1
                ids = list(range(first, first + 100))
                status, body = call(attacked, outsider, actions[len(sent) % 2], {"Ids": ids})
                assert (status, body["Code"]) == (403, "Forbidden.RAM"), body
                sent.append(n)

        def guarded(target: Any, *args: Any) -> None:
            try:
                target(*args)
            except BaseException as exc:  # reported below, not lost in the thread
                failures.append(exc)
                stop.set()

        threads = [threading.Thread(target=guarded, args=(create,))] + [
            threading.Thread(target=guarded, args=(attack, n)) for n in range(2)
        ]
        for thread in threads:
            thread.start()
        time.sleep(RACE_SECONDS)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert not failures, failures
        assert len(created) >= 5 and len(sent) >= 20, (len(created), len(sent))

        assert suspended_or_stopped(store, theirs.id) == []
        with store.read() as tx:
            logged = tx.conn.execute(
                sa.select(sa.func.count()).where(task_operation_logs.c.user == "outsider")
            ).scalar()
        assert logged == 0
        with store.read() as tx:
            entries = tx.audit.entries(user="outsider", limit=100_000)
        assert len(entries) == len(sent)
        assert {e.result for e in entries} == {"Forbidden.RAM"}
        # A refusal names the workspace of the ids that existed (b's), or none.
        assert {e.project_id for e in entries} <= {theirs.id, None}
        assert theirs.id in {e.project_id for e in entries}


# Same answer for an id of another workspace and for an id that does not exist


@dataclass
class World:
    live: LiveServer
    ours: Space  # the outsider is O&M Engineer here
    theirs: Space  # and not a member here
    outsider: Key
    admin: Key


@pytest.fixture(scope="module")
def world(live: LiveServer) -> World:
    ours, theirs = space(live), space(live)
    store = live.store
    return World(
        live,
        ours,
        theirs,
        user_key(store, "outsider", "WorkspaceOperatorAccess", member_of=ours.id),
        user_key(store, "tenant_admin", "AdministratorAccess"),
    )


def _cases(w: World) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, the kind of id, parameters with `{id}` where the id goes)."""
    ours, theirs = w.ours, w.theirs
    rerun = {"Type": "ManualWorkflow", "Ids": ["{id}"]}
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GetProject", "project", {"Id": "{id}"}),
        ("UpdateProject", "project", {"Id": "{id}", "Description": "mine now"}),
        ("DeleteProject", "project", {"Id": "{id}"}),
        ("GetWorkflowInstance", "instance", {"Id": "{id}"}),
        ("StartWorkflowInstances", "instance", {"Ids": ["{id}"]}),
        ("StopWorkflowInstances", "instance", {"Ids": ["{id}"]}),
        ("GetTaskInstance", "task_instance", {"Id": "{id}"}),
        ("GetTaskInstanceLog", "task_instance", {"Id": "{id}"}),
        ("ListUpstreamTaskInstances", "task_instance", {"Id": "{id}"}),
        ("ListDownstreamTaskInstances", "task_instance", {"Id": "{id}"}),
        ("ListTaskInstanceOperationLogs", "task_instance", {"Id": "{id}"}),
        (
            "RemoveTaskInstanceDependencies",
            "task_instance",
            {"Id": "{id}", "UpstreamTaskInstanceIds": ["{id}"]},
        ),
        ("GetWorkflow", "workflow", {"Id": "{id}"}),
        ("GetWorkflowDefinition", "definition", {"Id": "{id}"}),
        ("DeleteWorkflowDefinition", "definition", {"Id": "{id}"}),
        # The outsider named its own workspace, where it may not develop: told so, either way.
        (
            "UpdateWorkflowDefinition",
            "definition",
            {"Id": "{id}", "ProjectId": ours.id, "Spec": manual_flow()},
        ),
        ("TriggerSchedulerTaskInstance", "task", {"TaskId": "{id}", "TriggerTime": NOW}),
        ("GetCreateWorkflowInstancesResult", "operation", {"OperationId": "{id}"}),
        ("GetRerunWorkflowInstancesResult", "operation", {"OperationId": "{id}"}),
        # RerunWorkflowInstances' workspace is its ProjectId: refused in b whatever the Ids;
        # in its own workspace, an Id of b matches nothing, as a missing one does.
        ("RerunWorkflowInstances", "instance", {**rerun, "ProjectId": theirs.id, "WorkflowId": 1}),
        (
            "RerunWorkflowInstances",
            "instance",
            {**rerun, "ProjectId": ours.id, "WorkflowId": ours.workflow},
        ),
        # A batch with an id of its own workspace first.
        ("SuspendTaskInstances", "task_instance", {"Ids": [ours.task_instances[0], "{id}"]}),
    ]
    for action in ("Suspend", "Stop", "Rerun", "SetSuccess", "Resume"):
        cases.append((f"{action}TaskInstances", "task_instance", {"Ids": ["{id}"]}))
    # Alert rules: a rule by its id, and the tasks or workspaces a new rule would watch.
    cases += [
        ("GetAlertRule", "alert_rule", {"Id": "{id}"}),
        ("UpdateAlertRule", "alert_rule", {"Id": "{id}", "Name": "mine now"}),
        ("DeleteAlertRule", "alert_rule", {"Id": "{id}"}),
    ]
    for kind, target in (("task", "Task"), ("project", "Project")):
        condition = {"Type": "Error", "Target": {"Type": target, "Ids": ["{id}"]}}
        cases.append(
            (
                "CreateAlertRule",
                kind,
                {"Name": "x", "TriggerCondition": condition, "Notification": NOTIFY},
            )
        )
    return cases


def _ids_of(s: Space) -> dict[str, Any]:
    return {
        "project": s.id,
        "instance": s.instance,
        "task_instance": s.task_instances[-1],
        "workflow": s.workflow,
        "definition": s.definition,
        "task": s.tasks[0],
        "operation": s.operation,
        "alert_rule": s.alert_rule,
    }


def _with(params: dict[str, Any], value: Any) -> dict[str, Any]:
    def put_in(v: Any) -> Any:
        if v == "{id}":
            return value
        if isinstance(v, list):
            return [put_in(x) for x in v]
        if isinstance(v, dict):
            return {k: put_in(x) for k, x in v.items()}
        return v

    return {k: put_in(v) for k, v in params.items()}


def _answer(w: World, key: Key, action: str, params: dict[str, Any], value: Any) -> Any:
    """What the caller can tell from the answer: status and body, without the RequestId,
    with the id it gave written `<id>`, and an operation's outcome instead of its id."""
    status, body = call(w.live, key, action, _with(params, value))
    body.pop("RequestId")
    if "Message" in body:
        # The id in the one place a denial names it ("the task instance 12 does not exist").
        given = re.escape(str(value))
        body["Message"] = re.sub(rf" {given} (?=does not exist)", " <id> ", body["Message"])
    if "OperationId" in body:
        operation = {"OperationId": body["OperationId"]}
        result = call(w.live, None, "GetRerunWorkflowInstancesResult", operation)[1]
        body["OperationId"] = result["Result"]
    return status, body


def test_an_id_of_another_workspace_is_answered_as_an_id_that_does_not_exist(
    world: World,
) -> None:
    w = world
    theirs = _ids_of(w.theirs)
    missing = {k: MISSING for k in theirs} | {
        "definition": str(MISSING),
        "operation": MISSING_OPERATION,
    }
    cases = _cases(w)
    with_ids = {a for a, r in RULES.items() if r.where not in (Where.PROJECT_ID, Where.TENANT)}
    assert with_ids <= {action for action, _, _ in cases}  # every action that names ids
    for action, kind, params in cases:
        existing = _answer(w, w.outsider, action, params, theirs[kind])
        absent = _answer(w, w.outsider, action, params, missing[kind])
        assert existing == absent, (action, params)
        status, body = existing
        if params.get("ProjectId") == w.ours.id and action == "RerunWorkflowInstances":
            assert status == 200
            assert body["OperationId"]["Status"] == "Failure"
            continue
        assert (status, body["Code"]) == (403, "Forbidden.RAM"), (action, body)
        assert body["AccessDeniedDetail"]["AuthAction"] == f"dataworks:{action}"
        assert body["AccessDeniedDetail"]["AuthPrincipalDisplayName"] == "outsider"
        if params.get("ProjectId") != w.theirs.id:  # b's number is the caller's to see
            assert f"workspace {w.theirs.id}" not in body["Message"], (action, body)
    # Nothing of b changed, and the refusals are recorded against b where b's ids were named.
    assert suspended_or_stopped(w.live.store, w.theirs.id) == []
    with w.live.store.read() as tx:
        assert tx.projects.get(w.theirs.id).description == ""
        entries = tx.audit.entries(user="outsider", limit=1000)
    refused = [e for e in entries if e.result == "Forbidden.RAM"]
    assert {e.project_id for e in refused} == {w.theirs.id, w.ours.id, None}
    assert [e.project_id for e in entries if e.result == "OK"] == [w.ours.id, w.ours.id]


def test_a_member_is_answered_about_its_own_workspace(world: World) -> None:
    """In its own workspace the outsider acts, and is told why when it may not; a missing id
    is refused as an id of another workspace is (not 404: that would tell them apart)."""
    w = world
    status, body = call(w.live, w.outsider, "GetTaskInstance", {"Id": w.ours.task_instances[0]})
    assert status == 200 and body["TaskInstance"]["Id"] == w.ours.task_instances[0]
    status, body = call(w.live, w.outsider, "UpdateProject", {"Id": w.ours.id, "Description": "x"})
    assert (status, body["Code"]) == (403, "Forbidden.RAM")
    assert "the policies of 'outsider' do not allow dataworks:UpdateProject" in body["Message"]
    status, body = call(w.live, w.outsider, "GetWorkflowInstance", {"Id": MISSING})
    assert (status, body["Code"]) == (403, "Forbidden.RAM")
    assert body["Message"] == (
        f"You are not authorized to do this action: the workflow instance {MISSING} does "
        "not exist, or is in a workspace where 'outsider' is not a member."
    )
    assert body["AccessDeniedDetail"]["NoPermissionType"] == "ImplicitDeny"
    assert body["AccessDeniedDetail"]["PolicyType"] == "WorkspaceRole"


@pytest.mark.parametrize("who", ["tenant_admin", "tenant_key"])
def test_a_tenant_administrator_gets_the_handlers_not_found_answers(world: World, who: str) -> None:
    w = world
    key = w.admin if who == "tenant_admin" else None
    for action, params, status, code in (
        ("GetProject", {"Id": MISSING}, 404, "Invalid.Tenant.ProjectNotExist"),
        ("GetWorkflowInstance", {"Id": MISSING}, 404, "Invalid.WorkflowInstance.NotExist"),
        ("GetTaskInstance", {"Id": MISSING}, 404, "Invalid.TaskInstance.NotExist"),
        ("GetWorkflow", {"Id": MISSING}, 404, "Invalid.Workflow.NotExist"),
        ("GetWorkflowDefinition", {"Id": MISSING}, 404, "Invalid.WorkflowDefinition.NotExist"),
        (
            "GetCreateWorkflowInstancesResult",
            {"OperationId": MISSING_OPERATION},
            404,
            "Invalid.Operation.NotExist",
        ),
        (
            "TriggerSchedulerTaskInstance",
            {"TaskId": MISSING, "TriggerTime": NOW},
            404,
            "Invalid.TaskInstance.NotExist",
        ),
    ):
        got, body = call(w.live, key, action, params)
        assert (got, body["Code"]) == (status, code), (action, body)
    got, body = call(w.live, key, "SuspendTaskInstances", {"Ids": [MISSING]})
    assert got == 200
    assert body["SuccessInfo"][str(MISSING)]["Success"] is False
    # And any workspace's ids, without being a member.
    got, body = call(w.live, key, "GetTaskInstance", {"Id": w.theirs.task_instances[0]})
    assert got == 200


# The audit record names the workspace actually touched


@pytest.mark.parametrize("done", [True, False])
def test_the_audit_names_the_workspace_of_an_id_created_before_the_handler_acted(
    world: World, done: bool
) -> None:
    """A tenant administrator may name an id that does not exist yet; when it is created in
    workspace b before the handler acts on it, the audit record names b (and no workspace
    when the handler did not act on it)."""
    w = world
    store = w.live.store
    calls = Calls(store, CLOCK, TZ)
    # An id the database has not reached yet.
    late = instance(w.theirs.id, id=7_000_000_000_000 + int(done), workflow_id=w.theirs.workflow)

    def handler(ctx: Context, p: Params) -> dict[str, Any]:
        put(store, [late])  # created between the authorisation and the handler's work
        return {"SuccessInfo": {str(late.id): {"Success": done, "Message": "OK"}}}

    request_id = f"race-{done}"
    calls.run(
        handler,
        "StopWorkflowInstances",
        {"Ids": json.dumps([late.id])},
        Who(w.admin.id),
        "127.0.0.1",
        False,
        request_id,
        CLOCK.now_ms(),
    )
    with store.read() as tx:
        (entry,) = [e for e in tx.audit.entries(user="tenant_admin") if e.request_id == request_id]
    assert entry.project_id == (w.theirs.id if done else None)
