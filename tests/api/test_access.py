"""Access control through the official SDK over real HTTP (both databases): users with
policies and workspace roles, a matrix of users x actions x workspaces, the workspace of
every id a batch touches, Forbidden.RAM with AccessDeniedDetail, members and roles actions,
listing that does not leak, and the audit log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models as M
from alibabacloud_dataworks_public20240518.client import Client as SdkClient

from dwsched.clock import SystemClock
from dwsched.domain.access import ROLES, Kind
from dwsched.runtime.keys import create_key
from tests.api.sdk_helpers import acs3, sdk_error
from tests.engine.test_engine import flow, node
from tests.support.factories import instance, project, put
from tests.support.server import LiveServer, running_server

NOW = SystemClock().now_ms()


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    with running_server(db_url) as server:
        yield server


@dataclass
class World:
    live: LiveServer
    ws: dict[str, int]  # workspace name -> id
    users: dict[str, SdkClient]
    user_ids: dict[str, int]
    instances: dict[str, int]  # workspace name -> a workflow instance id there
    tasks: dict[str, int]  # workspace name -> a deployed workflow id there
    keys: dict[str, tuple[str, str]]  # user -> (AccessKeyId, secret)


KEYS: dict[str, tuple[str, str]] = {}


def user_client(live: LiveServer, name: str, *policies: str) -> tuple[SdkClient, int]:
    store = live.store
    with store.write() as tx:
        user = tx.users.create(name, name, NOW)
    for policy in policies:
        with store.write() as tx:
            tx.policies.attach(policy, "User", name, attach=True)
    key = create_key(store, f"{name}-key", NOW)
    with store.write() as tx:
        tx.users.set_key_user(key.id, name)
    KEYS[name] = (key.id, key.secret)
    return live.sdk(key_id=key.id, secret=key.secret), user.id


def make_world(live: LiveServer) -> World:
    store = live.store
    ws = {"a": project(store).id, "b": project(store).id}
    a1, b1 = instance(ws["a"]), instance(ws["b"])
    put(store, [a1, instance(ws["a"]), b1])
    root = live.sdk()
    # A deployed workflow per workspace.
    tasks = {}
    for name, pid in ws.items():
        spec = flow([node("x", "VIRTUAL")])
        job = root.import_workflow_definition(
            M.ImportWorkflowDefinitionRequest(project_id=pid, spec=json.dumps(spec))
        ).body.async_job
        wid = root.get_workflow_definition(
            M.GetWorkflowDefinitionRequest(id=job.response)
        ).body.workflow_definition.workflow_id
        tasks[name] = wid
    clients, ids = {}, {}
    for name, policies in {
        "admin": ("AdministratorAccess",),
        "reader": ("ReadOnlyAccess",),
        "operator": ("WorkspaceOperatorAccess",),
        "nobody": (),
    }.items():
        clients[name], ids[name] = user_client(live, name, *policies)
    # reader: visitor in a; operator: O&M in a only.
    with store.write() as tx:
        tx.members.add(ws["a"], ids["reader"], ["role_project_guest"], NOW)
        tx.members.add(ws["a"], ids["operator"], ["role_project_pe"], NOW)
        tx.members.add(ws["a"], ids["nobody"], ["role_project_admin"], NOW)
    return World(live, ws, clients, ids, {"a": a1.id, "b": b1.id}, tasks, dict(KEYS))


def denied(call: Callable[[], Any]) -> dict[str, Any]:
    error = sdk_error(call)
    assert (error.code, error.status_code) == ("Forbidden.RAM", 403), error
    detail = error.access_denied_detail
    assert detail is not None
    return dict(detail)


def test_every_user_is_allowed_exactly_what_its_policies_and_roles_permit(
    live: LiveServer,
) -> None:
    w = make_world(live)
    day = 1_743_350_400_000

    def list_in(ws: str) -> Callable[[SdkClient], Any]:
        return lambda c: c.list_workflow_instances(
            M.ListWorkflowInstancesRequest(project_id=w.ws[ws], biz_date=day)
        )

    def get_in(ws: str) -> Callable[[SdkClient], Any]:
        return lambda c: c.get_workflow_instance(M.GetWorkflowInstanceRequest(id=w.instances[ws]))

    def stop_in(ws: str) -> Callable[[SdkClient], Any]:
        return lambda c: c.stop_workflow_instances(
            M.StopWorkflowInstancesRequest(ids=[w.instances[ws]])
        )

    def get_workflow_in(ws: str) -> Callable[[SdkClient], Any]:
        return lambda c: c.get_workflow(M.GetWorkflowRequest(id=w.tasks[ws]))

    def create_definition_in(ws: str) -> Callable[[SdkClient], Any]:
        spec = json.dumps(flow([node("y", "VIRTUAL")]))
        return lambda c: c.create_workflow_definition(
            M.CreateWorkflowDefinitionRequest(project_id=w.ws[ws], spec=spec)
        )

    actions = {
        "list a": list_in("a"),
        "list b": list_in("b"),
        "get a": get_in("a"),
        "get b": get_in("b"),
        "workflow a": get_workflow_in("a"),
        "stop a": stop_in("a"),
        "stop b": stop_in("b"),
        "define a": create_definition_in("a"),
        "define b": create_definition_in("b"),
    }
    # user -> the actions it may do (the rest are Forbidden.RAM)
    allowed = {
        "admin": set(actions),  # tenant administrator: no membership needed
        "reader": {"list a", "get a", "workflow a"},  # ReadOnlyAccess, visitor in a
        "operator": {"list a", "get a", "workflow a", "stop a"},  # operator policy, O&M in a
        "nobody": set(),  # workspace admin in a, but no policy at all
    }
    for user, client in w.users.items():
        for name, call in actions.items():
            if name in allowed[user]:
                call(client)  # no error
            else:
                detail = denied(lambda call=call, client=client: call(client))
                assert detail["AuthPrincipalDisplayName"] == user, (user, name)
                assert detail["AuthAction"].startswith("dataworks:"), (user, name)
                assert detail["NoPermissionType"] in ("ImplicitDeny", "ExplicitDeny")


def test_a_batch_is_checked_against_the_workspace_of_every_id(live: LiveServer) -> None:
    w = make_world(live)
    operator = w.users["operator"]
    detail = denied(
        lambda: operator.stop_workflow_instances(
            M.StopWorkflowInstancesRequest(ids=[w.instances["a"], w.instances["b"]])
        )
    )
    assert detail["AuthAction"] == "dataworks:StopWorkflowInstances"
    assert detail["PolicyType"] == "WorkspaceRole"
    # Nothing happened to the allowed id either.
    got = w.live.sdk().get_workflow_instance(M.GetWorkflowInstanceRequest(id=w.instances["a"]))
    assert got.body.workflow_instance.status == "Success"
    # Ids in the flat v1 form are found too.
    error = sdk_error(
        lambda: w.live.sdk(
            "v2", key_id=w.keys["operator"][0], secret=w.keys["operator"][1]
        ).stop_workflow_instances(M.StopWorkflowInstancesRequest(ids=[w.instances["b"]]))
    )
    assert error.code == "Forbidden.RAM"


def test_explicit_deny_wins_and_conditions_apply(live: LiveServer) -> None:
    w = make_world(live)
    store = live.store
    deny_b = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "dataworks:List*",
                "Resource": f"acs:dataworks:*:*:workspace/{w.ws['b']}",
            }
        ],
    }
    with store.write() as tx:
        tx.policies.create("DenyListB", json.dumps(deny_b), "", NOW)
        tx.policies.attach("DenyListB", "User", "admin", attach=True)
    admin = w.users["admin"]

    time.sleep(2.1)  # authorisation facts are cached for 2 s
    detail = denied(
        lambda: admin.list_workflow_instances(
            M.ListWorkflowInstancesRequest(project_id=w.ws["b"], biz_date=1_743_350_400_000)
        )
    )
    assert detail["NoPermissionType"] == "ExplicitDeny"
    admin.list_workflow_instances(
        M.ListWorkflowInstancesRequest(project_id=w.ws["a"], biz_date=1_743_350_400_000)
    )
    # A condition on the source address: only from 10.0.0.0/8 (tests come from 127.0.0.1).
    only_lan = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "dataworks:*",
                "Resource": "*",
                "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
            }
        ],
    }
    client, user_id = user_client(live, "lan", *[])
    with store.write() as tx:
        tx.policies.create("OnlyLan", json.dumps(only_lan), "", NOW)
        tx.policies.attach("OnlyLan", "User", "lan", attach=True)
        tx.members.add(w.ws["a"], user_id, ["role_project_admin"], NOW)
    denied(
        lambda: client.list_workflow_instances(
            M.ListWorkflowInstancesRequest(project_id=w.ws["a"], biz_date=1_743_350_400_000)
        )
    )


def test_listing_workspaces_shows_only_readable_ones(live: LiveServer) -> None:
    w = make_world(live)
    listed = w.users["reader"].list_projects(M.ListProjectsRequest(page_size=100))
    ids = [p.id for p in listed.body.paging_info.projects]
    assert ids == [w.ws["a"]] and listed.body.paging_info.total_count == 1
    everything = w.users["admin"].list_projects(M.ListProjectsRequest(page_size=100))
    assert {w.ws["a"], w.ws["b"]} <= {p.id for p in everything.body.paging_info.projects}


def test_members_and_roles_actions(live: LiveServer) -> None:
    w = make_world(live)
    admin = w.users["admin"]
    pid = w.ws["b"]
    reader = str(w.user_ids["reader"])
    admin.create_project_member(
        M.CreateProjectMemberRequest(
            project_id=pid, user_id=reader, role_codes=["role_project_guest"]
        )
    )
    got = admin.get_project_member(M.GetProjectMemberRequest(project_id=pid, user_id=reader))
    member = got.body.project_member
    assert (member.user_id, member.user_name, [r.code for r in member.roles]) == (
        reader,
        "reader",
        ["role_project_guest"],
    )
    # Now the reader may read workspace b.

    time.sleep(2.1)
    w.users["reader"].get_workflow_instance(M.GetWorkflowInstanceRequest(id=w.instances["b"]))
    admin.grant_member_project_roles(
        M.GrantMemberProjectRolesRequest(
            project_id=pid, user_id=reader, role_codes=["role_project_pe"]
        )
    )
    listed = admin.list_project_members(
        M.ListProjectMembersRequest(project_id=pid, role_codes=["role_project_pe"])
    ).body.paging_info
    assert [m.user_id for m in listed.project_members] == [reader]
    admin.revoke_member_project_roles(
        M.RevokeMemberProjectRolesRequest(
            project_id=pid, user_id=reader, role_codes=["role_project_pe"]
        )
    )
    roles = admin.list_project_roles(M.ListProjectRolesRequest(project_id=pid, page_size=100))
    codes = {r.code for r in roles.body.paging_info.project_roles}
    assert {
        "role_project_admin",
        "role_project_dev",
        "role_project_pe",
        "role_project_guest",
    } <= codes
    role = admin.get_project_role(M.GetProjectRoleRequest(project_id=pid, code="role_project_pe"))
    assert role.body.project_role.name == "O&M Engineer"
    admin.delete_project_member(M.DeleteProjectMemberRequest(project_id=pid, user_id=reader))
    missing = sdk_error(
        lambda: admin.get_project_member(M.GetProjectMemberRequest(project_id=pid, user_id=reader))
    )
    assert missing.code == "Invalid.ProjectMember.NotExist"
    # Bad inputs name the parameter.
    for call, param in (
        (
            lambda: admin.create_project_member(
                M.CreateProjectMemberRequest(
                    project_id=pid, user_id=reader, role_codes=["role_boss"]
                )
            ),
            "RoleCodes",
        ),
        (
            lambda: admin.create_project_member(
                M.CreateProjectMemberRequest(
                    project_id=pid, user_id="abc", role_codes=["role_project_pe"]
                )
            ),
            "UserId",
        ),
        (
            lambda: admin.create_project_member(
                M.CreateProjectMemberRequest(
                    project_id=pid, user_id="999999", role_codes=["role_project_pe"]
                )
            ),
            "UserId",
        ),
    ):
        error = sdk_error(call)
        assert error.code == "InvalidParameter" and param in error.message, error
    # Only administrators of the workspace manage its members.
    denied(
        lambda: w.users["operator"].create_project_member(
            M.CreateProjectMemberRequest(
                project_id=w.ws["a"], user_id=reader, role_codes=["role_project_admin"]
            )
        )
    )


def test_mutating_actions_are_audited(live: LiveServer) -> None:
    w = make_world(live)
    operator = w.users["operator"]
    # `a` has finished: the batch is answered 200, its one id refused, and the audit says so.
    info = operator.stop_workflow_instances(
        M.StopWorkflowInstancesRequest(ids=[w.instances["a"]])
    ).body.success_info
    assert not info[str(w.instances["a"])].success
    sdk_error(
        lambda: operator.stop_workflow_instances(
            M.StopWorkflowInstancesRequest(ids=[w.instances["b"]])
        )
    )
    with live.store.read() as tx:
        entries = tx.audit.entries(user="operator")
    assert [(e.action, e.result) for e in entries] == [
        ("StopWorkflowInstances", "Forbidden.RAM"),
        ("StopWorkflowInstances", "Refused (1 of 1 ids)"),
    ]
    ok = entries[1]
    assert json.loads(ok.targets) == [f"Ids=[{w.instances['a']}]"]
    assert ok.source == "127.0.0.1" and ok.request_id and ok.access_key_id.startswith("LTAI")
    # Reads are not audited.
    operator.get_workflow_instance(M.GetWorkflowInstanceRequest(id=w.instances["a"]))
    with live.store.read() as tx:
        assert len(tx.audit.entries(user="operator")) == 2


def test_the_creator_of_a_workspace_owns_it(live: LiveServer) -> None:
    store = live.store
    creator, _ = user_client(live, "creator")
    with store.write() as tx:
        tx.policies.create(
            "CreateAndRead",
            json.dumps(
                {
                    "Version": "1",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "dataworks:CreateProject",
                                "dataworks:Get*",
                                "dataworks:List*",
                            ],
                            "Resource": "*",
                        }
                    ],
                }
            ),
            "",
            NOW,
        )
        tx.policies.attach("CreateAndRead", "User", "creator", attach=True)
    made = creator.create_project(M.CreateProjectRequest(name="mine_1")).body.id
    with store.read() as tx:
        creator_id = tx.users.get("creator").id
    member = creator.get_project_member(
        M.GetProjectMemberRequest(project_id=made, user_id=str(creator_id))
    ).body.project_member
    assert [r.code for r in member.roles] == ["role_project_owner"]
    time.sleep(2.1)
    listed = creator.list_projects(M.ListProjectsRequest()).body.paging_info.projects
    assert [p.id for p in listed] == [made]


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_workspace_role_permits_its_kinds_of_action_in_its_workspace_only(
    live: LiveServer, role: str
) -> None:
    """users x roles x actions x workspaces: a user whose policy allows every action, member
    of workspace a with one role, gets exactly what the role's row of docs/access.md says."""
    store = live.store
    a, b = project(store).id, project(store).id
    made = {pid: instance(pid) for pid in (a, b)}
    put(store, list(made.values()))
    everything = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    with store.write() as tx:
        if not tx.policies.exists("Everything"):
            tx.policies.create("Everything", json.dumps(everything), "", NOW)
    client, user_id = user_client(live, f"u_{role}", "Everything")
    with store.write() as tx:
        tx.members.add(a, user_id, [role], NOW)
    spec = json.dumps(flow([node("y", "VIRTUAL")]))
    calls: dict[Kind, Callable[[int], Any]] = {
        Kind.READ: lambda pid: client.get_workflow_instance(
            M.GetWorkflowInstanceRequest(id=made[pid].id)
        ),
        Kind.OPERATE: lambda pid: client.stop_workflow_instances(
            M.StopWorkflowInstancesRequest(ids=[made[pid].id])
        ),
        Kind.DEVELOP: lambda pid: client.create_workflow_definition(
            M.CreateWorkflowDefinitionRequest(project_id=pid, spec=spec)
        ),
        Kind.ADMINISTER: lambda pid: client.update_project(
            M.UpdateProjectRequest(id=pid, description=f"by {role}")
        ),
    }
    for kind, call in calls.items():
        if kind in ROLES[role].kinds:
            call(a)
        else:
            assert denied(lambda call=call: call(a))["PolicyType"] == "WorkspaceRole"
        assert denied(lambda call=call: call(b))["PolicyType"] == "WorkspaceRole"


def test_ids_in_any_form_the_handler_reads_are_checked(live: LiveServer) -> None:
    """Found by review: ids given as JSON strings named no workspace and skipped the check."""
    w = make_world(live)
    operator = w.users["operator"]
    for ids in ([w.instances["a"], str(w.instances["b"])], [str(w.instances["b"])]):
        error = sdk_error(
            lambda ids=ids: operator.stop_workflow_instances(
                M.StopWorkflowInstancesRequest(ids=ids)  # type: ignore[arg-type]
            )
        )
        assert error.code == "Forbidden.RAM", ids
        assert f"workspace {w.ws['b']}" not in error.message  # not revealed
    deep = "[" * 5000 + "]" * 5000
    root = w.live.sdk()
    response = acs3(w.live, "StopWorkflowInstances", form={"Ids": deep}).send()
    assert response.status_code == 400 and response.json()["Code"] == "InvalidParameter"
    for bad in ("²", "-1"):
        error = sdk_error(
            lambda bad=bad: root.create_project_member(
                M.CreateProjectMemberRequest(
                    project_id=w.ws["a"], user_id=bad, role_codes=["role_project_pe"]
                )
            )
        )
        assert (error.code, "UserId" in error.message) == ("InvalidParameter", True), bad
