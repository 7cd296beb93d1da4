"""`dwsched users|groups|policies|audit` (docs/access.md): the happy paths on both databases,
every bad input refused with one `Error: ...` line (exit code 1, no traceback, nothing
changed), the audit log of calls made through the official SDK against a running server, and
policies managed by the CLI taking effect on the API.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alibabacloud_dataworks_public20240518 import models as M
from alibabacloud_dataworks_public20240518.client import Client as SdkClient
from alibabacloud_tea_openapi.exceptions import ClientException
from click.testing import Result

from dwsched.clock import SystemClock
from dwsched.domain.policies import BUILTIN_DESCRIPTIONS, BUILTIN_DOCUMENTS
from dwsched.runtime.keys import create_key
from dwsched.store import Store
from tests.api.sdk_helpers import sdk_error
from tests.cli.helpers import clean_error, invoke, ok
from tests.engine.test_engine import flow, node
from tests.support.factories import instance, project, put
from tests.support.server import LiveServer, running_server

BUILTINS = ("AdministratorAccess", "ReadOnlyAccess", "WorkspaceOperatorAccess")
NAME_RULE = "must start with a letter"

LIST_ONLY = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "dataworks:List*", "Resource": "*"}],
}
NO_STOPS = {
    "Version": "1",
    "Statement": [{"Effect": "Deny", "Action": "dataworks:StopWorkflowInstances", "Resource": "*"}],
}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database, for checks that do not depend on the backend."""
    return f"sqlite:///{tmp_path / 'access.db'}"


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    """A server on `db_url`, the database the commands are given."""
    with running_server(db_url) as server:
        yield server


# Running the commands


def run(db: str, *args: str, input: str | None = None) -> Result:
    """`dwsched ARGS --db DB`, 250 columns wide so that table cells are not cut."""
    return invoke(*args, "--db", db, input=input, env={"COLUMNS": "250"})


def refused(result: Result, *needles: str) -> Result:
    """Refused as a DwschedError is: exit code 1, nothing on stdout, one `Error: ...` line."""
    clean_error(result, *needles)
    assert result.exit_code == 1, result.output
    assert result.stdout == "", result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return result


def rows(text: str) -> list[list[str]]:
    """A rich table's body rows, cells stripped; a wrapped row's lines are joined."""
    found: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells[0] or not found:
            found.append(cells)
        else:
            found[-1] = [f"{a} {b}".strip() for a, b in zip(found[-1], cells, strict=True)]
    return found


def users(db: str) -> dict[str, list[str]]:
    """`users list`: name -> [UserId, Name, Display name, Policies]."""
    return {r[1]: r for r in rows(ok(run(db, "users", "list")).stdout)}


def groups(db: str) -> dict[str, str]:
    """`groups list`: group -> its users, as shown."""
    return {r[0]: r[1] for r in rows(ok(run(db, "groups", "list")).stdout)}


def policies(db: str) -> dict[str, list[str]]:
    """`policies list`: name -> [Policy, Type, Attached to, Description]."""
    return {r[0]: r for r in rows(ok(run(db, "policies", "list")).stdout)}


def state(db: str) -> tuple[str, str, str]:
    """Everything the list commands show, to compare before and after a refused command."""
    return (
        ok(run(db, "users", "list")).stdout,
        ok(run(db, "groups", "list")).stdout,
        ok(run(db, "policies", "list")).stdout,
    )


def create_user(db: str, name: str, *extra: str) -> int:
    out = ok(run(db, "users", "create", name, *extra)).stdout
    m = re.fullmatch(rf"created user {re.escape(name)} \(UserId (\d+)\)\n", out)
    assert m, out
    return int(m.group(1))


def give_key(db: str, user: str) -> tuple[str, str]:
    """A new AccessKey owned by `user` (its id and secret)."""
    with Store.open(db) as store:
        key = create_key(store, "ci", SystemClock().now_ms())
        with store.write() as tx:
            tx.users.set_key_user(key.id, user)
    return key.id, key.secret


# Users


def test_users_create_list_delete(db_url: str) -> None:
    db = db_url
    alice = create_user(db, "alice", "--display-name", "Alice Liddell")
    bob = create_user(db, "bob.smith@example-corp_1")
    assert bob != alice

    listed = users(db)
    assert set(listed) == {"alice", "bob.smith@example-corp_1"}
    assert listed["alice"] == [str(alice), "alice", "Alice Liddell", ""]
    assert listed["bob.smith@example-corp_1"][:3] == [
        str(bob),
        "bob.smith@example-corp_1",
        "bob.smith@example-corp_1",  # the display name defaults to the name
    ]

    # The policies column shows the policies attached to the user (not its groups').
    ok(run(db, "policies", "create", "ListOnly", "--document", "-", input=json.dumps(LIST_ONLY)))
    ok(run(db, "policies", "attach", "ReadOnlyAccess", "--user", "alice"))
    ok(run(db, "policies", "attach", "ListOnly", "--user", "alice"))
    ok(run(db, "groups", "create", "ops"))
    ok(run(db, "groups", "add", "ops", "alice"))
    ok(run(db, "policies", "attach", "WorkspaceOperatorAccess", "--group", "ops"))
    listed = users(db)
    assert listed["alice"][3] == "ListOnly, ReadOnlyAccess"
    assert listed["bob.smith@example-corp_1"][3] == ""

    # Deleting a user takes its attachments and group memberships with it.
    assert ok(run(db, "users", "delete", "alice")).stdout == "deleted user alice\n"
    assert set(users(db)) == {"bob.smith@example-corp_1"}
    assert groups(db) == {"ops": ""}
    shown = policies(db)
    assert shown["ListOnly"][2] == "" and shown["ReadOnlyAccess"][2] == ""
    assert shown["WorkspaceOperatorAccess"][2] == "group:ops"
    # The name is free again, under a new id.
    assert create_user(db, "alice") not in (alice, bob)


@pytest.mark.parametrize(
    "name",
    ["", "1alice", "has space", "a" * 65, "semi;colon", "_under", "ünïcode"],
    ids=["empty", "digit-first", "space", "65-chars", "semicolon", "underscore-first", "non-ascii"],
)
def test_users_create_refuses_bad_names(name: str, sqlite_url: str) -> None:
    before = state(sqlite_url)
    result = refused(run(sqlite_url, "users", "create", name), NAME_RULE, "64 characters")
    assert repr(name) in result.stderr  # the refused name is quoted
    assert state(sqlite_url) == before


def test_users_create_accepts_64_characters(sqlite_url: str) -> None:
    name = "a" * 64
    create_user(sqlite_url, name)
    assert name in users(sqlite_url)


def test_users_list_shows_whole_names_at_80_columns(sqlite_url: str) -> None:
    name = "a" * 64
    create_user(sqlite_url, name)
    listed = invoke("users", "list", "--db", sqlite_url, env={"COLUMNS": "80"})
    assert name in ok(listed).stdout


def test_users_bad_inputs_change_nothing(db_url: str) -> None:
    db = db_url
    create_user(db, "alice", "--display-name", "First")
    before = state(db)

    refused(run(db, "users", "create", "alice", "--display-name", "Second"), "'alice'", "exists")
    assert state(db) == before
    assert users(db)["alice"][2] == "First"

    refused(run(db, "users", "delete", "nobody"), "'nobody'", "does not exist")
    assert state(db) == before


def test_deleting_a_user_who_owns_a_key_names_the_way_out(db_url: str) -> None:
    db = db_url
    create_user(db, "carol")
    key_id, _ = give_key(db, "carol")
    before = state(db)

    refused(
        run(db, "users", "delete", "carol"),
        "'carol'",
        "AccessKey",
        "dwsched keys delete",
    )
    assert state(db) == before
    assert key_id in ok(run(db, "keys", "list")).stdout  # the key is kept too

    # The way out the message names works.
    ok(run(db, "keys", "delete", key_id))
    ok(run(db, "users", "delete", "carol"))
    assert "carol" not in users(db)


def test_deleting_a_user_who_owns_a_key_lets_the_keys_be_found(sqlite_url: str) -> None:
    create_user(sqlite_url, "carol")
    key_id, _ = give_key(sqlite_url, "carol")
    error = refused(run(sqlite_url, "users", "delete", "carol")).stderr
    listed = ok(run(sqlite_url, "keys", "list")).stdout
    row = next(line for line in listed.splitlines() if key_id in line)
    assert key_id in error or "carol" in row


def test_keys_create_user_gives_the_key_to_the_user(sqlite_url: str) -> None:
    create_user(sqlite_url, "dave")
    assert "keys create --user" in ok(invoke("users", "--help")).stdout
    made = ok(run(sqlite_url, "keys", "create", "--user", "dave", "--json")).stdout
    key_id = json.loads(made)["AccessKeyId"]
    with Store.open(sqlite_url) as store, store.read() as tx:
        assert tx.users.key_users()[key_id] == "dave"


# Groups


def test_groups_create_add_list(db_url: str) -> None:
    db = db_url
    for name in ("alice", "bob", "carol"):
        create_user(db, name)
    assert ok(run(db, "groups", "create", "ops")).stdout == "created group ops\n"
    ok(run(db, "groups", "create", "readers"))
    assert groups(db) == {"ops": "", "readers": ""}

    assert ok(run(db, "groups", "add", "ops", "carol")).stdout == "carol is in ops\n"
    ok(run(db, "groups", "add", "ops", "alice"))
    ok(run(db, "groups", "add", "readers", "bob"))
    ok(run(db, "groups", "add", "ops", "alice"))  # again: no second membership
    assert groups(db) == {"ops": "alice, carol", "readers": "bob"}


def test_groups_bad_inputs_change_nothing(db_url: str) -> None:
    db = db_url
    create_user(db, "alice")
    ok(run(db, "groups", "create", "ops"))
    before = state(db)

    refused(run(db, "groups", "create", "ops"), "'ops'", "exists")
    refused(run(db, "groups", "add", "nogroup", "alice"), "'nogroup'", "does not exist")
    refused(run(db, "groups", "add", "ops", "nobody"), "'nobody'", "does not exist")
    for bad in ("", "9ops", "two words", "g" * 65):
        refused(run(db, "groups", "create", bad), NAME_RULE)
    assert state(db) == before


# Policies


def test_policies_create_list_show_attach_detach_delete(db_url: str, tmp_path: Path) -> None:
    db = db_url
    create_user(db, "alice")
    ok(run(db, "groups", "create", "ops"))

    # From a file, and from standard input.
    document = tmp_path / "list-only.json"
    document.write_text(json.dumps(LIST_ONLY, indent=2), encoding="utf-8")
    created = run(
        db, "policies", "create", "ListOnly", "--document", str(document), "--description", "L"
    )
    assert ok(created).stdout == "created policy ListOnly\n"
    deny_text = json.dumps(NO_STOPS)
    ok(run(db, "policies", "create", "NoStops", "--document", "-", input=deny_text))

    # list: the built-ins, then the custom ones, with their descriptions.
    listed = policies(db)
    assert list(listed) == [*BUILTINS, "ListOnly", "NoStops"]
    for name in BUILTINS:
        assert listed[name][1:] == ["System", "", BUILTIN_DESCRIPTIONS[name]]
    assert listed["ListOnly"][1:] == ["Custom", "", "L"]
    assert listed["NoStops"][1:] == ["Custom", "", ""]

    # show: a built-in's document, and a custom one's exactly as given.
    for name in BUILTINS:
        shown = ok(run(db, "policies", "show", name)).stdout
        assert json.loads(shown) == json.loads(BUILTIN_DOCUMENTS[name])
    assert ok(run(db, "policies", "show", "ListOnly")).stdout.rstrip("\n") == (
        document.read_text(encoding="utf-8")
    )
    assert json.loads(ok(run(db, "policies", "show", "NoStops")).stdout) == NO_STOPS

    # attach to a user and to a group, custom and built-in.
    assert ok(run(db, "policies", "attach", "ListOnly", "--user", "alice")).stdout == (
        "attached ListOnly to alice\n"
    )
    assert ok(run(db, "policies", "attach", "NoStops", "--group", "ops")).stdout == (
        "attached NoStops to ops\n"
    )
    ok(run(db, "policies", "attach", "ReadOnlyAccess", "--user", "alice"))
    ok(run(db, "policies", "attach", "ReadOnlyAccess", "--group", "ops"))
    listed = policies(db)
    assert listed["ListOnly"][2] == "user:alice"
    assert listed["NoStops"][2] == "group:ops"
    assert set(listed["ReadOnlyAccess"][2].split(", ")) == {"user:alice", "group:ops"}
    assert listed["AdministratorAccess"][2] == ""
    assert users(db)["alice"][3] == "ListOnly, ReadOnlyAccess"

    # detach from each.
    assert ok(run(db, "policies", "detach", "ListOnly", "--user", "alice")).stdout == (
        "detached ListOnly from alice\n"
    )
    assert ok(run(db, "policies", "detach", "NoStops", "--group", "ops")).stdout == (
        "detached NoStops from ops\n"
    )
    ok(run(db, "policies", "detach", "ReadOnlyAccess", "--group", "ops"))
    listed = policies(db)
    assert listed["ListOnly"][2] == "" and listed["NoStops"][2] == ""
    assert listed["ReadOnlyAccess"][2] == "user:alice"
    assert users(db)["alice"][3] == "ReadOnlyAccess"

    # delete, once detached.
    assert ok(run(db, "policies", "delete", "ListOnly")).stdout == "deleted policy ListOnly\n"
    assert list(policies(db)) == [*BUILTINS, "NoStops"]
    refused(run(db, "policies", "show", "ListOnly"), "'ListOnly'", "does not exist")
    # Its name may be used again.
    ok(run(db, "policies", "create", "ListOnly", "--document", "-", input=deny_text))
    assert json.loads(ok(run(db, "policies", "show", "ListOnly")).stdout) == NO_STOPS


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}
BAD_DOCUMENTS = {
    "invalid-json": ('{"Version": "1", "Statement": [', ["--document", "not valid JSON"]),
    "trailing-comma": ('{"Version": "1",}', ["--document", "not valid JSON"]),
    "wrong-version": (
        json.dumps({"Version": "2", "Statement": [ALLOW_ALL]}),
        ["--document", "$.Version", "'2'"],
    ),
    "no-statement": (
        json.dumps({"Version": "1", "Statement": []}),
        ["--document", "$.Statement"],
    ),
    "misspelt-field": (
        json.dumps({"Version": "1", "Statment": [ALLOW_ALL]}),
        ["--document", "Statment"],
    ),
    "unknown-effect": (
        json.dumps({"Version": "1", "Statement": [{**ALLOW_ALL, "Effect": "Permit"}]}),
        ["--document", "$.Statement[0].Effect", "'Permit'"],
    ),
    "bad-action-in-second-statement": (
        json.dumps({"Version": "1", "Statement": [ALLOW_ALL, {**ALLOW_ALL, "Action": ["ecs:*"]}]}),
        ["--document", "$.Statement[1].Action[0]", "'ecs:*'"],
    ),
    "unknown-condition-operator": (
        json.dumps(
            {
                "Version": "1",
                "Statement": [
                    {**ALLOW_ALL, "Condition": {"IpAddr": {"acs:SourceIp": "10.0.0.0/8"}}}
                ],
            }
        ),
        ["--document", "$.Statement[0].Condition.IpAddr", "unknown condition operator"],
    ),
    "unknown-condition-key": (
        json.dumps(
            {
                "Version": "1",
                "Statement": [
                    {**ALLOW_ALL, "Condition": {"IpAddress": {"acs:SrcIp": "10.0.0.0/8"}}}
                ],
            }
        ),
        ["--document", '$.Statement[0].Condition.IpAddress["acs:SrcIp"]'],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
def test_policies_create_refuses_bad_documents(case: str, sqlite_url: str, tmp_path: Path) -> None:
    text, needles = BAD_DOCUMENTS[case]
    before = state(sqlite_url)
    refused(run(sqlite_url, "policies", "create", "Bad", "--document", "-", input=text), *needles)
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    refused(run(sqlite_url, "policies", "create", "Bad", "--document", str(path)), *needles)
    assert state(sqlite_url) == before


def test_policies_bad_inputs_change_nothing(db_url: str) -> None:
    db = db_url
    create_user(db, "alice")
    ok(run(db, "groups", "create", "ops"))
    good = json.dumps(LIST_ONLY)
    ok(run(db, "policies", "create", "ListOnly", "--document", "-", input=good))
    ok(run(db, "policies", "create", "Spare", "--document", "-", input=good))
    ok(run(db, "policies", "attach", "ListOnly", "--user", "alice"))
    before = state(db)

    # create
    refused(
        run(db, "policies", "create", "ListOnly", "--document", "-", input=good),
        "'ListOnly'",
        "exists",
    )
    for builtin in BUILTINS:
        refused(
            run(db, "policies", "create", builtin, "--document", "-", input=good),
            repr(builtin),
            "built-in",
        )
    for bad in ("", "1Policy", "has space", "under_score", "P" * 129):
        refused(run(db, "policies", "create", bad, "--document", "-", input=good), NAME_RULE)
    # attach / detach
    for verb in ("attach", "detach"):
        refused(run(db, "policies", verb, "NoSuchPolicy", "--user", "alice"), "'NoSuchPolicy'")
        refused(run(db, "policies", verb, "ListOnly"), "--user", "--group")
        refused(
            run(db, "policies", verb, "ListOnly", "--user", "alice", "--group", "ops"),
            "--user",
            "--group",
        )
    refused(run(db, "policies", "attach", "ListOnly", "--user", "nobody"), "'nobody'")
    refused(run(db, "policies", "attach", "ReadOnlyAccess", "--user", "nobody"), "'nobody'")
    refused(run(db, "policies", "attach", "ListOnly", "--group", "nogroup"), "'nogroup'")
    refused(run(db, "policies", "detach", "Spare", "--user", "alice"), "'Spare'", "not attached")
    refused(run(db, "policies", "detach", "ListOnly", "--group", "ops"), "not attached")
    refused(run(db, "policies", "detach", "ReadOnlyAccess", "--user", "alice"), "not attached")
    refused(run(db, "policies", "detach", "ListOnly", "--user", "nobody"), "'nobody'")
    # show / delete
    refused(run(db, "policies", "show", "NoSuchPolicy"), "'NoSuchPolicy'", "does not exist")
    refused(run(db, "policies", "delete", "NoSuchPolicy"), "'NoSuchPolicy'", "does not exist")
    refused(run(db, "policies", "delete", "ListOnly"), "'ListOnly'", "attached", "detach")
    for builtin in BUILTINS:
        refused(run(db, "policies", "delete", builtin), repr(builtin), "built-in")
    assert state(db) == before


def test_deleting_an_attached_builtin_says_it_is_builtin(sqlite_url: str) -> None:
    create_user(sqlite_url, "alice")
    ok(run(sqlite_url, "policies", "attach", "ReadOnlyAccess", "--user", "alice"))
    refused(run(sqlite_url, "policies", "delete", "ReadOnlyAccess"), "built-in")


# Audit


def user_client(live: LiveServer, db: str, name: str) -> tuple[SdkClient, str]:
    """The SDK signing with a new key of `name`, and the key's id."""
    key_id, secret = give_key(db, name)
    return live.sdk(key_id=key_id, secret=secret), key_id


def define(client: SdkClient, project_id: int) -> str:
    """CreateWorkflowDefinition (mutating, names its ProjectId); its RequestId."""
    spec = json.dumps(flow([node("x", "VIRTUAL")]))
    request = M.CreateWorkflowDefinitionRequest(project_id=project_id, spec=spec)
    request_id = client.create_workflow_definition(request).body.request_id
    assert request_id
    return str(request_id)


def stop(client: SdkClient, *ids: int) -> str:
    request = M.StopWorkflowInstancesRequest(ids=list(ids))
    request_id = client.stop_workflow_instances(request).body.request_id
    assert request_id
    return str(request_id)


def forbidden(client: SdkClient, *ids: int) -> ClientException:
    """StopWorkflowInstances refused with Forbidden.RAM, as the SDK raises it."""
    error = sdk_error(lambda: stop(client, *ids))
    assert isinstance(error, ClientException), error
    assert (error.code, error.status_code) == ("Forbidden.RAM", 403), error
    assert error.access_denied_detail is not None
    assert error.access_denied_detail["AuthAction"] == "dataworks:StopWorkflowInstances"
    return error


def audit_json(db: str, *args: str) -> list[dict[str, object]]:
    out = ok(run(db, "audit", "--json", *args)).stdout
    return [json.loads(line) for line in out.splitlines()]


def audited_ids(db: str, *args: str) -> list[str]:
    return [str(e["RequestId"]) for e in audit_json(db, *args)]


def test_audit_shows_sdk_calls_newest_first_with_filters(live: LiveServer, db_url: str) -> None:
    db, store = db_url, live.store
    a, b = project(store), project(store)
    in_a, in_b = instance(a.id), instance(b.id)
    put(store, [in_a, in_b])
    op_id = create_user(db, "op")
    ok(run(db, "policies", "attach", "WorkspaceOperatorAccess", "--user", "op"))
    with store.write() as tx:
        tx.members.add(a.id, op_id, ["role_project_pe"], SystemClock().now_ms())
    op, op_key = user_client(live, db, "op")
    root = live.sdk()

    define_a = define(root, a.id)
    define_b = define(root, b.id)
    stop_a = stop(op, in_a.id)
    denied = forbidden(op, in_b.id)  # op is no member of b
    assert denied.request_id
    op.get_workflow_instance(M.GetWorkflowInstanceRequest(id=in_a.id))  # reads: not audited

    newest_first = [denied.request_id, stop_a, define_b, define_a]
    entries = audit_json(db)
    assert [e["RequestId"] for e in entries] == newest_first
    for entry in entries:
        assert {"User", "Action", "Result", "RequestId", "Source"} <= set(entry)
        assert entry["Source"] == "127.0.0.1"
    assert [(e["User"], e["AccessKeyId"], e["Action"], e["Result"]) for e in entries] == [
        ("op", op_key, "StopWorkflowInstances", "Forbidden.RAM"),
        ("op", op_key, "StopWorkflowInstances", "Refused (1 of 1 ids)"),
        (live.key_id, live.key_id, "CreateWorkflowDefinition", "OK"),  # a key without a user
        (live.key_id, live.key_id, "CreateWorkflowDefinition", "OK"),
    ]
    assert entries[1]["Targets"] == [f"Ids=[{in_a.id}]"]
    assert entries[0]["Targets"] == [f"Ids=[{in_b.id}]"]
    assert [e["ProjectId"] for e in entries[2:]] == [b.id, a.id]

    # The table: the same entries, in the same order.
    table = rows(ok(run(db, "audit")).stdout)
    assert [(r[1], r[2], r[4], r[6]) for r in table] == [
        (str(e["User"]), str(e["Action"]), str(e["Result"]), str(e["RequestId"])) for e in entries
    ]
    assert table[1][3] == f"Ids=[{in_a.id}]" and table[1][5] == "127.0.0.1"
    times = [datetime.fromtimestamp(int(str(e["Time"])) / 1000, UTC) for e in entries]
    assert [r[0] for r in table] == [t.strftime("%Y-%m-%d %H:%M:%S") for t in times]
    first_day = times[-1].strftime("%Y-%m-%d")

    # Filters.
    assert audited_ids(db, "--user", "op") == newest_first[:2]
    assert audited_ids(db, "--user", live.key_id) == newest_first[2:]
    assert audited_ids(db, "--user", "nobody") == []
    assert audited_ids(db, "--action", "CreateWorkflowDefinition") == [define_b, define_a]
    both = ("--action", "StopWorkflowInstances", "--action", "CreateWorkflowDefinition")
    assert audited_ids(db, *both) == newest_first
    assert audited_ids(db, "--action", "GetWorkflowInstance") == []
    in_project_a = audited_ids(db, "--project", str(a.id))
    assert define_a in in_project_a
    assert define_b not in in_project_a and denied.request_id not in in_project_a
    assert audited_ids(db, "--project", str(b.id))[-1] == define_b
    assert audited_ids(db, "--limit", "2") == newest_first[:2]
    assert audited_ids(db, "--limit", "1", "--user", live.key_id) == [define_b]
    assert audited_ids(db, "--since", first_day) == newest_first
    tomorrow = (times[0] + timedelta(days=1)).strftime("%Y-%m-%d")
    assert audited_ids(db, "--since", tomorrow) == []
    assert rows(ok(run(db, "audit", "--since", tomorrow)).stdout) == []

    # Bad filters.
    for bad in ("2025-02-30", "31.03.2025", "yesterday", "2025-3-1x"):
        refused(run(db, "audit", "--since", bad), "--since", "YYYY-MM-DD", repr(bad))
    for limit in ("0", "-1", "many"):
        clean_error(run(db, "audit", "--limit", limit), "--limit")
    clean_error(run(db, "audit", "--project", "abc"), "--project")


def test_audit_project_filter_finds_actions_on_ids_of_the_workspace(sqlite_url: str) -> None:
    with running_server(sqlite_url) as live:
        p = project(live.store)
        item = instance(p.id)
        put(live.store, [item])
        stopped = stop(live.sdk(), item.id)
        assert stopped in audited_ids(sqlite_url, "--project", str(p.id))


# Policies managed by the CLI take effect on the API


def test_policies_from_the_cli_take_effect_on_the_api(live: LiveServer, db_url: str) -> None:
    db, store = db_url, live.store
    p = project(store)
    first, second = instance(p.id), instance(p.id)
    put(store, [first, second])
    user_id = create_user(db, "viewer")
    ok(run(db, "policies", "attach", "ReadOnlyAccess", "--user", "viewer"))
    client, _ = user_client(live, db, "viewer")

    detail = forbidden(client, first.id).access_denied_detail
    assert detail is not None and detail["AuthPrincipalDisplayName"] == "viewer"
    assert detail["NoPermissionType"] == "ImplicitDeny"

    ok(run(db, "policies", "attach", "WorkspaceOperatorAccess", "--user", "viewer"))
    with store.write() as tx:
        tx.members.add(p.id, user_id, ["role_project_pe"], SystemClock().now_ms())
    time.sleep(2.1)  # the server caches authorisation facts for 2 s
    stop(client, first.id)

    # A custom Deny, created from stdin and attached to a group of the user, wins.
    ok(run(db, "policies", "create", "NoStops", "--document", "-", input=json.dumps(NO_STOPS)))
    ok(run(db, "groups", "create", "oncall"))
    ok(run(db, "groups", "add", "oncall", "viewer"))
    ok(run(db, "policies", "attach", "NoStops", "--group", "oncall"))
    time.sleep(2.1)
    detail = forbidden(client, second.id).access_denied_detail
    assert detail is not None and detail["NoPermissionType"] == "ExplicitDeny"


def test_users_contact_sets_checks_and_masks(db_url: str, tmp_path: Path) -> None:
    db = db_url
    create_user(db, "carol")
    key = ["--secret-key-file", str(tmp_path / "server.key")]
    hook = "https://open.feishu.cn/open-apis/bot/v2/hook/SECRET"
    done = ok(
        run(db, "users", "contact", "carol", *key, "--email", "c@example.com", "--webhook", hook)
    )
    assert done.stdout == (
        "carol: email c@example.com, webhook https://open.feishu.cn/open-apis/bot/v2/hook/****\n"
    )
    assert "SECRET" not in ok(run(db, "users", "contact", "carol", *key)).stdout
    refused(run(db, "users", "contact", "carol", *key, "--email", "not-an-address"), "--email")
    refused(run(db, "users", "contact", "carol", *key, "--webhook", "ftp://x/y"), "--webhook")
    cleared = ok(run(db, "users", "contact", "carol", *key, "--email", "", "--webhook", ""))
    assert cleared.stdout == "carol: email -, webhook -\n"
