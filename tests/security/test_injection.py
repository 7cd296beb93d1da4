"""SQL and LIKE injection through every text filter of the listing actions, over real HTTP
(both databases): each answer is exactly the literal matches, and the database is intact
(same tables, same row counts) after all of them.

Attack → test (a bare name is a test of this module):

- LIKE metacharacters in ListWorkflowInstances Name (`%`, `_`, `/` the escape, `\\`), random names
  with `%`/`_` against the reference
  → tests/api/test_list_property.py::test_random_queries_match_reference (NAME_LITERALS)
- SQL text (`'`, `"; DROP TABLE`, `' OR '1'='1`, comments) in Name
  → test_workflow_instance_name_filter_matches_literally
- the same through the v1 signature (parameters in the query)
  → test_workflow_instance_name_filter_matches_literally (v1 rows)
- SQL and LIKE text in Owner
  → test_owner_filter_matches_literally
- Tags keys and values with `%`, `_`, `:`, quotes, SQL
  → test_tag_filter_matches_literally
- SortBy holding SQL
  → test_sql_in_sort_by_is_invalid_parameter
- Filter JSON holding SQL (values, keys, operators)
  → test_sql_in_filter_is_invalid_parameter
- Type / EnvType holding SQL
  → test_sql_in_enumerations_is_invalid_parameter
- Filter shapes that are not the documented ones
  → tests/api/test_errors.py::test_invalid_list_parameters_are_invalid_parameter
- a NUL character in Name, Owner, Tags, SortBy
  → tests/api/test_errors.py::test_a_nul_character_is_not_an_internal_error
- `1; DROP TABLE projects` as an Id
  → tests/api/test_errors.py::test_invalid_ids_of_other_actions
- ListTaskInstances TaskName with LIKE and SQL text
  → test_task_name_filter_matches_literally
- ListTaskInstances TaskType, Owner, RuntimeResource, Status, SortBy, Filter holding SQL
  → test_task_instance_text_filters_do_not_inject
- ListWorkflowDefinitions and ListWorkflows Name with LIKE and SQL text
  → test_definition_and_workflow_name_filters_match_literally
- ListWorkflowDefinitions / ListWorkflows Owner, Type, SortBy holding SQL
  → test_definition_and_workflow_other_filters_do_not_inject
- the database after every attack: tables and row counts unchanged
  → test_the_database_is_intact
- shell and code injection through TaskParameters / WorkflowParameters
  → tests/security/test_parameters_are_data.py
    ::test_an_operators_task_parameters_arrive_verbatim_and_run_nothing
  → tests/security/test_parameters_are_data.py::test_workflow_parameters_of_every_kind_are_data
- a task reading the control plane (database, server key, environment)
  → tests/security/test_isolation.py::test_a_task_finds_nothing_of_the_control_plane
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from tests.api.sdk_helpers import acs3, assert_error, ok_json, v1
from tests.security.test_protocol_attacks import deploy_run
from tests.support.factories import SHANGHAI_DAY_MS, instance, project, put, tags
from tests.support.server import LiveServer

DROP_WI = "x'; DROP TABLE workflow_instances; --"
NAMES = [
    "p%q",
    "pxq",
    "p_q",
    "pyq",
    "a\\b",
    "a\\\\b",
    "ab",
    "a/b",
    "a//b",
    "a/%b",
    "a/_b",
    "o'brien",
    "obrien",
    'say "hi"',
    DROP_WI,
    'x"; DROP TABLE workflow_instances; --',
    "[ab]",
    "a*b",
    "a?b",
    "^a$",
    "%",
    "_",
    "\\",
    "/",
    "plain",
    "100% done",
    "1000 done",
]
NEEDLES = [
    "%",
    "_",
    "\\",
    "/",
    "'",
    '"',
    "p%q",
    "p_q",
    "a\\b",
    "a/b",
    "a/%b",
    "//",
    "/%",
    "/_",
    "%%",
    "__",
    "0%",
    "' OR '1'='1",
    "' OR 1=1 --",
    DROP_WI,
    "'; DROP TABLE workflow_instances; --",
    '"; DROP TABLE workflow_instances; --',
    "[ab]",
    "[a]",
    "*",
    "?",
    "^",
    "$",
    "\\%",
    "\\_",
    "%_%",
    "/*",
    "*/",
    ";",
    "--",
    "P%Q",
    "O'BRIEN",
]
OWNERS = ["o%", "oxx", "o_", "o'x", "' OR '1'='1", "plain"]
OWNER_NEEDLES = ["o%", "o_", "%", "_", "o'x", "' OR '1'='1", "' OR 1=1 --", "o", "O%"]
TAG_SETS = [
    ("k%:v_",),
    ("k_:v%",),
    ("kx:vy",),
    ("it's:o'k",),
    ('q":x',),
    ("a:b:c",),
    ("%:%",),
    ("_:_",),
    ("drop:'; DROP TABLE instance_tags; --",),
    ("é:数据",),
    ("k:",),
    ("k:v", "%:x"),
]
TAG_NEEDLES = [
    ["%:%"],
    ["%"],
    ["_"],
    ["_:%"],
    ["k%:v_"],
    ["k_"],
    ["kx:v%"],
    ["k%"],
    ["a:b:c"],
    ["a:b"],
    ["a"],
    ["drop:'; DROP TABLE instance_tags; --"],
    ["drop:' OR '1'='1"],
    ["it's:o'k"],
    ["it's"],
    ['q":x'],
    ["k:"],
    ["k"],
    ["é:数据"],
    ["' OR '1'='1"],
    ["%:%", "kx:vy"],
]


# The row counts after the last fixture of each server made its data: attacks add none.
LATEST: dict[str, dict[str, int]] = {}


@dataclass
class Data:
    pid: int
    instances: list[Any]
    counts: dict[str, int]
    tables: list[str]


def _counts(live: LiveServer) -> tuple[list[str], dict[str, int]]:
    engine = live.store.database
    names = sorted(sa.inspect(engine).get_table_names())
    counted = [
        "projects",
        "workflows",
        "workflow_definitions",
        "tasks",
        "workflow_instances",
        "instance_tags",
        "task_instances",
        "partitions",
    ]
    with engine.connect() as conn:
        counts = {
            t: int(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()) for t in counted
        }
    return names, counts


@pytest.fixture(scope="module")
def data(live: LiveServer) -> Data:
    pid = project(live.store).id
    made = [instance(pid, name=name) for name in NAMES]
    made += [instance(pid, name=f"owned {n}", owner=owner) for n, owner in enumerate(OWNERS)]
    made += [instance(pid, name=f"tagged {n}", tags=tags(*t)) for n, t in enumerate(TAG_SETS)]
    put(live.store, made)
    tables, counts = _counts(live)
    LATEST[live.endpoint] = counts
    return Data(pid, made, counts, tables)


def _listed(live: LiveServer, form: dict[str, Any], scheme: str = "acs3") -> tuple[list[int], int]:
    raw = (
        acs3(live, "ListWorkflowInstances", form=form)
        if scheme == "acs3"
        else v1(live, "ListWorkflowInstances", form, method="GET")
    )
    paging = ok_json(raw.send())["PagingInfo"]
    return [i["Id"] for i in paging["WorkflowInstances"]], int(paging["TotalCount"])


def _base(data: Data) -> dict[str, Any]:
    return {"ProjectId": data.pid, "BizDate": SHANGHAI_DAY_MS, "PageSize": 500, "SortBy": "Id Asc"}


@pytest.mark.parametrize("scheme", ["acs3", "v1"])
def test_workflow_instance_name_filter_matches_literally(
    live: LiveServer, data: Data, scheme: str
) -> None:
    for needle in NEEDLES:
        expected = [i.id for i in data.instances if needle.casefold() in i.name.casefold()]
        got, total = _listed(live, {**_base(data), "Name": needle}, scheme)
        assert (got, total) == (expected, len(expected)), needle
        if scheme == "acs3":  # with another filter beside it (another query plan)
            typed, _ = _listed(live, {**_base(data), "Name": needle, "Type": "Normal"})
            assert typed == expected, needle


def test_owner_filter_matches_literally(live: LiveServer, data: Data) -> None:
    for needle in OWNER_NEEDLES:
        expected = [i.id for i in data.instances if i.owner == needle]
        assert _listed(live, {**_base(data), "Owner": needle}) == (expected, len(expected)), needle


def test_tag_filter_matches_literally(live: LiveServer, data: Data) -> None:
    def matches(spec: str, tag_set: Any) -> bool:
        key, colon, value = spec.partition(":")
        if colon:
            return any(t.key == key and t.value == value for t in tag_set)
        return any(t.key == spec for t in tag_set)

    for needle in TAG_NEEDLES:
        expected = [i.id for i in data.instances if any(matches(s, i.tags) for s in needle)]
        got = _listed(live, {**_base(data), "Tags": needle})
        assert got == (expected, len(expected)), needle
        # The flat form (Tags.1, Tags.2) as some clients send it.
        flat = {f"Tags.{n}": s for n, s in enumerate(needle, start=1)}
        assert _listed(live, {**_base(data), **flat}) == got, needle


SQL_SORTS = [
    "Id; DROP TABLE workflow_instances",
    "Id Desc; --",
    "Id Desc--",
    "(SELECT 1)",
    "Id, (SELECT 1)",
    "CASE WHEN 1=1 THEN Id END",
    "Id Asc, Name",
    "id' OR '1'='1",
    "Id/**/Desc",
    "1",
    "Id Desc NULLS FIRST",
]


def test_sql_in_sort_by_is_invalid_parameter(live: LiveServer, data: Data) -> None:
    for sort in SQL_SORTS:
        response = acs3(live, "ListWorkflowInstances", form={**_base(data), "SortBy": sort}).send()
        assert_error(response, 400, "InvalidParameter", "SortBy")


SQL_FILTERS: list[Any] = [
    {"status": "Success' OR '1'='1"},
    {"status": ["Success", "Failure') OR ('1'='1"]},
    {"status": "Success; DROP TABLE workflow_instances"},
    {"status": {"$ne": "x"}},
    {"executionDate": "1743350400000 OR 1=1"},
    {"executionDate": "0; DROP TABLE workflow_instances"},
    {"executionDate": {"$gt": 0}},
    {"status; DROP TABLE workflow_instances": "Success"},
    {"status": "Success", "1=1": True},
]


def test_sql_in_filter_is_invalid_parameter(live: LiveServer, data: Data) -> None:
    for value in SQL_FILTERS:
        form = {**_base(data), "Filter": json.dumps(value)}
        response = acs3(live, "ListWorkflowInstances", form=form).send()
        assert_error(response, 400, "InvalidParameter", "Filter")


def test_sql_in_enumerations_is_invalid_parameter(live: LiveServer, data: Data) -> None:
    for name in ("Type", "EnvType"):
        for value in ("Normal' OR '1'='1", "Prod; DROP TABLE workflow_instances", "%"):
            form = {**_base(data), name: value}
            response = acs3(live, "ListWorkflowInstances", form=form).send()
            assert_error(response, 400, "InvalidParameter", name)


# Task instances

TASK_NAMES = ["t%1", "tx1", "t_1", "ty1", "t'1", 't"; DROP TABLE task_instances; --', "t\\1", "t/1"]
TASK_NEEDLES = ["%", "_", "t%1", "t_1", "'", "' OR '1'='1", "DROP TABLE", "\\", "/", "T%1", ";"]


@dataclass
class Tasks:
    pid: int
    instance: int
    names: dict[int, str]  # task instance id -> name


@pytest.fixture(scope="module")
def task_data(live: LiveServer) -> Tasks:
    pid = project(live.store).id
    nodes = []
    for n, name in enumerate(TASK_NAMES):
        nodes.append(
            {
                "id": f"n{n}",
                "name": name,
                "script": {"runtime": {"command": "VIRTUAL"}, "content": ""},
                "outputs": {"nodeOutputs": [{"data": f"n{n}_out"}]},
            }
        )
    spec = {
        "version": "1.1.0",
        "kind": "CycleWorkflow",
        "spec": {
            "workflows": [
                {
                    "name": f"tasks_{pid}",
                    "trigger": {
                        "type": "Scheduler",
                        "cron": "00 30 02 * * ?",
                        "timezone": "Asia/Shanghai",
                    },
                    "strategy": {"instanceMode": "T+1", "rerunTimes": 0},
                    "nodes": nodes,
                }
            ]
        },
    }
    _, _, instance_id, task_ids, _, _ = deploy_run(live, pid, spec)
    listed = ok_json(
        acs3(
            live,
            "ListTaskInstances",
            form={"ProjectId": pid, "Bizdate": SHANGHAI_DAY_MS, "PageSize": 100},
        ).send()
    )["PagingInfo"]["TaskInstances"]
    names = {t["Id"]: t["TaskName"] for t in listed}
    assert sorted(names) == task_ids and sorted(names.values()) == sorted(TASK_NAMES)
    LATEST[live.endpoint] = _counts(live)[1]
    return Tasks(pid, instance_id, names)


def _tasks(live: LiveServer, t: Tasks, **form: Any) -> tuple[list[int], int]:
    sent = {"ProjectId": t.pid, "Bizdate": SHANGHAI_DAY_MS, "PageSize": 100, **form}
    paging = ok_json(acs3(live, "ListTaskInstances", form=sent).send())["PagingInfo"]
    return sorted(i["Id"] for i in paging["TaskInstances"]), int(paging["TotalCount"])


def test_task_name_filter_matches_literally(live: LiveServer, task_data: Tasks) -> None:
    for needle in TASK_NEEDLES:
        expected = sorted(
            i for i, name in task_data.names.items() if needle.casefold() in name.casefold()
        )
        assert _tasks(live, task_data, TaskName=needle) == (expected, len(expected)), needle


def test_task_instance_text_filters_do_not_inject(live: LiveServer, task_data: Tasks) -> None:
    injected = ["' OR '1'='1", "%", "_", "x'; DROP TABLE task_instances; --"]
    for name in ("TaskType", "Owner", "RuntimeResource", "Status"):
        for value in injected:
            sent = {"ProjectId": task_data.pid, "Bizdate": SHANGHAI_DAY_MS, name: value}
            response = acs3(live, "ListTaskInstances", form=sent).send()
            if response.status_code == 200:
                assert response.json()["PagingInfo"]["TotalCount"] == 0, (name, value)
            else:
                assert_error(response, 400, "InvalidParameter", name)
    everything = _tasks(live, task_data)
    assert everything[1] == len(TASK_NAMES)
    for sort in SQL_SORTS:
        sent = {"ProjectId": task_data.pid, "Bizdate": SHANGHAI_DAY_MS, "SortBy": sort}
        assert_error(
            acs3(live, "ListTaskInstances", form=sent).send(), 400, "InvalidParameter", "SortBy"
        )
    for value in (
        {"startedTimeStart": "0 OR 1=1"},
        {"createTimeEnd; DROP TABLE task_instances": 1},
        {"finishedTimeStart": {"$gt": 0}},
    ):
        sent = {"ProjectId": task_data.pid, "Bizdate": SHANGHAI_DAY_MS, "Filter": json.dumps(value)}
        assert_error(
            acs3(live, "ListTaskInstances", form=sent).send(), 400, "InvalidParameter", "Filter"
        )


# Workflow definitions and workflows

WORKFLOW_NAMES = ["w%1", "wx1", "w_1", "wy1", "w'1", "w\\1", "w/1", 'w"; DROP TABLE workflows; --']
WORKFLOW_NEEDLES = [
    "%",
    "_",
    "w%1",
    "w_1",
    "'",
    "' OR '1'='1",
    "\\",
    "/",
    "DROP",
    "W%1",
    "%_%",
    ";",
]


@pytest.fixture(scope="module")
def workflows(live: LiveServer) -> tuple[int, dict[str, int]]:
    """A workspace with one workflow per name; (workspace, {name: workflow id})."""
    pid = project(live.store).id
    found = {}
    for name in WORKFLOW_NAMES:
        spec = {
            "version": "1.1.0",
            "kind": "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": name,
                        "trigger": {
                            "type": "Scheduler",
                            "cron": "00 30 02 * * ?",
                            "timezone": "Asia/Shanghai",
                        },
                        "strategy": {"instanceMode": "T+1", "rerunTimes": 0},
                        "nodes": [
                            {
                                "id": "only",
                                "name": "only",
                                "script": {"runtime": {"command": "VIRTUAL"}, "content": ""},
                                "outputs": {"nodeOutputs": [{"data": f"only_{len(found)}"}]},
                            }
                        ],
                    }
                ]
            },
        }
        job = ok_json(
            acs3(
                live, "ImportWorkflowDefinition", form={"ProjectId": pid, "Spec": json.dumps(spec)}
            ).send()
        )["AsyncJob"]
        shown = ok_json(acs3(live, "GetWorkflowDefinition", form={"Id": job["Response"]}).send())
        found[name] = int(shown["WorkflowDefinition"]["WorkflowId"])
    LATEST[live.endpoint] = _counts(live)[1]
    return pid, found


def test_definition_and_workflow_name_filters_match_literally(
    live: LiveServer, workflows: tuple[int, dict[str, int]]
) -> None:
    pid, ids = workflows
    for needle in WORKFLOW_NEEDLES:
        expected = sorted(n for n in WORKFLOW_NAMES if needle.lower() in n.lower())
        form = {"ProjectId": pid, "Name": needle, "PageSize": 100}
        defs = ok_json(acs3(live, "ListWorkflowDefinitions", form=form).send())["PagingInfo"]
        assert sorted(d["Name"] for d in defs["WorkflowDefinitions"]) == expected, needle
        assert defs["TotalCount"] == len(expected)
        flows = ok_json(acs3(live, "ListWorkflows", form=form).send())["PagingInfo"]
        assert sorted(w["Id"] for w in flows["Workflows"]) == sorted(ids[n] for n in expected), (
            needle
        )
        assert flows["TotalCount"] == len(expected)


def test_definition_and_workflow_other_filters_do_not_inject(
    live: LiveServer, workflows: tuple[int, dict[str, int]]
) -> None:
    pid, _ = workflows
    for action in ("ListWorkflowDefinitions", "ListWorkflows"):
        for value in ("' OR '1'='1", "%", "_"):
            form = {"ProjectId": pid, "Owner": value}
            paging = ok_json(acs3(live, action, form=form).send())["PagingInfo"]
            assert paging["TotalCount"] == 0, (action, value)
    for value in ("CycleWorkflow' OR '1'='1", "%"):
        response = acs3(
            live, "ListWorkflowDefinitions", form={"ProjectId": pid, "Type": value}
        ).send()
        assert_error(response, 400, "InvalidParameter", "Type")
    for sort in ("Id; DROP TABLE workflows", "(SELECT 1)", "Id Desc--", "Name"):
        response = acs3(live, "ListWorkflows", form={"ProjectId": pid, "SortBy": sort}).send()
        assert_error(response, 400, "InvalidParameter", "SortBy")
    for trigger in ("Scheduler' OR '1'='1",):
        response = acs3(
            live, "ListWorkflows", form={"ProjectId": pid, "TriggerType": trigger}
        ).send()
        assert_error(response, 400, "InvalidParameter", "TriggerType")


def test_the_database_is_intact(
    live: LiveServer, data: Data, task_data: Tasks, workflows: tuple[int, dict[str, int]]
) -> None:
    """Last in the module: after every attack above, the same tables hold the same rows."""
    tables, counts = _counts(live)
    assert tables == data.tables
    assert counts == LATEST[live.endpoint]
    assert counts["workflow_instances"] >= len(data.instances) > 0
    # Still answering exactly what the first listing answered.
    expected = [i.id for i in data.instances]
    assert _listed(live, _base(data)) == (expected, len(expected))
    by_name = [i.id for i in data.instances if i.name == DROP_WI]
    assert _listed(live, {**_base(data), "Name": DROP_WI})[0] == by_name
    assert _tasks(live, task_data)[1] == len(TASK_NAMES)
