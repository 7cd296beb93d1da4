"""Requests crafted to confuse the parser or the signature check are refused, never a 500."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.api.sdk_helpers import HTTP, acs3, assert_error, v1
from tests.support.factories import project
from tests.support.server import LiveServer


def test_a_query_key_holding_separators_cannot_pose_as_signed_parameters(
    live: LiveServer,
) -> None:
    raw = acs3(live, "ListProjects", query={"PageSize": 5, "Status": "Forbidden"}, method="GET")
    tampered = f"http://{live.endpoint}/?PageSize%3D5%26Status=Forbidden"
    response = HTTP.request("GET", tampered, headers=raw.headers)
    assert_error(response, 400, "InvalidParameter")


def test_a_form_body_needs_a_signed_content_type(live: LiveServer) -> None:
    raw = acs3(live, "ListProjects", form={"PageSize": 1}, unsigned=("content-type",))
    assert_error(raw.send(), 400, "IncompleteSignature")


def test_an_oversized_body_is_refused_before_it_is_read(live: LiveServer) -> None:
    response = HTTP.post(
        f"http://{live.endpoint}/",
        content=b"a=" + b"x" * (1024 * 1024 + 10),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 400, "InvalidParameter", "body")


@pytest.mark.parametrize("key_id", ["\x00", "a b", "k" * 65])
def test_a_malformed_access_key_id_is_not_found(live: LiveServer, key_id: str) -> None:
    raw = v1(live, "ListProjects", {"PageSize": 1}, method="GET", key_id=key_id)
    assert_error(raw.send(), 404, "InvalidAccessKeyId.NotFound")


def test_a_malformed_nonce_is_incomplete(live: LiveServer) -> None:
    raw = acs3(live, "ListProjects", query={"PageSize": 1}, method="GET", nonce="n o")
    assert_error(raw.send(), 400, "IncompleteSignature")


@pytest.mark.parametrize(
    "params",
    [
        {"Ids": "[" * 5000},
        {"Ids.²": "1"},
        {"PageNumber": "9223372036854775807"},
    ],
)
def test_hostile_list_parameters_are_invalid(live: LiveServer, params: dict[str, str]) -> None:
    p = project(live.store)
    raw = acs3(live, "ListProjects", form={"PageSize": 1, **params})
    response = raw.send()
    assert response.status_code == 400, response.text
    assert response.json()["Code"] == "InvalidParameter"
    listed = acs3(live, "ListWorkflowInstances", form={"ProjectId": p.id, "BizDate": 1, **params})
    assert listed.send().status_code == 400


def test_a_held_write_lock_does_not_stall_other_requests(live: LiveServer) -> None:
    """While a long write (an import) holds the database, requests wait on worker threads;
    the server keeps answering (here /healthz) and the waiting request completes after."""
    outcome: list[int] = []
    request = acs3(live, "ListProjects", form={"PageSize": 1})
    with live.store.write() as tx:
        tx.conn.exec_driver_sql("SELECT 1")
        waiting = threading.Thread(target=lambda: outcome.append(request.send().status_code))
        waiting.start()
        time.sleep(0.3)
        started = time.monotonic()
        health = httpx.get(f"http://{live.endpoint}/healthz", timeout=5)
        assert health.status_code == 200 and time.monotonic() - started < 2
    waiting.join(30)
    assert outcome == [200]
