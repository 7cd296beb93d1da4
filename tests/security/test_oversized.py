"""Huge bodies, lists, nesting, values and parameter counts over real HTTP (both
databases): each is refused with InvalidParameter naming the parameter (or, for the body,
`body`), quickly, and the server stays healthy (`/healthz`) after every one.

Attack → test (a bare name is a test of this module):

- a body over 1 MiB, declared in Content-Length
  → tests/api/test_hardening.py::test_an_oversized_body_is_refused_before_it_is_read
- a body over 1 MiB, chunked (no Content-Length)
  → test_a_chunked_body_over_the_limit_is_refused
- a console body over its limit (256 KiB), signed in or not
  → test_a_console_body_over_the_limit_is_refused
- ListWorkflowInstances Ids over MAX_IDS, Tags over MAX_TAGS
  → tests/api/test_errors.py::test_invalid_list_parameters_are_invalid_parameter
- Ids over MAX_IDS in every batch action, JSON and flat forms; list limits of the other actions
  → test_lists_over_their_limit_are_invalid_parameter
- a flat index past its range (`Ids.1000000`), or not a number
  → test_lists_over_their_limit_are_invalid_parameter
  → tests/api/test_hardening.py::test_hostile_list_parameters_are_invalid
- `[` x 5000 in Ids (ListProjects, ListWorkflowInstances, StopWorkflowInstances)
  → tests/api/test_hardening.py::test_hostile_list_parameters_are_invalid
  → tests/api/test_access.py::test_ids_in_any_form_the_handler_reads_are_checked
- deep JSON nesting in Filter, Ids, Tags, TaskIds, Periods, TaskParameters, DefaultRunProperties
  → test_deeply_nested_json_is_invalid_parameter
- deep JSON nesting in a console body
  → test_deeply_nested_console_bodies_are_invalid_json
  → tests/web/test_console_http.py::test_malformed_bodies_and_static_files
- very long parameter values (names, filters, specs, ids, numbers)
  → test_very_long_values_are_invalid_parameter
- Name 513, Owner 65 characters
  → tests/api/test_errors.py::test_invalid_list_parameters_are_invalid_parameter
- a very long parameter name
  → test_very_long_values_are_invalid_parameter
- a long AccessKeyId; a long nonce
  → tests/api/test_hardening.py::test_a_malformed_access_key_id_is_not_found
  → test_a_long_nonce_or_authorization_is_refused
- a huge Authorization header; thousands of headers
  → test_a_long_nonce_or_authorization_is_refused
  → test_thousands_of_headers_are_refused
- thousands of flat list items
  → test_thousands_of_parameters
- thousands of unknown parameters (ignored, as DataWorks does: bounded by the body limit)
  → test_thousands_of_parameters
- 2^63 and other out-of-range numbers
  → tests/api/test_errors.py::test_invalid_list_parameters_are_invalid_parameter
  → tests/api/test_hardening.py::test_hostile_list_parameters_are_invalid
- oversized headers, idle and trickling clients, with `dwsched serve` as it runs
  → tests/security/test_transport.py::test_oversized_headers_are_refused
  → tests/security/test_transport.py::test_idle_and_trickling_clients_do_not_keep_others_out
- backfills and ranges whose cost grows with their arguments
  → tests/security/test_bounds.py
    ::test_a_huge_backfill_is_refused_naming_periods_and_creates_nothing
  → tests/security/test_bounds.py::test_more_ranges_than_allowed_are_refused
- supplied run values (TaskParameters, WorkflowParameters) bounded
  → tests/security/test_parameters_are_data.py::test_supplied_values_are_bounded
- list items of unbounded length (Tags, Names, Filter.TaskName): refused (a gap this suite found)
  → test_very_long_list_items_are_invalid_parameter
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.sdk_helpers import HTTP, acs3, assert_error, ok_json
from tests.support.factories import SHANGHAI_DAY_MS, project
from tests.support.server import LiveServer

MAX_BODY = 1024 * 1024
DAY = SHANGHAI_DAY_MS


@pytest.fixture(autouse=True)
def _healthy(live: LiveServer) -> Iterator[None]:
    yield
    health = HTTP.get(f"http://{live.endpoint}/healthz", timeout=10)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


@pytest.fixture(scope="module")
def pid(live: LiveServer) -> int:
    return project(live.store).id


def test_a_chunked_body_over_the_limit_is_refused(live: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"PageSize=1&Pad="
        for _ in range(MAX_BODY // 65_536 + 2):
            yield b"x" * 65_536

    response = HTTP.post(
        f"http://{live.endpoint}/",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 400, "InvalidParameter", "body")


def test_a_console_body_over_the_limit_is_refused(live: LiveServer) -> None:
    big = json.dumps({"Action": "ListProjects", "Parameters": {"Pad": "x" * (300 * 1024)}})
    with httpx.Client(base_url=f"http://{live.endpoint}", timeout=30) as http:
        for path in ("/console/api/call", "/console/api/signin"):
            answer = http.post(path, content=big, headers={"content-type": "application/json"})
            assert answer.status_code == 413, (path, answer.text)
            assert answer.json()["Code"] == "RequestTooLarge"


def _many(n: int) -> list[int]:
    return list(range(1, n + 1))


def _flat(name: str, n: int) -> dict[str, int]:
    return {f"{name}.{i}": i for i in range(1, n + 1)}


def _run_form(pid: int, **extra: Any) -> dict[str, Any]:
    return {
        "ProjectId": pid,
        "WorkflowId": 5,
        "Type": "SupplementData",
        "Name": "big",
        "Periods": {"BizDates": [{"StartBizDate": "2025-03-01", "EndBizDate": "2025-03-01"}]},
        **extra,
    }


def _list_cases(pid: int) -> list[tuple[str, dict[str, Any], str]]:
    day = {"ProjectId": pid, "Bizdate": DAY}
    cases: list[tuple[str, dict[str, Any], str]] = []
    for action in (
        "StartWorkflowInstances",
        "StopWorkflowInstances",
        "RerunTaskInstances",
        "StopTaskInstances",
        "SetSuccessTaskInstances",
        "SuspendTaskInstances",
        "ResumeTaskInstances",
    ):
        cases.append((action, {"Ids": _many(101)}, "Ids"))
        cases.append((action, _flat("Ids", 101), "Ids"))
    cases += [
        ("ListWorkflowInstances", {"ProjectId": pid, "BizDate": DAY, **_flat("Ids", 101)}, "Ids"),
        ("ListWorkflowInstances", {"ProjectId": pid, "BizDate": DAY, "Ids.1000000": 1}, "Ids"),
        ("ListTaskInstances", {**day, "Ids": _many(101)}, "Ids"),
        ("ListTaskInstances", {**day, "TaskIds": _many(101)}, "TaskIds"),
        (
            "RerunWorkflowInstances",
            {"ProjectId": pid, "WorkflowId": 5, "Type": "ManualWorkflow", "Ids": _many(101)},
            "Ids",
        ),
        ("ListWorkflows", {"ProjectId": pid, "Ids": _many(1001)}, "Ids"),
        ("ListProjects", {"Ids": _many(1001)}, "Ids"),
        ("ListProjects", {"Names": [f"n{i}" for i in range(1001)]}, "Names"),
        (
            "ListProjectMembers",
            {"ProjectId": pid, "UserIds": [str(i) for i in range(101)]},
            "UserIds",
        ),
        (
            "CreateWorkflowInstances",
            _run_form(pid, DefaultRunProperties={"IncludeTaskIds": _many(101)}),
            "DefaultRunProperties.IncludeTaskIds",
        ),
        (
            "CreateWorkflowInstances",
            _run_form(
                pid,
                Periods={
                    "BizDates": [
                        {"StartBizDate": f"2025-01-{d:02d}", "EndBizDate": f"2025-01-{d:02d}"}
                        for d in range(1, 10)
                    ]
                },
            ),
            "Periods.BizDates",
        ),
    ]
    return cases


def test_lists_over_their_limit_are_invalid_parameter(live: LiveServer, pid: int) -> None:
    for action, form, named in _list_cases(pid):
        response = acs3(live, action, form=form).send()
        try:
            assert_error(response, 400, "InvalidParameter", named)
        except AssertionError as failure:
            raise AssertionError(f"{action} {named}: {failure}") from None


def _deep(kind: str, depth: int) -> str:
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth + "]" * depth


def _nesting_cases(pid: int) -> list[tuple[str, dict[str, Any], str, int]]:
    """(action, other parameters, the nested one, depth): depths that fit the body limit and,
    for parameters read with a length limit (64 KiB), that limit too."""
    listing = {"ProjectId": pid, "BizDate": DAY}
    tasks = {"ProjectId": pid, "Bizdate": DAY}
    rerun = {"ProjectId": pid, "WorkflowId": 5, "Type": "ManualWorkflow"}
    run = {k: v for k, v in _run_form(pid).items() if k != "Periods"}
    return [
        ("ListWorkflowInstances", listing, "Filter", 20_000),
        ("ListWorkflowInstances", listing, "Ids", 20_000),
        ("ListWorkflowInstances", listing, "Tags", 20_000),
        ("ListTaskInstances", tasks, "Filter", 20_000),
        ("ListTaskInstances", tasks, "TaskIds", 20_000),
        ("RerunWorkflowInstances", rerun, "Filter", 20_000),
        ("ListProjects", {}, "Names", 20_000),
        ("CreateWorkflowInstances", run, "Periods", 10_000),
        ("CreateWorkflowInstances", run, "TaskParameters", 10_000),
        ("CreateWorkflowInstances", run, "DefaultRunProperties", 10_000),
        ("CreateWorkflowInstances", run, "Tags", 10_000),
    ]


@pytest.mark.parametrize("kind", ["object", "array"])
def test_deeply_nested_json_is_invalid_parameter(live: LiveServer, pid: int, kind: str) -> None:
    for action, form, name, depth in _nesting_cases(pid):
        nested = _deep(kind, depth)
        started = time.monotonic()
        response = acs3(live, action, form={**form, name: nested}).send()
        try:
            assert_error(response, 400, "InvalidParameter", name)
        except AssertionError as failure:
            raise AssertionError(f"{action} {name} ({kind}): {failure}") from None
        assert time.monotonic() - started < 10, (action, name)


def test_deeply_nested_console_bodies_are_invalid_json(live: LiveServer) -> None:
    with httpx.Client(base_url=f"http://{live.endpoint}", timeout=30) as http:
        for kind in ("object", "array"):
            nested = _deep(kind, 40_000)  # within the console's 256 KiB
            body = '{"Action":"ListProjects","Parameters":{"Filter":' + nested + "}}"
            for path in ("/console/api/call", "/console/api/signin"):
                answer = http.post(path, content=body, headers={"content-type": "application/json"})
                assert (answer.status_code, answer.json()["Code"]) == (400, "InvalidJson"), path


def _long_cases(pid: int) -> list[tuple[str, dict[str, Any], str]]:
    listing = {"ProjectId": pid, "BizDate": DAY}
    tasks = {"ProjectId": pid, "Bizdate": DAY}
    huge = "x" * 200_000
    spec = json.dumps({"version": "1.1.0", "kind": "CycleWorkflow", "pad": "x" * (600 * 1024)})
    return [
        ("ListWorkflowInstances", {**listing, "Name": huge}, "Name"),
        ("ListWorkflowInstances", {**listing, "Owner": huge}, "Owner"),
        ("ListWorkflowInstances", {**listing, "SortBy": huge}, "SortBy"),
        ("ListWorkflowInstances", {**listing, "EnvType": huge}, "EnvType"),
        ("ListWorkflowInstances", {**listing, "Filter": json.dumps({"status": huge})}, "Filter"),
        ("ListWorkflowInstances", {**listing, "Ids": [int("9" * 400)]}, "Ids"),
        ("ListWorkflowInstances", {"ProjectId": pid, "BizDate": "1" * 5000}, "BizDate"),
        ("ListWorkflowInstances", {**listing, "PageSize": "9" * 5000}, "PageSize"),
        ("ListWorkflowInstances", {**listing, "P" * 300: 1}, "P" * 64),
        ("ListTaskInstances", {**tasks, "TaskName": huge}, "TaskName"),
        ("ListTaskInstances", {**tasks, "TaskType": huge}, "TaskType"),
        ("ListTaskInstances", {**tasks, "Status": huge}, "Status"),
        ("ListWorkflowDefinitions", {"ProjectId": pid, "Name": huge}, "Name"),
        ("ListWorkflows", {"ProjectId": pid, "Name": huge}, "Name"),
        ("ListWorkflows", {"ProjectId": pid, "SortBy": huge}, "SortBy"),
        ("ListProjects", {"Name": huge}, "Name"),
        ("UpdateProject", {"Id": pid, "Description": huge}, "Description"),
        ("CreateWorkflowInstances", _run_form(pid, Name=huge), "Name"),
        ("CreateWorkflowInstances", _run_form(pid, Comment=huge), "Comment"),
        ("CreateWorkflowInstances", _run_form(pid, WorkflowParameters=huge), "WorkflowParameters"),
        ("ImportWorkflowDefinition", {"ProjectId": pid, "Spec": spec}, "Spec"),
        ("GetCreateWorkflowInstancesResult", {"OperationId": huge}, "OperationId"),
        ("GetWorkflowInstance", {"Id": "1" * 5000}, "Id"),
    ]


def test_very_long_values_are_invalid_parameter(live: LiveServer, pid: int) -> None:
    for action, form, named in _long_cases(pid):
        response = acs3(live, action, form=form).send()
        try:
            assert_error(response, 400, "InvalidParameter", named)
        except AssertionError as failure:
            raise AssertionError(f"{action} {named}: {failure}") from None
    # Nothing was changed by the refused update.
    shown = ok_json(acs3(live, "GetProject", form={"Id": pid}).send())
    assert shown["Project"]["Description"] == ""


def test_a_long_nonce_or_authorization_is_refused(live: LiveServer) -> None:
    raw = acs3(live, "ListProjects", form={"PageSize": 1}, nonce="n" * 129)
    assert_error(raw.send(), 400, "IncompleteSignature")
    # A 60 KB Authorization header: an unknown field is ignored (the signature still
    # matches) or the header is refused; either way it is answered and nothing breaks.
    raw = acs3(live, "ListProjects", form={"PageSize": 1})
    raw.headers["authorization"] += ",Pad=" + "x" * 60_000
    response = raw.send()
    assert response.status_code == 200 or 400 <= response.status_code < 500, response.text
    raw = acs3(live, "ListProjects", form={"PageSize": 1})
    raw.headers["authorization"] = raw.headers["authorization"].replace(
        "SignedHeaders=", "SignedHeaders=" + "x-a;" * 5000
    )
    response = raw.send()
    assert 400 <= response.status_code < 500, response.text


def test_thousands_of_headers_are_refused(live: LiveServer) -> None:
    raw = acs3(live, "ListProjects", form={"PageSize": 1})
    headers = [*raw.headers.items(), *((f"x-pad-{i}", "y" * 20) for i in range(1000))]
    try:
        response = HTTP.request("POST", raw.url, headers=headers, content=raw.body)
    except httpx.RemoteProtocolError:
        return  # the connection was closed on it: refused before any work
    assert 400 <= response.status_code < 500 or response.status_code == 200, response.text


def test_thousands_of_parameters(live: LiveServer, pid: int) -> None:
    listing = {"ProjectId": pid, "BizDate": DAY}
    for name in ("Ids", "Tags"):
        items = {f"{name}.{i}": f"k{i}:v" if name == "Tags" else i for i in range(1, 5001)}
        response = acs3(live, "ListWorkflowInstances", form={**listing, **items}).send()
        assert_error(response, 400, "InvalidParameter", name)
    # Parameters no action reads are ignored (as DataWorks ignores them); the body limit
    # bounds what they cost. The answer still comes quickly and is right.
    unknown = {f"Unknown{i}": "1" for i in range(20_000)}
    started = time.monotonic()
    response = acs3(live, "ListWorkflowInstances", form={**listing, **unknown}).send()
    elapsed = time.monotonic() - started
    if response.status_code == 200:
        assert response.json()["PagingInfo"]["TotalCount"] == 0
    else:
        assert_error(response, 400, "InvalidParameter")
    assert elapsed < 10, elapsed


UNBOUNDED = "x" * 200_000


def test_very_long_list_items_are_invalid_parameter(live: LiveServer, pid: int) -> None:
    for action, form, named in (
        ("ListWorkflowInstances", {"ProjectId": pid, "BizDate": DAY, "Tags": [UNBOUNDED]}, "Tags"),
        ("ListProjects", {"Names": [UNBOUNDED]}, "Names"),
        ("ListProjectRoles", {"ProjectId": pid, "Names": [UNBOUNDED]}, "Names"),
        (
            "RerunWorkflowInstances",
            {
                "ProjectId": pid,
                "WorkflowId": 5,
                "Type": "ManualWorkflow",
                "Filter": {"TaskName": UNBOUNDED},
            },
            "Filter",
        ),
    ):
        response = acs3(live, action, form=form).send()
        assert_error(response, 400, "InvalidParameter", named)
