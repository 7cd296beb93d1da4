"""The wire protocol and authentication, over raw HTTP (DESIGN.md §2, reference §0, §4, §5).

Requests are signed by hand (tests/api/sdk_helpers.py) so that each test can change exactly
one thing; the official SDK is used where it already sends the request in question.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import httpx
import pytest
from alibabacloud_dataworks_public20240518 import models

from dwsched.clock import SystemClock
from dwsched.domain.models import KeyStatus
from dwsched.runtime.keys import create_key
from tests.api.sdk_helpers import (
    ALGORITHMS,
    HTTP,
    Raw,
    acs3,
    assert_error,
    assert_sdk_error,
    minutes_ago,
    ok_json,
    sdk_error,
    utc_stamp,
    v1,
)
from tests.support.factories import SHANGHAI_DAY_MS, instance, project, put, tags
from tests.support.server import LiveServer, running_server

SCHEMES = ["acs3", "v1"]


def signed(
    scheme: str,
    live: LiveServer,
    action: str | None,
    params: dict[str, Any] | None = None,
    method: str = "POST",
    **kw: Any,
) -> Raw:
    """A correctly signed request with either scheme; `params` go where the SDK puts them."""
    if scheme == "acs3":
        where = "query" if method == "GET" else "form"
        return acs3(live, action, method=method, **{where: params}, **kw)
    return v1(live, action, params, method=method, **kw)


def listed(response: httpx.Response) -> list[int]:
    return [i["Id"] for i in ok_json(response)["PagingInfo"]["WorkflowInstances"]]


# Health


def test_healthz(live: LiveServer) -> None:
    response = HTTP.get(f"http://{live.endpoint}/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


# Methods and where parameters travel


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_get_and_post_carry_the_same_request(live: LiveServer, scheme: str, method: str) -> None:
    p = project(live.store)
    a, b = instance(p.id), instance(p.id)
    put(live.store, [a, b])
    response = signed(
        scheme,
        live,
        "ListWorkflowInstances",
        {"ProjectId": p.id, "BizDate": SHANGHAI_DAY_MS, "Ids": [a.id, b.id], "SortBy": "Id Asc"},
        method,
    ).send()
    assert listed(response) == [a.id, b.id]
    got = signed(scheme, live, "GetWorkflowInstance", {"Id": a.id}, method).send()
    assert ok_json(got)["WorkflowInstance"]["Id"] == a.id
    shown = signed(scheme, live, "GetProject", {"Id": p.id}, method).send()
    assert ok_json(shown)["Project"]["Name"] == p.name


@pytest.mark.parametrize("scheme", SCHEMES)
def test_parameters_split_across_query_and_body(live: LiveServer, scheme: str) -> None:
    p = project(live.store)
    a, b, c = instance(p.id), instance(p.id), instance(p.id)
    put(live.store, [a, b, c])
    in_query = {"ProjectId": p.id, "SortBy": "Id Asc"}
    in_body = {"BizDate": SHANGHAI_DAY_MS, "Ids": [a.id, c.id]}
    if scheme == "acs3":
        raw = acs3(live, "ListWorkflowInstances", query=in_query, form=in_body)
    else:
        raw = v1(live, "ListWorkflowInstances", in_body, in_query=in_query)
    assert "ProjectId" in raw.query and b"BizDate" in raw.body
    assert listed(raw.send()) == [a.id, c.id]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_flat_arrays(live: LiveServer, scheme: str, method: str) -> None:
    p = project(live.store)
    a, b, c = instance(p.id), instance(p.id), instance(p.id)
    put(live.store, [a, b, c])
    base = {"ProjectId": p.id, "BizDate": SHANGHAI_DAY_MS, "SortBy": "Id Asc"}
    flat_ids = {"Ids.1": a.id, "Ids.2": c.id}
    response = signed(scheme, live, "ListWorkflowInstances", {**base, **flat_ids}, method).send()
    assert listed(response) == [a.id, c.id]
    # Indexes need not be contiguous nor in order.
    many = {"Ids.10": b.id, "Ids.2": a.id}
    response = signed(scheme, live, "ListWorkflowInstances", {**base, **many}, method).send()
    assert listed(response) == [a.id, b.id]

    other = project(live.store)
    projects = signed(
        scheme,
        live,
        "ListProjects",
        {"Ids.1": p.id, "Ids.2": other.id, "Names.1": p.name, "Names.2": "nope"},
        method,
    ).send()
    assert [x["Id"] for x in ok_json(projects)["PagingInfo"]["Projects"]] == [p.id]


def test_flat_tags(live: LiveServer) -> None:
    p = project(live.store)
    data, ops, none = (
        instance(p.id, tags=tags("team:data")),
        instance(p.id, tags=tags("team:ops")),
        instance(p.id),
    )
    put(live.store, [data, ops, none])
    form = {
        "ProjectId": p.id,
        "BizDate": SHANGHAI_DAY_MS,
        "Tags.1": "team:data",
        "Tags.2": "team:ops",
        "SortBy": "Id Asc",
    }
    assert listed(acs3(live, "ListWorkflowInstances", form=form).send()) == [data.id, ops.id]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_booleans_in_either_case(live: LiveServer, scheme: str) -> None:
    for text, value in [("True", True), ("False", False), ("true", True), ("false", False)]:
        _boolean_round_trip(live, scheme, text, value)


def _boolean_round_trip(live: LiveServer, scheme: str, text: str, value: bool) -> None:
    p = project(live.store)
    start = "false" if value else "true"
    ok_json(
        signed(scheme, live, "UpdateProject", {"Id": p.id, "DevEnvironmentEnabled": start}).send()
    )
    ok_json(
        signed(scheme, live, "UpdateProject", {"Id": p.id, "DevEnvironmentEnabled": text}).send()
    )
    found = ok_json(signed(scheme, live, "ListProjects", {"Ids": [p.id]}).send())
    assert found["PagingInfo"]["Projects"][0]["DevEnvironmentEnabled"] is value
    # The SDK form-encodes Python booleans as True/False.
    listed_by_sdk = live.sdk().list_projects(models.ListProjectsRequest(ids=[p.id])).body
    assert listed_by_sdk.paging_info.projects[0].dev_environment_enabled is value


def test_booleans_from_the_sdk(live: LiveServer) -> None:
    p = project(live.store)
    sdk = live.sdk()
    for value in (False, True, False):
        sdk.update_project(models.UpdateProjectRequest(id=p.id, dev_environment_enabled=value))
        got = sdk.get_project(models.GetProjectRequest(id=p.id)).body.project
        assert got.dev_environment_enabled is value
    made = sdk.create_project(
        models.CreateProjectRequest(name=f"bools_{p.id}", dev_environment_enabled=False)
    ).body
    got = sdk.get_project(models.GetProjectRequest(id=made.id)).body.project
    assert got.dev_environment_enabled is False


# Action and version


def test_action_and_version_from_headers_or_parameters(live: LiveServer) -> None:
    p = project(live.store)
    made = instance(p.id)
    put(live.store, [made])
    params = {"ProjectId": p.id, "BizDate": SHANGHAI_DAY_MS}
    by_headers = acs3(live, "ListWorkflowInstances", form=params)
    assert "Action" not in by_headers.query and "x-acs-action" in by_headers.headers
    assert listed(by_headers.send()) == [made.id]
    by_params = v1(live, "ListWorkflowInstances", params)
    assert by_params.query["Action"] == "ListWorkflowInstances"
    assert not any(h.startswith("x-acs-") for h in by_params.headers)
    assert listed(by_params.send()) == [made.id]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(
    ("action", "version"),
    [
        ("ListWorkflowInstancez", "2024-05-18"),
        ("DescribeInstances", "2024-05-18"),
        ("ListWorkflowInstances", "2020-05-18"),
        ("ListWorkflowInstances", "2024-05-19"),
    ],
)
def test_unknown_action_or_version(
    live: LiveServer, scheme: str, action: str, version: str
) -> None:
    p = project(live.store)
    params = {"ProjectId": p.id, "BizDate": SHANGHAI_DAY_MS}
    response = signed(scheme, live, action, params, version=version).send()
    assert_error(response, 404, "InvalidAction.NotFound", action)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_missing_action_or_version(live: LiveServer, scheme: str) -> None:
    no_action = signed(scheme, live, None, {"Id": 1}).send()
    assert_error(no_action, 400, "MissingParameter", "Action")
    no_version = signed(scheme, live, "GetProject", {"Id": 1}, version=None).send()
    assert_error(no_version, 400, "MissingParameter", "Version")


# Authentication: incomplete signatures


def test_an_unsigned_request_is_incomplete(live: LiveServer) -> None:
    raw = acs3(live, "ListProjects", form={"PageSize": 1})
    del raw.headers["authorization"]
    assert_error(raw.send(), 400, "IncompleteSignature")
    bare = HTTP.post(
        f"http://{live.endpoint}/",
        headers={"x-acs-action": "ListProjects", "x-acs-version": "2024-05-18"},
    )
    assert_error(bare, 400, "IncompleteSignature")
    by_params = HTTP.get(
        f"http://{live.endpoint}/", params={"Action": "ListProjects", "Version": "2024-05-18"}
    )
    assert_error(by_params, 400, "IncompleteSignature")


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "garbage",
        "ACS3-HMAC-SHA256",
        "ACS3-HMAC-SHA256 Credential=KEY",
        "ACS3-HMAC-SHA256 Credential=KEY,SignedHeaders=x-acs-date",
        "ACS3-HMAC-SHA256 SignedHeaders=host;x-acs-date,Signature=00",
        "ACS3-HMAC-SHA256 Credential=KEY,Signature=00",
        "ACS3-HMAC-SM3 Credential=KEY,SignedHeaders=host,Signature=00",
        "HMAC-SHA1 Credential=KEY,SignedHeaders=host,Signature=00",
        "Bearer abc",
    ],
)
def test_a_malformed_authorization_is_incomplete(live: LiveServer, authorization: str) -> None:
    raw = acs3(live, "ListProjects", form={"PageSize": 1})
    raw.headers["authorization"] = authorization.replace("KEY", live.key_id)
    assert_error(raw.send(), 400, "IncompleteSignature")


@pytest.mark.parametrize(
    ("omit", "unsigned"),
    [
        (("x-acs-date",), ()),
        (("x-acs-signature-nonce",), ()),
        (("x-acs-content-sha256",), ()),
        ((), ("x-acs-date",)),
        ((), ("x-acs-signature-nonce",)),
        ((), ("x-acs-content-sha256",)),
    ],
)
def test_time_nonce_and_body_hash_must_be_sent_and_signed(
    live: LiveServer, omit: tuple[str, ...], unsigned: tuple[str, ...]
) -> None:
    raw = acs3(live, "ListProjects", form={"PageSize": 1}, omit=omit, unsigned=unsigned)
    assert_error(raw.send(), 400, "IncompleteSignature", (omit or unsigned)[0])


@pytest.mark.parametrize(
    "overrides",
    [
        {"SignatureNonce": None},
        {"Timestamp": None},
        {"AccessKeyId": None},
        {"SignatureMethod": None},
        {"SignatureMethod": "HMAC-SHA256"},
        {"SignatureVersion": None},
        {"SignatureVersion": "2.0"},
    ],
)
def test_a_malformed_v1_signature_is_incomplete(
    live: LiveServer, overrides: dict[str, str | None]
) -> None:
    raw = v1(live, "ListProjects", {"PageSize": 1}, overrides=overrides)
    assert_error(raw.send(), 400, "IncompleteSignature")


# Authentication: wrong signatures


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_wrong_secret_does_not_match(live: LiveServer, algorithm: str) -> None:
    sdk = live.sdk(algorithm, secret=live.secret + "x")
    error = sdk_error(lambda: sdk.list_projects(models.ListProjectsRequest(page_size=1)))
    assert_sdk_error(error, 400, "SignatureDoesNotMatch")
    get = sdk_error(lambda: sdk.get_project(models.GetProjectRequest(id=1)))
    assert_sdk_error(get, 400, "SignatureDoesNotMatch")


def test_a_tampered_acs3_request_does_not_match(live: LiveServer) -> None:
    p = project(live.store)
    form = {"ProjectId": p.id, "BizDate": SHANGHAI_DAY_MS}

    # The body no longer matches x-acs-content-sha256.
    raw = acs3(live, "ListWorkflowInstances", form=form)
    raw.body = raw.body.replace(str(p.id).encode(), str(p.id + 1).encode())
    assert_error(raw.send(), 400, "SignatureDoesNotMatch", "x-acs-content-sha256")
    # The body and its hash both changed, but not the signature.
    raw = acs3(live, "ListWorkflowInstances", form=form)
    raw.body += b"&Name=x"
    raw.headers["x-acs-content-sha256"] = hashlib.sha256(raw.body).hexdigest()
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    # A query parameter changed.
    raw = acs3(live, "GetProject", query={"Id": p.id}, method="GET")
    raw.query["Id"] = str(p.id + 1)
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    # A query parameter added.
    raw = acs3(live, "GetProject", query={"Id": p.id}, method="GET")
    raw.query["Extra"] = "1"
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    # A signed header changed.
    raw = acs3(live, "GetProject", query={"Id": p.id}, method="GET")
    raw.headers["x-acs-action"] = "DeleteProject"
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    # The method changed.
    raw = acs3(live, "GetProject", query={"Id": p.id}, method="GET")
    raw.method = "POST"
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    # Nothing was deleted or changed by any of these.
    ok_json(acs3(live, "GetProject", query={"Id": p.id}, method="GET").send())


def test_a_tampered_v1_request_does_not_match(live: LiveServer) -> None:
    p = project(live.store)
    raw = v1(live, "UpdateProject", {"Id": p.id, "DisplayName": "one"})
    raw.body = raw.body.replace(b"one", b"two")
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    raw = v1(live, "GetProject", {"Id": p.id}, method="GET")
    raw.query["Id"] = str(p.id + 1)
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    raw = v1(live, "GetProject", {"Id": p.id}, method="GET")
    raw.query["Action"] = "DeleteProject"
    assert_error(raw.send(), 400, "SignatureDoesNotMatch")
    shown = ok_json(v1(live, "GetProject", {"Id": p.id}, method="GET").send())
    assert shown["Project"]["DisplayName"] == p.display_name


def test_special_characters_are_canonicalised_as_the_sdk_does(live: LiveServer) -> None:
    p = project(live.store)
    odd = "a b+c*~/é'!()&=%"
    for raw in (
        acs3(live, "GetProject", query={"Id": p.id, "Note": odd}, method="GET"),
        v1(live, "GetProject", {"Id": p.id, "Note": odd}, method="GET"),
        v1(live, "UpdateProject", {"Id": p.id, "Description": odd}),
        acs3(live, "UpdateProject", form={"Id": p.id, "Description": odd}),
    ):
        ok_json(raw.send())
    shown = ok_json(acs3(live, "GetProject", query={"Id": p.id}, method="GET").send())
    assert shown["Project"]["Description"] == odd


# Authentication: keys


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_an_unknown_access_key_is_404(live: LiveServer, algorithm: str) -> None:
    sdk = live.sdk(algorithm, key_id="LTAIdoesNotExist000000", secret=live.secret)
    error = sdk_error(lambda: sdk.list_projects(models.ListProjectsRequest(page_size=1)))
    assert_sdk_error(error, 404, "InvalidAccessKeyId.NotFound", "LTAIdoesNotExist000000")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_disabled_access_key_is_inactive_until_enabled(live: LiveServer, algorithm: str) -> None:
    key = create_key(live.store, "inactive-test", SystemClock().now_ms())
    sdk = live.sdk(algorithm, key_id=key.id, secret=key.secret)

    def call() -> Any:
        return sdk.list_projects(models.ListProjectsRequest(page_size=1))

    call()
    with live.store.write() as tx:
        tx.keys.set_status(key.id, KeyStatus.DISABLED)
    assert_sdk_error(sdk_error(call), 400, "InvalidAccessKeyId.Inactive", key.id)
    with live.store.write() as tx:
        tx.keys.set_status(key.id, KeyStatus.ENABLED)
    assert call().body.request_id


# Authentication: what the v1 signature covers


def test_v1_action_comes_from_the_signed_parameters(live: LiveServer) -> None:
    """The v1 signature covers parameters, not headers: an added x-acs-action header must
    not turn a signed GetProject into a DeleteProject."""
    p = project(live.store)
    raw = v1(live, "GetProject", {"Id": p.id}, method="GET")
    raw.headers["x-acs-action"] = "DeleteProject"
    response = raw.send()
    if response.status_code == 200:
        assert response.json()["Project"]["Id"] == p.id  # the signed action ran
    else:
        assert 400 <= response.status_code < 500
    ok_json(acs3(live, "GetProject", query={"Id": p.id}, method="GET").send())  # still there


def test_v1_body_cannot_override_a_signed_query_parameter(live: LiveServer) -> None:
    """A form body added to a signed v1 GET must not replace the signed `Id`."""
    mine, other = project(live.store), project(live.store)
    raw = v1(live, "GetProject", {"Id": mine.id}, method="GET")
    raw.headers["content-type"] = "application/x-www-form-urlencoded"
    raw.body = f"Id={other.id}".encode()
    # dwsched refuses a parameter given twice (query and body) instead of choosing one.
    assert_error(raw.send(), 400, "InvalidParameter", "Id")


# Authentication: time and replay


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("minutes", [20, -20, 16, 60 * 24 * 365])
def test_a_timestamp_outside_fifteen_minutes_is_expired(
    live: LiveServer, scheme: str, minutes: int
) -> None:
    stamp = utc_stamp(minutes_ago(minutes))
    when = {"date": stamp} if scheme == "acs3" else {"timestamp": stamp}
    raw = signed(scheme, live, "ListProjects", {"PageSize": 1}, **when)
    assert_error(raw.send(), 400, "InvalidTimeStamp.Expired")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_timestamp_inside_the_window_is_accepted(live: LiveServer, scheme: str) -> None:
    for minutes in (14, -14):
        stamp = utc_stamp(minutes_ago(minutes))
        when = {"date": stamp} if scheme == "acs3" else {"timestamp": stamp}
        ok_json(signed(scheme, live, "ListProjects", {"PageSize": 1}, **when).send())


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("stamp", ["2024/06/01 00:00:00", "yesterday", "1717200000"])
def test_a_malformed_timestamp(live: LiveServer, scheme: str, stamp: str) -> None:
    when = {"date": stamp} if scheme == "acs3" else {"timestamp": stamp}
    raw = signed(scheme, live, "ListProjects", {"PageSize": 1}, **when)
    assert_error(raw.send(), 400, "InvalidTimeStamp.Format")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_replayed_request_is_refused(live: LiveServer, scheme: str) -> None:
    p = project(live.store)
    raw = signed(scheme, live, "UpdateProject", {"Id": p.id, "Description": "once"})
    ok_json(raw.send())
    assert_error(raw.send(), 400, "SignatureNonceUsed")
    # A new nonce is a new request.
    ok_json(signed(scheme, live, "UpdateProject", {"Id": p.id, "Description": "twice"}).send())


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_nonce_is_remembered_per_access_key(live: LiveServer, scheme: str) -> None:
    other = create_key(live.store, "nonce-test", SystemClock().now_ms())
    nonce = f"shared-{scheme}-{other.id}"
    mine = signed(scheme, live, "ListProjects", {"PageSize": 1}, nonce=nonce)
    theirs = signed(
        scheme,
        live,
        "ListProjects",
        {"PageSize": 1},
        nonce=nonce,
        key_id=other.id,
        secret=other.secret,
    )
    ok_json(mine.send())
    ok_json(theirs.send())
    assert_error(theirs.send(), 400, "SignatureNonceUsed")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_forged_request_does_not_burn_the_nonce(live: LiveServer, scheme: str) -> None:
    nonce = f"forged-{scheme}-{project(live.store).id}"
    forged = signed(scheme, live, "ListProjects", {"PageSize": 1}, nonce=nonce, secret="wrong")
    assert_error(forged.send(), 400, "SignatureDoesNotMatch")
    ok_json(signed(scheme, live, "ListProjects", {"PageSize": 1}, nonce=nonce).send())


@pytest.mark.parametrize("scheme", SCHEMES)
def test_an_expired_request_does_not_burn_the_nonce(live: LiveServer, scheme: str) -> None:
    nonce = f"late-{scheme}-{project(live.store).id}"
    stamp = utc_stamp(minutes_ago(30))
    when = {"date": stamp} if scheme == "acs3" else {"timestamp": stamp}
    late = signed(scheme, live, "ListProjects", {"PageSize": 1}, nonce=nonce, **when)
    assert_error(late.send(), 400, "InvalidTimeStamp.Expired")
    ok_json(signed(scheme, live, "ListProjects", {"PageSize": 1}, nonce=nonce).send())


def test_nonces_are_shared_by_every_server_on_the_database(live: LiveServer) -> None:
    url = live.store.database.url.render_as_string(hide_password=False)
    with running_server(url) as second:
        for scheme in SCHEMES:
            # The Host header stays the one signed, as behind a load balancer.
            first = signed(scheme, live, "ListProjects", {"PageSize": 1})
            ok_json(first.send())
            replay = dataclasses.replace(first, endpoint=second.endpoint)
            assert_error(replay.send(), 400, "SignatureNonceUsed")

            other_way = signed(scheme, live, "ListProjects", {"PageSize": 1})
            ok_json(dataclasses.replace(other_way, endpoint=second.endpoint).send())
            assert_error(other_way.send(), 400, "SignatureNonceUsed")


# The error envelope


def test_every_error_is_a_json_envelope(live: LiveServer) -> None:
    p = project(live.store)
    responses = [
        acs3(live, "ListWorkflowInstances", form={"ProjectId": p.id}).send(),
        acs3(live, "Nope").send(),
        acs3(live, "GetProject", query={"Id": p.id + 10**6}, method="GET").send(),
        acs3(live, "ListProjects", secret="bad").send(),
        HTTP.post(f"http://{live.endpoint}/", headers={"x-acs-action": "ListProjects"}),
    ]
    for response in responses:
        assert 400 <= response.status_code < 500
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) >= {"RequestId", "HttpStatusCode", "Code", "Message"}
        assert body["HttpStatusCode"] == response.status_code
        assert response.headers.get("x-acs-request-id", body["RequestId"]) == body["RequestId"]
    assert len({r.json()["RequestId"] for r in responses}) == len(responses)


@pytest.mark.parametrize(("method", "path"), [("PUT", "/"), ("DELETE", "/"), ("GET", "/nope")])
def test_other_methods_and_paths_get_the_json_envelope(
    live: LiveServer, method: str, path: str
) -> None:
    response = HTTP.request(method, f"http://{live.endpoint}{path}")
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) >= {"RequestId", "HttpStatusCode", "Code", "Message"}
    assert body["HttpStatusCode"] == response.status_code
