"""Alert rules' pure rules (domain.alerts): masking, what a masked URL sent back stands
for, fields the SDK's models cannot send (unknown keys)."""

from __future__ import annotations

import pytest

from dwsched.domain import alerts
from dwsched.domain.errors import InvalidArgument


@pytest.mark.parametrize(
    "url, shown",
    [
        (
            "https://hooks.slack.com/services/T0/B0/XYZ",
            "https://hooks.slack.com/services/T0/B0/****",
        ),
        (
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K",
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/****?key=****",
        ),
        ("http://10.0.0.5:8080/", "http://10.0.0.5:8080/"),
        ("https://example.com/hook/TOKEN/", "https://example.com/hook/****/"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert alerts.mask_url(url) == shown


def test_a_masked_url_stands_for_the_stored_urls_in_turn() -> None:
    first = "https://oapi.dingtalk.com/robot/send?access_token=A"
    second = "https://oapi.dingtalk.com/robot/send?access_token=B"
    document = {
        "Channels": ["Dingding"],
        "Receivers": [{"ReceiverType": "DingdingUrl", "ReceiverValues": [first, second]}],
    }
    stored = alerts.parse_notification(document)
    shown = alerts.notification_document(alerts.masked(stored))
    assert "access_token=A" not in str(shown)
    again = alerts.parse_notification(shown, previous=stored)
    assert again.receivers[0].values == (first, second)
    with pytest.raises(InvalidArgument) as caught:
        alerts.parse_notification(shown)  # nothing stored: a masked URL is refused
    assert caught.value.param == "Notification.Receivers.ReceiverValues"


def test_unknown_fields_are_named() -> None:
    with pytest.raises(InvalidArgument) as caught:
        alerts.parse_trigger({"Type": "Error", "Target": {"Type": "Task", "Ids": [1]}, "X": 1})
    assert caught.value.param == "TriggerCondition.X"
    with pytest.raises(InvalidArgument) as caught:
        alerts.parse_notification(
            {"Channels": ["Mail"], "Receivers": [{"ReceiverType": "TaskOwner"}], "Sms": 1}
        )
    assert caught.value.param == "Notification.Sms"


def test_audit_text_is_masked() -> None:
    text = '{"Receivers":[{"ReceiverValues":["https://h.example/hook/TOKEN?k=SECRET"]}]}'
    assert "TOKEN" not in alerts.mask_document_text(text)
    assert "SECRET" not in alerts.mask_document_text(text)
