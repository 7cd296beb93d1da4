"""Attacks on the signed RPC protocol and on authorisation by id, over real HTTP (both
databases): replays, clock skew, tampering after signing, unsigned headers, swapped actions,
duplicated parameters, re-encoded v1 requests, and ids of another workspace. Every one was
tried by an independent review and HELD; these tests keep it so.

tests/security is the index of the attacks the suite tries. Attacks already pinned elsewhere
are listed here with the test that pins them, and are not repeated.

Attack → test (a bare name is a test of this module):

- replay of a signed request (same nonce), both schemes
  → tests/api/test_protocol_auth.py::test_a_replayed_request_is_refused
- replay on another server process sharing the database
  → tests/api/test_protocol_auth.py::test_nonces_are_shared_by_every_server_on_the_database
- the same nonce under another AccessKey
  → tests/api/test_protocol_auth.py::test_a_nonce_is_remembered_per_access_key
- forged / expired requests burning a victim's nonce
  → tests/api/test_protocol_auth.py::test_a_forged_request_does_not_burn_the_nonce
  → tests/api/test_protocol_auth.py::test_an_expired_request_does_not_burn_the_nonce
- concurrent replay (a race on the nonce insert)
  → test_a_concurrent_replay_runs_exactly_once
- the nonce reused by a new, correctly signed request
  → test_a_nonce_reused_by_a_new_request_is_refused
- timestamp 16/20 min old or ahead, a year away
  → tests/api/test_protocol_auth.py::test_a_timestamp_outside_fifteen_minutes_is_expired
- timestamp at the ends of the calendar, just past the window
  → test_timestamps_far_from_now_are_expired
- malformed dates (slashes, words, epoch seconds)
  → tests/api/test_protocol_auth.py::test_a_malformed_timestamp
- malformed dates (offsets, fractions, lower case, invalid days, non-ASCII digits)
  → test_malformed_timestamps_are_refused
- body tampered after signing (hash kept / hash recomputed)
  → tests/api/test_protocol_auth.py::test_a_tampered_acs3_request_does_not_match
  → tests/api/test_protocol_auth.py::test_a_tampered_v1_request_does_not_match
- query parameter changed or added after signing
  → tests/api/test_protocol_auth.py::test_a_tampered_acs3_request_does_not_match
- signed x-acs-action header changed; method changed
  → tests/api/test_protocol_auth.py::test_a_tampered_acs3_request_does_not_match
- signed date, nonce, version, host changed (a replay with a fresh nonce)
  → test_signed_headers_changed_after_signing_do_not_match
- v1 Timestamp, SignatureNonce, AccessKeyId, Version, Format changed
  → test_v1_signature_parameters_changed_after_signing_do_not_match
- a signed header sent twice (second value unsigned)
  → test_a_signed_header_repeated_after_signing_is_refused
- date, nonce, body hash sent but not signed
  → tests/api/test_protocol_auth.py::test_time_nonce_and_body_hash_must_be_sent_and_signed
- x-acs-action / x-acs-version sent but not signed
  → test_action_and_version_headers_must_be_signed
- an unsigned content-type turning a raw body into parameters
  → tests/api/test_hardening.py::test_a_form_body_needs_a_signed_content_type
  → test_an_unsigned_content_type_cannot_reveal_parameters
- an x-acs-action header added to a v1 request
  → tests/api/test_protocol_auth.py::test_v1_action_comes_from_the_signed_parameters
- an Authorization header added to a v1 request
  → test_an_authorization_header_added_to_a_v1_request_is_refused
- swapped Action (query, body, both)
  → test_a_swapped_action_does_not_match
- wrong secret, unknown or disabled key
  → tests/api/test_protocol_auth.py::test_a_wrong_secret_does_not_match
  → tests/api/test_protocol_auth.py::test_an_unknown_access_key_is_404
  → tests/api/test_protocol_auth.py::test_a_disabled_access_key_is_inactive_until_enabled
- malformed Authorization / v1 signature parameters
  → tests/api/test_protocol_auth.py::test_a_malformed_authorization_is_incomplete
  → tests/api/test_protocol_auth.py::test_a_malformed_v1_signature_is_incomplete
- a query key holding `=`/`&` posing as signed parameters
  → tests/api/test_hardening.py
    ::test_a_query_key_holding_separators_cannot_pose_as_signed_parameters
- duplicated parameter: query and body (v1)
  → tests/api/test_protocol_auth.py::test_v1_body_cannot_override_a_signed_query_parameter
- duplicated parameter: twice in the query, twice in the body, query and body (ACS3), signature
  parameters twice
  → test_duplicated_parameters_are_refused
- v1 parameters re-ordered / re-encoded (same values)
  → test_v1_reordered_or_re_encoded_request_is_the_same_request
- v1 parameter values or names altered by encoding
  → test_v1_encoding_that_changes_a_value_does_not_match
- special characters canonicalised as the SDK does
  → tests/api/test_protocol_auth.py::test_special_characters_are_canonicalised_as_the_sdk_does
- member of workspace A: policies x roles x workspaces
  → tests/api/test_access.py::test_every_user_is_allowed_exactly_what_its_policies_and_roles_permit
  → tests/api/test_access.py
    ::test_each_workspace_role_permits_its_kinds_of_action_in_its_workspace_only
- a batch mixing ids of A and B; ids as JSON strings
  → tests/api/test_access.py::test_a_batch_is_checked_against_the_workspace_of_every_id
  → tests/api/test_access.py::test_ids_in_any_form_the_handler_reads_are_checked
- ids of B in every action that names ids (task instances, definitions, operations, tasks,
  workspace)
  → test_ids_of_another_workspace_are_refused_and_change_nothing
- ProjectId of A with ids of B inside (lists, CreateWorkflowInstances, RerunWorkflowInstances)
  → test_ids_of_another_workspace_inside_ones_own_workspace_select_nothing
- ids of B in the flat form beside the JSON form
  → test_flat_ids_beside_json_ids_cannot_smuggle_another_workspace
- the console's calls decided like the same user's signed calls
  → tests/web/test_console_http.py::test_console_calls_are_decided_by_the_rpc_rules_of_the_same_user
- X-Forwarded-For / X-Forwarded-Proto (unsigned headers deciding acs:SourceIp,
  acs:SecureTransport, the audit's source), with `dwsched serve` as it runs
  → tests/security/test_transport.py::test_forwarded_headers_are_ignored_unless_a_proxy_is_named
  → tests/security/test_transport.py::test_forwarded_headers_are_believed_from_a_named_proxy
- the exact answer to an id of another workspace (the same as to a missing id)
  → tests/security/test_authorisation.py
    ::test_an_id_of_another_workspace_is_answered_as_an_id_that_does_not_exist
- an outsider racing the next ids while a member creates them
  → tests/security/test_authorisation.py::test_an_outsider_racing_the_next_ids_touches_nothing
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from dwsched import signing
from dwsched.clock import SystemClock
from dwsched.runtime.keys import create_key
from tests.api.sdk_helpers import (
    HTTP,
    Raw,
    acs3,
    assert_error,
    ok_json,
    utc_stamp,
    v1,
)
from tests.engine.test_engine import flow, node
from tests.support.factories import SHANGHAI_DAY_MS, instance, project, put
from tests.support.server import LiveServer
from tests.support.specs import qualified

SCHEMES = ["acs3", "v1"]
NOW = SystemClock().now_ms()


def signed(scheme: str, live: LiveServer, action: str, params: dict[str, Any], **kw: Any) -> Raw:
    if scheme == "acs3":
        return acs3(live, action, form=params, **kw)
    return v1(live, action, params, **kw)


def description(live: LiveServer, project_id: int) -> str:
    got = ok_json(acs3(live, "GetProject", query={"Id": project_id}, method="GET").send())
    return str(got["Project"]["Description"])


def send_url(raw: Raw, url: str) -> httpx.Response:
    return HTTP.request(raw.method, url, headers=raw.headers, content=raw.body)


# Replay


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("action", ["UpdateProject", "ListProjects"])
def test_a_concurrent_replay_runs_exactly_once(live: LiveServer, scheme: str, action: str) -> None:
    """Eight copies of one signed request at once (a write, served on a worker thread, and a
    read, served inline on SQLite): one runs, seven are SignatureNonceUsed."""
    p = project(live.store)
    params: dict[str, Any] = (
        {"Id": p.id, "Description": "raced"} if action == "UpdateProject" else {"PageSize": 1}
    )
    raw = signed(scheme, live, action, params)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: raw.send(), range(8)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [400] * 7, [r.text for r in responses]
    for response in responses:
        if response.status_code == 400:
            assert_error(response, 400, "SignatureNonceUsed")
    if action == "UpdateProject":
        assert description(live, p.id) == "raced"
        with live.store.read() as tx:
            audited = [
                e
                for e in tx.audit.entries(actions=["UpdateProject"], project_id=p.id)
                if str(p.id) in e.targets
            ]
        assert [e.result for e in audited] == ["OK"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_nonce_reused_by_a_new_request_is_refused(live: LiveServer, scheme: str) -> None:
    """A nonce is spent by the key, not by the signature: a different request, correctly
    signed again with a used nonce, is refused and does nothing."""
    p = project(live.store)
    nonce = f"reused-{scheme}-{p.id}"
    ok_json(
        signed(
            scheme, live, "UpdateProject", {"Id": p.id, "Description": "first"}, nonce=nonce
        ).send()
    )
    second = signed(
        scheme, live, "UpdateProject", {"Id": p.id, "Description": "second"}, nonce=nonce
    )
    assert_error(second.send(), 400, "SignatureNonceUsed")
    other_action = signed(scheme, live, "DeleteProject", {"Id": p.id}, nonce=nonce)
    assert_error(other_action.send(), 400, "SignatureNonceUsed")
    assert description(live, p.id) == "first"


# Time


def _stamp_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


EXPIRED = [
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "+15m5s",
    "-15m5s",
]


def _when(scheme: str, stamp: str) -> dict[str, str]:
    return {"date": stamp} if scheme == "acs3" else {"timestamp": stamp}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_timestamps_far_from_now_are_expired(live: LiveServer, scheme: str) -> None:
    now = datetime.now(UTC)
    for text in EXPIRED:
        if text[0] in "+-":
            sign = 1 if text[0] == "+" else -1
            stamp = _stamp_of(now + sign * timedelta(minutes=15, seconds=5))
        else:
            stamp = text
        raw = signed(scheme, live, "ListProjects", {"PageSize": 1}, **_when(scheme, stamp))
        assert_error(raw.send(), 400, "InvalidTimeStamp.Expired")


def _malformed(now: str) -> list[str]:
    return [
        now.replace("Z", "+00:00"),
        now[:-1] + "z",
        now.replace("T", "t"),
        now.replace("T", " "),
        now[:-1] + ".000Z",
        now[:-1],
        now[:4] + "-13" + now[7:],
        now[:8] + "32" + now[10:],
        now[:11] + "24" + now[13:],
        now[:17] + "60Z",
        now[:10] + "T" + now[11:19].replace(":", "") + "Z" + "000",
        now.replace("-", ""),
    ]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_malformed_timestamps_are_refused(live: LiveServer, scheme: str) -> None:
    now = utc_stamp()
    stamps = _malformed(now)
    if scheme == "v1":  # a header value cannot carry these; a query parameter can
        stamps += ["\uff12" + now[1:], now[:18] + "\u0660Z", now + " ", " " + now]
    for stamp in stamps:
        raw = signed(scheme, live, "ListProjects", {"PageSize": 1}, **_when(scheme, stamp))
        response = raw.send()
        assert response.status_code == 400, (stamp, response.text)
        code = response.json()["Code"]
        assert code in ("InvalidTimeStamp.Format", "IncompleteSignature"), (stamp, code)


# Tampering after signing


def test_signed_headers_changed_after_signing_do_not_match(live: LiveServer) -> None:
    """Moving the signed date, changing the signed nonce (to replay under a fresh one), the
    version or the host: SignatureDoesNotMatch, and the request never runs."""
    p = project(live.store)
    changes: list[tuple[str, str]] = [
        ("x-acs-signature-nonce", "fresh-nonce-for-a-replay"),
        ("x-acs-date", _stamp_of(datetime.now(UTC) + timedelta(seconds=1))),
        ("x-acs-version", "2024-05-19"),
        ("host", "attacker.example"),
    ]
    for header, value in changes:
        raw = acs3(live, "UpdateProject", form={"Id": p.id, "Description": header})
        raw.headers[header] = value
        response = raw.send()
        assert response.status_code in (400, 404), (header, response.text)
        assert response.json()["Code"] in ("SignatureDoesNotMatch", "InvalidAction.NotFound")
    # A replay of a request that ran, with its nonce changed, does not run again.
    done = acs3(live, "UpdateProject", form={"Id": p.id, "Description": "ran once"})
    ok_json(done.send())
    ok_json(acs3(live, "UpdateProject", form={"Id": p.id, "Description": "later"}).send())
    again = dataclasses.replace(done, headers={**done.headers, "x-acs-signature-nonce": "new"})
    assert_error(again.send(), 400, "SignatureDoesNotMatch")
    assert description(live, p.id) == "later"


def test_v1_signature_parameters_changed_after_signing_do_not_match(live: LiveServer) -> None:
    p = project(live.store)
    other = create_key(live.store, f"other-{p.id}", NOW)
    changes = {
        "SignatureNonce": "fresh-nonce-for-a-replay",
        "Timestamp": _stamp_of(datetime.now(UTC) + timedelta(seconds=1)),
        "AccessKeyId": other.id,
        "Version": "2024-05-19",
        "Format": "XML",
    }
    for name, value in changes.items():
        raw = v1(live, "UpdateProject", {"Id": p.id, "Description": name})
        raw.query[name] = value
        response = raw.send()
        assert response.status_code in (400, 404), (name, response.text)
        assert response.json()["Code"] in ("SignatureDoesNotMatch", "InvalidAction.NotFound")
    assert description(live, p.id) == p.description


def test_a_signed_header_repeated_after_signing_is_refused(live: LiveServer) -> None:
    """A second x-acs-action (or nonce) appended to a signed request: the server reads both
    values, so the signature no longer matches; nothing is deleted."""
    p = project(live.store)
    for header, value in (
        ("x-acs-action", "DeleteProject"),
        ("x-acs-signature-nonce", "another"),
        ("x-acs-content-sha256", hashlib.sha256(b"x").hexdigest()),
        ("content-type", "text/plain"),
    ):
        raw = acs3(live, "GetProject", form={"Id": p.id})
        pairs = [*raw.headers.items(), (header, value)]
        response = HTTP.request("POST", raw.url, headers=pairs, content=raw.body)
        assert 400 <= response.status_code < 500, (header, response.text)
        assert response.json()["Code"] in (
            "SignatureDoesNotMatch",
            "IncompleteSignature",
            "InvalidAction.NotFound",
            "InvalidTimeStamp.Format",
        ), (header, response.text)
    ok_json(acs3(live, "GetProject", query={"Id": p.id}, method="GET").send())


@pytest.mark.parametrize("header", ["x-acs-action", "x-acs-version"])
def test_action_and_version_headers_must_be_signed(live: LiveServer, header: str) -> None:
    raw = acs3(live, "ListProjects", form={"PageSize": 1}, unsigned=(header,))
    assert_error(raw.send(), 400, "IncompleteSignature", header)


def test_an_unsigned_content_type_cannot_reveal_parameters(live: LiveServer) -> None:
    """A request signed with a raw body and no content-type: adding the form content-type
    (unsigned) would turn its bytes into parameters. Refused."""
    p = project(live.store)
    body = f"Id={p.id}&Description=injected".encode()
    headers = {
        "accept": "application/json",
        "host": live.endpoint,
        "x-acs-action": "UpdateProject",
        "x-acs-version": "2024-05-18",
        "x-acs-date": utc_stamp(),
        "x-acs-signature-nonce": f"raw-body-{p.id}",
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    names = sorted(headers)
    to_sign = signing.acs3_string_to_sign(
        "POST", "/", {}, headers, names, signing.body_sha256(body)
    )
    headers["authorization"] = signing.acs3_authorization(
        live.key_id, names, signing.acs3_signature(to_sign, live.secret)
    )
    headers["content-type"] = "application/x-www-form-urlencoded"
    response = HTTP.post(f"http://{live.endpoint}/", headers=headers, content=body)
    assert_error(response, 400, "IncompleteSignature", "content-type")
    assert description(live, p.id) == p.description


def test_an_authorization_header_added_to_a_v1_request_is_refused(live: LiveServer) -> None:
    p = project(live.store)
    raw = v1(live, "DeleteProject", {"Id": p.id})
    raw.headers["authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={live.key_id},SignedHeaders=host,Signature=00"
    )
    response = raw.send()
    assert response.status_code == 400, response.text  # read as ACS3: incomplete
    assert response.json()["Code"] in ("IncompleteSignature", "MissingParameter")
    ok_json(acs3(live, "GetProject", query={"Id": p.id}, method="GET").send())


def test_a_swapped_action_does_not_match(live: LiveServer) -> None:
    p = project(live.store)
    # ACS3: an Action parameter added to the (signed) query or to the (hashed) body.
    raw = acs3(live, "GetProject", query={"Id": p.id}, method="GET")
    raw.query["Action"] = "DeleteProject"
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    raw = acs3(live, "GetProject", form={"Id": p.id})
    raw.body += b"&Action=DeleteProject"
    raw.headers["x-acs-content-sha256"] = hashlib.sha256(raw.body).hexdigest()
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    # v1: the Action moved from the query to the body, or given in both.
    raw = v1(live, "GetProject", {"Id": p.id})
    del raw.query["Action"]
    raw.body += b"&Action=DeleteProject"
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    raw = v1(live, "GetProject", {"Id": p.id})
    raw.body += b"&Action=DeleteProject"
    assert_error(raw.send(), 400, "InvalidParameter", "Action")
    # Signed as another action, sent as this one: the signature is per action.
    raw = v1(live, "DeleteProject", {"Id": p.id})
    raw.query["Action"] = "GetProject"
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    ok_json(acs3(live, "GetProject", query={"Id": p.id}, method="GET").send())


# Duplicated parameters


def test_duplicated_parameters_are_refused(live: LiveServer) -> None:
    mine, other = project(live.store), project(live.store)
    # Twice in the query (ACS3 GET), the second one unsigned.
    raw = acs3(live, "UpdateProject", query={"Id": mine.id, "Description": "q"}, method="GET")
    response = send_url(raw, f"{raw.url}&Id={other.id}")
    assert_error(response, 400, "InvalidParameter", "Id")
    # Twice in the body, with the body hash recomputed (the signature still covers it).
    raw = acs3(live, "UpdateProject", form={"Id": mine.id, "Description": "b"})
    raw.body += f"&Id={other.id}".encode()
    raw.headers["x-acs-content-sha256"] = hashlib.sha256(raw.body).hexdigest()
    response = raw.send()
    assert response.status_code == 400
    assert response.json()["Code"] in ("InvalidParameter", "SignatureDoesNotMatch")
    # Signed with the duplicate, so only the duplicate itself can refuse it.
    raw = acs3(live, "UpdateProject", query={"Id": mine.id}, form={"Id": other.id})
    assert_error(raw.send(), 400, "InvalidParameter", "Id")
    # v1: a second nonce or a second signature in the query.
    raw = v1(live, "UpdateProject", {"Id": mine.id, "Description": "n"}, method="GET")
    assert_error(send_url(raw, f"{raw.url}&SignatureNonce=x"), 400, "InvalidParameter")
    raw = v1(live, "UpdateProject", {"Id": mine.id, "Description": "s"}, method="GET")
    assert_error(send_url(raw, f"{raw.url}&Signature=x"), 400, "InvalidParameter")
    for p in (mine, other):
        assert description(live, p.id) == p.description


# v1 canonicalisation


def _v1_get(live: LiveServer, params: dict[str, str]) -> Raw:
    return v1(live, "GetProject", params, method="GET")


def _url(raw: Raw, pairs: list[tuple[str, str]], encoded: str | None = None) -> str:
    return f"http://{raw.endpoint}/?{encoded if encoded is not None else urlencode(pairs)}"


def test_v1_reordered_or_re_encoded_request_is_the_same_request(live: LiveServer) -> None:
    """The v1 string to sign sorts and re-encodes the parameters: another order or another
    encoding of the same values verifies; and it is the same request, so its replay (in
    the original form) is refused."""
    p = project(live.store)
    params = {"Id": str(p.id), "Note": "a b+c*~é"}
    variants = [
        lambda raw: _url(raw, list(reversed(raw.query.items()))),
        lambda raw: raw.url.replace("+", "%20"),
        lambda raw: raw.url.replace("%2B", "%2b").replace("%C3%A9", "%c3%a9"),
        lambda raw: raw.url.replace("%7E", "~").replace("%2A", "*"),
    ]
    for make in variants:
        raw = _v1_get(live, params)
        url = make(raw)
        assert url != raw.url
        assert ok_json(send_url(raw, url))["Project"]["Id"] == p.id, url
        assert_error(raw.send(), 400, "SignatureNonceUsed")


def test_v1_encoding_that_changes_a_value_does_not_match(live: LiveServer) -> None:
    p = project(live.store)
    params = {"Id": str(p.id), "Note": "a+b"}
    variants = [
        lambda url: url.replace("%2B", "+"),  # a plus sign becomes a space
        lambda url: url.replace("%2B", "%252B"),  # encoded twice
        lambda url: url.replace("Note=", "note="),  # a name in another case
        lambda url: url.replace("Note=", "Note%00="),
        lambda url: url.replace(f"Id={p.id}", f"Id=0{p.id}"),
        lambda url: url.replace(f"Id={p.id}", f"Id=%20{p.id}"),
    ]
    for change in variants:
        raw = _v1_get(live, params)
        response = send_url(raw, change(raw.url))
        assert response.status_code == 400, (change(raw.url), response.text)
        assert response.json()["Code"] in ("SignatureDoesNotMatch", "InvalidParameter")


# Ids of another workspace


@dataclass
class Workspace:
    id: int
    workflow: int
    definition: int
    instance: int
    imported: int  # an instance loaded by import (no task instances)
    tasks: list[int]  # task instances of `instance`
    task_ids: list[int]  # the workflow's tasks
    create_operation: str
    rerun_operation: str


def deploy_run(live: LiveServer, pid: int, spec: dict[str, Any], name: str = "run") -> Any:
    """Deploy `spec` in `pid`, create one SupplementData instance of it on 2025-03-31 as the
    scheduler would; (workflow, definition, instance, task instances, tasks, operation)."""
    workflow = definition = 1
    while workflow == 1:  # WorkflowId 1 means "the workflows of the tasks named" (DataWorks)
        job = ok_json(
            acs3(
                live, "ImportWorkflowDefinition", form={"ProjectId": pid, "Spec": json.dumps(spec)}
            ).send()
        )["AsyncJob"]
        definition = int(job["Response"])
        shown = ok_json(acs3(live, "GetWorkflowDefinition", form={"Id": definition}).send())
        workflow = int(shown["WorkflowDefinition"]["WorkflowId"])
        spec = json.loads(json.dumps(spec))
        spec["spec"]["workflows"][0]["name"] += "_again"
        spec = qualified(spec)  # a second workflow: outputs of its own
    made = acs3(
        live,
        "CreateWorkflowInstances",
        form={
            "ProjectId": pid,
            "WorkflowId": workflow,
            "Type": "SupplementData",
            "Name": name,
            "Periods": {"BizDates": [{"StartBizDate": "2025-03-31", "EndBizDate": "2025-03-31"}]},
        },
    ).send()
    operation = ok_json(made)["OperationId"]
    live.store.create_pending(SystemClock().now_ms())
    result = ok_json(
        acs3(live, "GetCreateWorkflowInstancesResult", form={"OperationId": operation}).send()
    )["Result"]
    [instance_id] = result["WorkflowInstanceIds"]
    listed = ok_json(
        acs3(
            live,
            "ListTaskInstances",
            form={"ProjectId": pid, "Bizdate": SHANGHAI_DAY_MS, "WorkflowInstanceId": instance_id},
        ).send()
    )["PagingInfo"]["TaskInstances"]
    tasks = sorted(t["Id"] for t in listed)
    task_ids = sorted(t["TaskId"] for t in listed)
    return workflow, definition, instance_id, tasks, task_ids, operation


def _workspace(live: LiveServer) -> Workspace:
    pid = project(live.store).id
    spec = flow([node("a", "VIRTUAL"), node("b", "VIRTUAL", after="a")])
    workflow, definition, inst, tasks, task_ids, op = deploy_run(live, pid, spec)
    rerun = ok_json(
        acs3(
            live,
            "RerunWorkflowInstances",
            form={"ProjectId": pid, "WorkflowId": workflow, "Type": "ManualWorkflow"},
        ).send()
    )["OperationId"]
    return Workspace(pid, workflow, definition, inst, 0, tasks, task_ids, op, rerun)


@dataclass
class Tenancy:
    a: Workspace
    b: Workspace
    key_id: str
    secret: str
    user_id: int


@pytest.fixture(scope="module")
def tenancy(live: LiveServer) -> Tenancy:
    """Workspaces a and b; a user whose policy allows everything, Workspace Owner of a only
    (so membership alone must keep b out of reach)."""
    store = live.store
    a, b = _workspace(live), _workspace(live)
    # One instance each loaded by import (no task instances), after the engine made its own.
    far = 7_000_000_000 + 10 * a.id  # ids far from those the engine hands out
    loaded = [
        instance(ws.id, id=i, unified_workflow_instance_id=i, workflow_task_instance_id=i)
        for ws, i in ((a, far), (b, far + 1))
    ]
    put(store, loaded)
    a.imported, b.imported = far, far + 1
    everything = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    with store.write() as tx:
        if not tx.policies.exists("SecEverything"):
            tx.policies.create("SecEverything", json.dumps(everything), "", NOW)
    name = f"owner_of_a_{a.id}"
    with store.write() as tx:
        user = tx.users.create(name, name, NOW)
        tx.policies.attach("SecEverything", "User", name, attach=True)
    key = create_key(store, f"{name}-key", NOW)
    with store.write() as tx:
        tx.users.set_key_user(key.id, name)
        tx.members.add(a.id, user.id, ["role_project_owner"], NOW)
    return Tenancy(a, b, key.id, key.secret, user.id)


def _as_member(live: LiveServer, t: Tenancy, action: str, form: dict[str, Any]) -> httpx.Response:
    return acs3(live, action, form=form, key_id=t.key_id, secret=t.secret).send()


def _snapshot(live: LiveServer, ws: Workspace) -> dict[str, Any]:
    """Everything of a workspace an attack could change, as its tenant key reads it."""

    def read(action: str, **form: Any) -> Any:
        body = ok_json(acs3(live, action, form=form).send())
        body.pop("RequestId")
        return body

    return {
        "project": read("GetProject", Id=ws.id),
        "instance": read("GetWorkflowInstance", Id=ws.instance),
        "imported": read("GetWorkflowInstance", Id=ws.imported),
        "instances": read(
            "ListWorkflowInstances", ProjectId=ws.id, BizDate=SHANGHAI_DAY_MS, PageSize=100
        ),
        "tasks": read("ListTaskInstances", ProjectId=ws.id, Bizdate=SHANGHAI_DAY_MS, PageSize=100),
        "definition": read("GetWorkflowDefinition", Id=ws.definition),
        "workflow": read("GetWorkflow", Id=ws.workflow),
        "definitions": read("ListWorkflowDefinitions", ProjectId=ws.id, PageSize=100),
        "members": read("ListProjectMembers", ProjectId=ws.id, PageSize=100),
        "operation": read("GetCreateWorkflowInstancesResult", OperationId=ws.create_operation),
        "rerun": read("GetRerunWorkflowInstancesResult", OperationId=ws.rerun_operation),
    }


def _refused(response: httpx.Response, what: Any) -> None:
    """Refused as forbidden or not found (which of the two is not pinned here)."""
    assert response.status_code in (403, 404), (what, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["Code"] and body["HttpStatusCode"] == response.status_code, (what, body)


def test_ids_of_another_workspace_are_refused_and_change_nothing(
    live: LiveServer, tenancy: Tenancy
) -> None:
    t, a, b = tenancy, tenancy.a, tenancy.b
    before = _snapshot(live, b)
    spec = json.dumps(flow([node("z", "VIRTUAL")]))
    attacks: list[tuple[str, dict[str, Any]]] = [
        ("GetProject", {"Id": b.id}),
        ("UpdateProject", {"Id": b.id, "Description": "owned"}),
        ("DeleteProject", {"Id": b.id}),
        (
            "CreateProjectMember",
            {"ProjectId": b.id, "UserId": t.user_id, "RoleCodes": ["role_project_owner"]},
        ),
        (
            "GrantMemberProjectRoles",
            {"ProjectId": b.id, "UserId": t.user_id, "RoleCodes": ["role_project_owner"]},
        ),
        ("ListProjectMembers", {"ProjectId": b.id}),
        ("GetWorkflowInstance", {"Id": b.instance}),
        ("GetWorkflowInstance", {"Id": b.imported}),
        ("StopWorkflowInstances", {"Ids": [b.instance]}),
        ("StartWorkflowInstances", {"Ids": [b.instance]}),
        ("StopWorkflowInstances", {"Ids": [a.instance, b.instance]}),
        ("GetTaskInstance", {"Id": b.tasks[0]}),
        ("GetTaskInstanceLog", {"Id": b.tasks[0]}),
        ("ListUpstreamTaskInstances", {"Id": b.tasks[1]}),
        ("ListDownstreamTaskInstances", {"Id": b.tasks[0]}),
        ("ListTaskInstanceOperationLogs", {"Id": b.tasks[0]}),
        ("RerunTaskInstances", {"Ids": b.tasks}),
        ("StopTaskInstances", {"Ids": b.tasks}),
        ("SetSuccessTaskInstances", {"Ids": [a.tasks[0], b.tasks[0]]}),
        ("SuspendTaskInstances", {"Ids": b.tasks}),
        ("ResumeTaskInstances", {"Ids": b.tasks}),
        ("TriggerSchedulerTaskInstance", {"TaskId": b.task_ids[0], "TriggerTime": SHANGHAI_DAY_MS}),
        ("GetWorkflow", {"Id": b.workflow}),
        ("GetWorkflowDefinition", {"Id": b.definition}),
        ("GetWorkflowDefinition", {"Id": b.definition, "ProjectId": a.id}),
        ("UpdateWorkflowDefinition", {"Id": b.definition, "Spec": spec}),
        ("UpdateWorkflowDefinition", {"Id": b.definition, "ProjectId": a.id, "Spec": spec}),
        ("DeleteWorkflowDefinition", {"Id": b.definition}),
        ("DeleteWorkflowDefinition", {"Id": b.definition, "ProjectId": a.id}),
        ("GetCreateWorkflowInstancesResult", {"OperationId": b.create_operation}),
        ("GetRerunWorkflowInstancesResult", {"OperationId": b.rerun_operation}),
        ("ListWorkflowInstances", {"ProjectId": b.id, "BizDate": SHANGHAI_DAY_MS}),
        ("ListTaskInstances", {"ProjectId": b.id, "Bizdate": SHANGHAI_DAY_MS}),
        ("ListWorkflows", {"ProjectId": b.id}),
        ("ListWorkflowDefinitions", {"ProjectId": b.id}),
        ("CreateWorkflowDefinition", {"ProjectId": b.id, "Spec": spec}),
        (
            "CreateWorkflowInstances",
            {
                "ProjectId": b.id,
                "WorkflowId": b.workflow,
                "Type": "Manual",
                "Name": "x",
            },
        ),
        (
            "RerunWorkflowInstances",
            {"ProjectId": b.id, "WorkflowId": b.workflow, "Type": "ManualWorkflow"},
        ),
    ]
    for action, form in attacks:
        _refused(_as_member(live, t, action, form), (action, form))
    live.store.create_pending(SystemClock().now_ms())  # what the scheduler would do next
    assert _snapshot(live, b) == before
    # The member's own workspace still answers (the refusals were about b, not the key).
    ok_json(_as_member(live, t, "GetWorkflowInstance", {"Id": a.instance}))


def test_ids_of_another_workspace_inside_ones_own_workspace_select_nothing(
    live: LiveServer, tenancy: Tenancy
) -> None:
    """ProjectId of a (allowed) with ids of b inside: the ids of b select nothing, or the
    request is refused; b is unchanged."""
    t, a, b = tenancy, tenancy.a, tenancy.b
    before = _snapshot(live, b)
    day = SHANGHAI_DAY_MS
    empty_lists = [
        (
            "ListWorkflowInstances",
            {"ProjectId": a.id, "BizDate": day, "Ids": [b.instance, b.imported]},
        ),
        ("ListWorkflowInstances", {"ProjectId": a.id, "BizDate": day, "WorkflowId": b.workflow}),
        (
            "ListTaskInstances",
            {"ProjectId": a.id, "Bizdate": day, "WorkflowInstanceId": b.instance},
        ),
        ("ListTaskInstances", {"ProjectId": a.id, "Bizdate": day, "Ids": b.tasks}),
        ("ListTaskInstances", {"ProjectId": a.id, "Bizdate": day, "Id": b.tasks[0]}),
        ("ListTaskInstances", {"ProjectId": a.id, "Bizdate": day, "TaskIds": b.task_ids}),
        ("ListWorkflows", {"ProjectId": a.id, "Ids": [b.workflow]}),
    ]
    for action, form in empty_lists:
        response = _as_member(live, t, action, form)
        if response.status_code == 200:
            paging = response.json()["PagingInfo"]
            assert paging["TotalCount"] == 0, (action, form, paging)
        else:
            assert response.status_code in (400, 403, 404), (action, response.text)
    created = _as_member(
        live,
        t,
        "CreateWorkflowInstances",
        {
            "ProjectId": a.id,
            "WorkflowId": b.workflow,
            "Type": "SupplementData",
            "Name": "into b",
            "Periods": {"BizDates": [{"StartBizDate": "2025-03-31", "EndBizDate": "2025-03-31"}]},
        },
    )
    assert created.status_code in (400, 403, 404), created.text
    by_tasks = _as_member(
        live,
        t,
        "CreateWorkflowInstances",
        {
            "ProjectId": a.id,
            "WorkflowId": 1,  # DataWorks' "the workflows holding these tasks"
            "Type": "Manual",
            "Name": "b tasks",
            "DefaultRunProperties": {"RootTaskIds": b.task_ids, "IncludeTaskIds": b.task_ids},
        },
    )
    assert by_tasks.status_code in (200, 400, 403, 404), by_tasks.text
    rerun = _as_member(
        live,
        t,
        "RerunWorkflowInstances",
        {
            "ProjectId": a.id,
            "WorkflowId": b.workflow,
            "Type": "ManualWorkflow",
            "Ids": [b.instance],
            "Filter": {"TaskIds": b.task_ids},
        },
    )
    if rerun.status_code == 200:
        result = _as_member(
            live, t, "GetRerunWorkflowInstancesResult", {"OperationId": rerun.json()["OperationId"]}
        )
        assert ok_json(result)["Result"]["Status"] == "Failure"
    else:
        assert rerun.status_code in (400, 403, 404), rerun.text
    live.store.create_pending(SystemClock().now_ms())
    assert _snapshot(live, b) == before


def test_flat_ids_beside_json_ids_cannot_smuggle_another_workspace(
    live: LiveServer, tenancy: Tenancy
) -> None:
    """`Ids=[a]` with `Ids.1=b`: the authorisation and the handler read the same ids, so
    either b's id is checked (refused) or it is ignored by both (b unchanged)."""
    t, a, b = tenancy, tenancy.a, tenancy.b
    before = _snapshot(live, b)
    for action, ids in (
        ("StopWorkflowInstances", ([a.imported], b.instance)),
        ("SetSuccessTaskInstances", ([a.tasks[0]], b.tasks[0])),
    ):
        form = {"Ids": ids[0], "Ids.1": ids[1], "Ids.2": ids[1]}
        response = _as_member(live, t, action, form)
        if response.status_code == 200:
            assert str(ids[1]) not in response.json()["SuccessInfo"], response.text
        else:
            assert response.status_code in (400, 403, 404), response.text
    assert _snapshot(live, b) == before


@pytest.fixture(autouse=True)
def _healthy(live: LiveServer) -> Iterator[None]:
    yield
    assert HTTP.get(f"http://{live.endpoint}/healthz").status_code == 200
