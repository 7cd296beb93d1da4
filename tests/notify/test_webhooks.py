"""Each webhook kind reaches a real HTTP server with its documented body; answers are read
as each platform means them."""

from __future__ import annotations

import pytest

from dwsched.domain.notices import ChannelKind, DeliveryIds, Notice, Target, WebhookFormat
from dwsched.engine.notify import DELIVERY_HEADER, EVENT_HEADER, SCHEMA, NotifySettings, send
from tests.notify.conftest import CONSOLE
from tests.notify.receivers import HttpReceiver, free_port

SETTINGS = NotifySettings(connect_timeout_s=2, total_timeout_s=3)


def test_generic_webhook_gets_the_versioned_json_body(receiver: HttpReceiver, notice: Notice):
    outcome = send(
        notice, Target(ChannelKind.WEBHOOK, receiver.url("/hook?token=s3cret")), SETTINGS
    )

    assert outcome.delivered and not outcome.retryable
    assert "s3cret" not in outcome.detail
    [request] = receiver.requests
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    body = request.json()
    assert body["schema"] == SCHEMA == "dwsched.alert/v1"
    assert body["rule"] == "nightly failures" and body["trigger"] == "Error"
    assert body["workspace"] == {"id": 1, "name": "growth"}
    assert body["workflow"] == {"id": 42, "name": "orders_chain"}
    assert body["task"] == {"id": 4201, "name": "extract_orders"}
    assert body["workflowInstanceId"] == 7001 and body["taskInstanceId"] == 9001
    assert body["bizDate"] == "2024-05-17" and body["status"] == "Failure"
    assert body["runNumber"] == 2 and body["timeZone"] == "Asia/Shanghai"
    assert body["occurredAt"] == "2024-05-18T01:02:03+00:00"
    assert body["logTail"][-1] == "ERROR: relation orders does not exist"
    assert body["consoleUrl"] == CONSOLE
    assert CONSOLE in body["text"] and body["summary"] in body["text"]


def test_a_delivery_names_itself_in_headers_and_in_dwscheds_body(
    receiver: HttpReceiver, notice: Notice
):
    target = Target(ChannelKind.WEBHOOK, receiver.url("/hook"))
    ids = DeliveryIds(delivery_id=31, event_id=17)

    assert send(notice, target, SETTINGS, ids).delivered
    assert send(notice, target, SETTINGS, ids).delivered  # a second try of the same delivery
    assert send(notice, target, SETTINGS).delivered  # a sample notice: no delivery

    first, again, sample = receiver.requests
    for request in (first, again):
        assert request.headers[DELIVERY_HEADER] == "31" == request.headers["X-Dwsched-Delivery"]
        assert request.headers[EVENT_HEADER] == "17" == request.headers["X-Dwsched-Event"]
        assert (request.json()["deliveryId"], request.json()["eventId"]) == (31, 17)
    assert first.body == again.body
    assert DELIVERY_HEADER not in sample.headers and EVENT_HEADER not in sample.headers
    assert sample.json()["deliveryId"] is None and sample.json()["eventId"] is None


@pytest.mark.parametrize(
    ("kind", "fmt", "fields"),
    [
        (ChannelKind.WEBHOOK, WebhookFormat.SLACK, {"text"}),
        (ChannelKind.WEBHOOK, WebhookFormat.TEAMS, {"type", "attachments"}),
        (ChannelKind.DINGDING, WebhookFormat.JSON, {"msgtype", "text", "at"}),
        (ChannelKind.WEIXIN, WebhookFormat.JSON, {"msgtype", "text"}),
        (ChannelKind.FEISHU, WebhookFormat.JSON, {"msg_type", "content"}),
    ],
)
def test_vendor_webhooks_get_the_headers_and_their_own_body_unchanged(
    receiver: HttpReceiver, notice: Notice, kind: ChannelKind, fmt: WebhookFormat, fields: set[str]
):
    receiver.answers["/robot/x"] = b'{"errcode":0,"errmsg":"ok"}'
    target = Target(kind, receiver.url("/robot/x"), fmt)

    assert send(notice, target, SETTINGS, DeliveryIds(delivery_id=5, event_id=4)).delivered
    [request] = receiver.requests
    assert request.headers[DELIVERY_HEADER] == "5" and request.headers[EVENT_HEADER] == "4"
    assert set(request.json()) == fields  # the vendor's body, nothing of ours added


def test_slack_gets_mrkdwn_text_with_the_console_link(receiver: HttpReceiver, notice: Notice):
    target = Target(ChannelKind.WEBHOOK, receiver.url("/services/T0/B0/x"), WebhookFormat.SLACK)

    assert send(notice, target, SETTINGS).delivered
    text = receiver.requests[0].json()["text"]
    assert text.startswith("*[dwsched] Error: extract_orders in orders_chain (growth)*")
    assert f"<{CONSOLE}|Open in the dwsched console>" in text
    assert "```loading orders\nERROR: relation orders does not exist```" in text


def test_teams_gets_an_adaptive_card(receiver: HttpReceiver, notice: Notice):
    target = Target(ChannelKind.WEBHOOK, receiver.url("/workflows/x"), WebhookFormat.TEAMS)

    assert send(notice, target, SETTINGS).delivered
    body = receiver.requests[0].json()
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["actions"][0]["url"] == CONSOLE
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["Task instance"] == "9001" and facts["BizDate"] == "2024-05-17"


def test_dingtalk_gets_a_text_message_and_at_all(receiver: HttpReceiver, notice: Notice):
    receiver.answers["/robot/send?access_token=abc123"] = b'{"errcode":0,"errmsg":"ok"}'
    url = receiver.url("/robot/send?access_token=abc123")

    outcome = send(notice, Target(ChannelKind.DINGDING, url, at_all=True), SETTINGS)

    assert outcome.delivered, outcome.detail
    assert "abc123" not in outcome.detail
    body = receiver.requests[0].json()
    assert body["msgtype"] == "text" and body["at"] == {"isAtAll": True}
    assert body["text"]["content"].startswith("[dwsched] Error: extract_orders")
    assert CONSOLE in body["text"]["content"]


def test_wecom_gets_a_text_message(receiver: HttpReceiver, notice: Notice):
    url = receiver.url("/cgi-bin/webhook/send?key=k-123")
    assert send(notice, Target(ChannelKind.WEIXIN, url), SETTINGS).delivered
    body = receiver.requests[0].json()
    assert body["msgtype"] == "text" and CONSOLE in body["text"]["content"]
    assert len(body["text"]["content"].encode()) <= 2048


def test_feishu_gets_a_text_message(receiver: HttpReceiver, notice: Notice):
    url = receiver.url("/open-apis/bot/v2/hook/0f8e-token")
    outcome = send(notice, Target(ChannelKind.FEISHU, url), SETTINGS)

    assert outcome.delivered and "0f8e-token" not in outcome.detail
    body = receiver.requests[0].json()
    assert body["msg_type"] == "text" and CONSOLE in body["content"]["text"]


@pytest.mark.parametrize(
    ("kind", "answer", "retryable"),
    [
        (ChannelKind.DINGDING, b'{"errcode":310000,"errmsg":"keywords not in content"}', False),
        (ChannelKind.DINGDING, b'{"errcode":130101,"errmsg":"send too fast"}', True),
        (ChannelKind.WEIXIN, b'{"errcode":93000,"errmsg":"invalid webhook url"}', False),
        (ChannelKind.FEISHU, b'{"code":19021,"msg":"sign match fail"}', False),
    ],
)
def test_a_robot_refusal_in_an_http_200_is_not_a_delivery(
    receiver: HttpReceiver, notice: Notice, kind: ChannelKind, answer: bytes, retryable: bool
):
    receiver.answers["/robot/x"] = answer
    outcome = send(notice, Target(kind, receiver.url("/robot/x")), SETTINGS)
    assert not outcome.delivered and outcome.retryable is retryable
    assert "refused the message" in outcome.detail


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (404, False)]
)
def test_server_errors_may_be_retried_client_errors_not(
    receiver: HttpReceiver, notice: Notice, status: int, retryable: bool
):
    outcome = send(notice, Target(ChannelKind.WEBHOOK, receiver.url(f"/status/{status}")), SETTINGS)
    assert not outcome.delivered and outcome.retryable is retryable
    assert f"HTTP {status}" in outcome.detail


def test_connection_refused_may_be_retried(notice: Notice):
    url = f"http://127.0.0.1:{free_port()}/hook"
    outcome = send(notice, Target(ChannelKind.WEBHOOK, url), SETTINGS)
    assert not outcome.delivered and outcome.retryable
    assert "could not connect" in outcome.detail


def test_sms_and_phone_are_refused_with_the_way_to_be_notified(notice: Notice):
    for kind in (ChannelKind.SMS, ChannelKind.PHONE):
        outcome = send(notice, Target(kind, "+8613800000000"), SETTINGS)
        assert not outcome.delivered and not outcome.retryable
        assert "WebhookUrl" in outcome.detail and "Mail" in outcome.detail
