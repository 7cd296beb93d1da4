"""Helpers for the API tests: SDK calls, caught SDK errors, and hand-signed raw requests.

Raw requests are signed with `dwsched.signing` exactly as the official SDK signs them
(reference/dataworks-api.md §5), so that a test can change one thing (a header, the body, the
time, the nonce) and see what the server makes of it.
"""

from __future__ import annotations

import atexit
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from alibabacloud_dataworks_public20240518 import models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ClientException

from dwsched import signing
from dwsched.domain.models import WorkflowInstance
from tests.support.factories import SHANGHAI_DAY_MS
from tests.support.server import LiveServer

VERSION = "2024-05-18"
# One connection pool for every raw request: a new httpx client per request costs ~100 ms.
HTTP = httpx.Client(timeout=30)
atexit.register(HTTP.close)
ALGORITHMS = ["v3", "v2"]  # v2 = the SDK's name for the v1 HMAC-SHA1 RPC signature


# The official SDK


def list_instances(
    live: LiveServer,
    project_id: int,
    biz_date: int = SHANGHAI_DAY_MS,
    algorithm: str = "v3",
    **fields: Any,
) -> models.ListWorkflowInstancesResponseBodyPagingInfo:
    """ListWorkflowInstances through the SDK; `fields` are the request model's attributes."""
    request = models.ListWorkflowInstancesRequest(
        project_id=project_id, biz_date=biz_date, **fields
    )
    body = live.sdk(algorithm).list_workflow_instances(request).body
    assert body.request_id
    return body.paging_info


def listed_ids(
    live: LiveServer,
    project_id: int,
    biz_date: int = SHANGHAI_DAY_MS,
    algorithm: str = "v3",
    **fields: Any,
) -> list[int]:
    fields.setdefault("page_size", 500)
    paging = list_instances(live, project_id, biz_date, algorithm, **fields)
    return [i.id for i in paging.workflow_instances]


def sdk_error(call: Callable[[], Any]) -> AlibabaCloudException:
    """The error a call raises (fails the test when it succeeds).

    Server errors are caught too, so that an unexpected 500 fails the assertion on the status
    with a short message rather than with a traceback through the SDK.
    """
    with pytest.raises(AlibabaCloudException) as caught:
        call()
    return caught.value


def assert_sdk_error(
    error: AlibabaCloudException, status: int, code: str, names: str | None = None
) -> None:
    """The SDK error has this HTTP status and Code, a full envelope, and names `names`.

    A 4xx arrives as the SDK's ClientException.
    """
    assert (error.status_code, error.code) == (status, code), error.data
    assert isinstance(error, ClientException) == (status < 500)
    data = error.data
    assert data["Code"] == code
    assert data["HttpStatusCode"] == status
    assert data["RequestId"] and data["RequestId"] == error.request_id
    assert isinstance(data["Message"], str) and data["Message"]
    if names is not None:
        assert names in data["Message"], data["Message"]


# Raw, hand-signed HTTP


@dataclass
class Raw:
    """One signed request, ready to send (and to send again, byte for byte)."""

    endpoint: str
    method: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    @property
    def url(self) -> str:
        base = f"http://{self.endpoint}/"
        return f"{base}?{urlencode(self.query)}" if self.query else base

    def send(self) -> httpx.Response:
        return HTTP.request(self.method, self.url, headers=self.headers, content=self.body)


def _text(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (params or {}).items():
        if v is None:
            continue
        out[k] = json.dumps(v, separators=(",", ":")) if isinstance(v, list | dict) else str(v)
    return out


def utc_stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def acs3(
    live: LiveServer,
    action: str | None,
    *,
    form: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
    method: str = "POST",
    version: str | None = VERSION,
    key_id: str | None = None,
    secret: str | None = None,
    date: str | None = None,
    nonce: str | None = None,
    omit: tuple[str, ...] = (),
    unsigned: tuple[str, ...] = (),
) -> Raw:
    """An ACS3-HMAC-SHA256 signed request, signed over every header it sends.

    `omit` names headers not to send at all; `unsigned` headers sent but left out of
    SignedHeaders.
    """
    q = _text(query)
    f = _text(form)
    body = urlencode(f).encode() if f else b""
    headers = {
        "accept": "application/json",
        "host": live.endpoint,
        "x-acs-date": date or utc_stamp(),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": signing.body_sha256(body),
    }
    if action is not None:
        headers["x-acs-action"] = action
    if version is not None:
        headers["x-acs-version"] = version
    if body:
        headers["content-type"] = "application/x-www-form-urlencoded"
    for name in omit:
        headers.pop(name, None)
    signed = sorted(h for h in headers if h not in unsigned)
    string_to_sign = signing.acs3_string_to_sign(
        method, "/", q, headers, signed, signing.body_sha256(body)
    )
    signature = signing.acs3_signature(string_to_sign, secret or live.secret)
    headers["authorization"] = signing.acs3_authorization(key_id or live.key_id, signed, signature)
    return Raw(live.endpoint, method, q, headers, body)


def v1(
    live: LiveServer,
    action: str | None,
    params: Mapping[str, Any] | None = None,
    *,
    method: str = "POST",
    version: str | None = VERSION,
    key_id: str | None = None,
    secret: str | None = None,
    timestamp: str | None = None,
    nonce: str | None = None,
    in_query: Mapping[str, Any] | None = None,
    overrides: Mapping[str, str | None] | None = None,
) -> Raw:
    """A v1 (HMAC-SHA1) RPC request: Action/Version as parameters, no x-acs-* headers.

    Business parameters travel in the form body (POST) or the query (GET), as the SDK does;
    `in_query` ones always in the query. `overrides` replace (or, with None, drop) signature
    parameters before signing.
    """
    business = _text(params)
    query = {
        "Format": "json",
        "Timestamp": timestamp or utc_stamp(),
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "AccessKeyId": key_id or live.key_id,
    }
    if action is not None:
        query["Action"] = action
    if version is not None:
        query["Version"] = version
    form: dict[str, str] = {}
    if method == "GET":
        query.update(business)
    else:
        form = business
    query.update(_text(in_query))
    for name, value in (overrides or {}).items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    string_to_sign = signing.rpc_string_to_sign(method, {**query, **form})
    query["Signature"] = signing.rpc_signature(string_to_sign, secret or live.secret)
    body = urlencode(form).encode() if form else b""
    headers = {"accept": "application/json"}
    if body:
        headers["content-type"] = "application/x-www-form-urlencoded"
    return Raw(live.endpoint, method, query, headers, body)


def ok_json(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    data: dict[str, Any] = response.json()
    assert data["RequestId"]
    return data


def assert_error(
    response: httpx.Response, status: int, code: str, names: str | None = None
) -> dict[str, Any]:
    """An error response: this status and Code, and the full JSON envelope."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    data: dict[str, Any] = response.json()
    assert data["Code"] == code, data
    assert data["HttpStatusCode"] == status
    assert isinstance(data["RequestId"], str) and data["RequestId"]
    assert isinstance(data["Message"], str) and data["Message"]
    if names is not None:
        assert names in data["Message"], data["Message"]
    return data


# Workflow instance items

ITEM_FIELDS = {
    "BizDate": "biz_date",
    "CreateTime": "create_time",
    "CreateUser": "create_user",
    "EnvType": "env_type",
    "FinishedTime": "finished_time",
    "Id": "id",
    "ModifyTime": "modify_time",
    "ModifyUser": "modify_user",
    "Name": "name",
    "Owner": "owner",
    "ProjectId": "project_id",
    "StartedTime": "started_time",
    "Status": "status",
    "Tags": "tags",
    "Type": "type",
    "UnifiedWorkflowInstanceId": "unified_workflow_instance_id",
    "WorkflowId": "workflow_id",
    "WorkflowParameters": "workflow_parameters",
    "WorkflowTaskInstanceId": "workflow_task_instance_id",
}


def item_fields(item: Any) -> dict[str, Any]:
    """An SDK workflow-instance model as {wire name: value}, tags as [{Key, Value}]."""
    out = {wire: getattr(item, attr) for wire, attr in ITEM_FIELDS.items()}
    out["Tags"] = [{"Key": t.key, "Value": t.value} for t in out["Tags"] or []]
    return out


def expected_item(i: WorkflowInstance, biz_date_ms: int) -> dict[str, Any]:
    """What the API must show for an instance whose BizDate day starts at `biz_date_ms`."""
    return {
        "BizDate": biz_date_ms,
        "CreateTime": i.create_time,
        "CreateUser": i.create_user,
        "EnvType": i.env_type.value,
        "FinishedTime": i.finished_time,
        "Id": i.id,
        "ModifyTime": i.modify_time,
        "ModifyUser": i.modify_user,
        "Name": i.name,
        "Owner": i.owner,
        "ProjectId": i.project_id,
        "StartedTime": i.started_time,
        "Status": i.status.value,
        "Tags": [{"Key": t.key, "Value": t.value} for t in i.tags],
        "Type": i.type.value,
        "UnifiedWorkflowInstanceId": i.unified_workflow_instance_id,
        "WorkflowId": i.workflow_id,
        "WorkflowParameters": i.workflow_parameters,
        "WorkflowTaskInstanceId": i.workflow_task_instance_id,
    }
