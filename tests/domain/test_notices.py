"""Notices and targets (pure): what a rule may name, how a notice reads, what is redacted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dwsched.domain.errors import InvalidArgument
from dwsched.domain.notices import (
    LOG_LINE_CHARS,
    LOG_LINES,
    ChannelKind,
    NoticeFacts,
    WebhookFormat,
    compose,
    parse_target,
    redact,
)

AT = datetime(2024, 5, 18, 16, 30, tzinfo=UTC)


def facts(**changes: object) -> NoticeFacts:
    values: dict[str, object] = {
        "rule_name": "r",
        "trigger": "Timeout",
        "workspace": "ws",
        "workflow": "wf",
        "task_name": "t",
        "occurred_at": AT,
        "zone": "Asia/Shanghai",
    }
    values.update(changes)
    return NoticeFacts(**values)  # type: ignore[arg-type]


def test_a_notice_says_what_where_when_and_links_the_console():
    notice = compose(facts(status="Running", task_instance_id=5), "http://c/console/#/x")
    assert notice.title == "[dwsched] Timeout: t in wf (ws)"
    assert notice.summary == "Timeout (Running): task t of workflow wf at 2024-05-19 00:30:00+08:00"
    assert "Task instance: 5" in notice.body
    assert notice.body.endswith("Console: http://c/console/#/x")


def test_the_log_tail_is_cut_to_the_last_lines_and_a_bounded_width():
    lines = (*(f"line {i}" for i in range(100)), "x" * 10_000)
    notice = compose(facts(log_tail=lines), "http://c/")
    tail = notice.facts.log_tail
    assert len(tail) == LOG_LINES and tail[0] == "line 81"
    assert len(tail[-1]) == LOG_LINE_CHARS and tail[-1].endswith("…")


@pytest.mark.parametrize(
    ("kind", "address", "extension", "expected"),
    [
        ("WebhookUrl", "https://hooks.slack.com/services/T/B/x", "", WebhookFormat.SLACK),
        ("WebhookUrl", "https://acme.webhook.office.com/webhookb2/x", "", WebhookFormat.TEAMS),
        (
            "WebhookUrl",
            "https://prod-1.westus.logic.azure.com/workflows/x",
            "",
            WebhookFormat.TEAMS,
        ),
        ("WebhookUrl", "https://alerts.example.com/in", "", WebhookFormat.JSON),
        (
            "WebhookUrl",
            "https://relay.example.com/slack",
            '{"format": "slack"}',
            WebhookFormat.SLACK,
        ),
        (
            "DingdingUrl",
            "https://oapi.dingtalk.com/robot/send?access_token=a",
            "",
            WebhookFormat.JSON,
        ),
    ],
)
def test_webhook_formats(kind: str, address: str, extension: str, expected: WebhookFormat):
    assert parse_target(kind, address, "Receivers", extension=extension).format is expected


def test_dingtalk_at_all_comes_from_the_extension():
    url = "https://oapi.dingtalk.com/robot/send?access_token=a"
    target = parse_target("DingdingUrl", url, "Receivers", extension='{"atAll": true}')
    assert target.kind is ChannelKind.DINGDING and target.at_all


@pytest.mark.parametrize("kind", ["Sms", "Phone"])
def test_sms_and_phone_are_refused_saying_how_to_be_notified_instead(kind: str):
    with pytest.raises(InvalidArgument) as caught:
        parse_target(kind, "+8613800000000", "Channels")
    assert caught.value.param == "Channels"
    assert caught.value.message.startswith(f"{kind} needs a gateway")
    assert "Mail" in caught.value.message and "WebhookUrl" in caught.value.message


@pytest.mark.parametrize(
    ("kind", "address", "message"),
    [
        ("Mail", "not an address", "is not an e-mail address"),
        ("Mail", "a@b.c\r\nBcc: x@y.z", "is not an e-mail address"),
        ("WebhookUrl", "ftp://x/y", "http or https"),
        ("WebhookUrl", "https://u:p@x/y", "may not carry a user or password"),
        ("FeishuUrl", "https://x/ y", "spaces or control characters"),
        ("Pager", "x", "unknown channel"),
    ],
)
def test_bad_targets_are_refused_naming_the_parameter(kind: str, address: str, message: str):
    with pytest.raises(InvalidArgument, match=message) as caught:
        parse_target(kind, address, "Receivers")
    assert caught.value.param == "Receivers"


def test_redact_keeps_host_and_path_never_the_token():
    assert redact("https://oapi.dingtalk.com/robot/send?access_token=abcdef") == (
        "https://oapi.dingtalk.com/robot/****?access_token=****"
    )
    assert redact("https://open.feishu.cn/open-apis/bot/v2/hook/0f8e") == (
        "https://open.feishu.cn/open-apis/bot/v2/hook/****"
    )
    # A token as the first segment of the path is masked too.
    assert redact("https://hooks.example.com/T0KENsecret") == "https://hooks.example.com/****"
    assert redact("http://[::1]:8080/x") == "http://[::1]:8080/****"
    assert redact("oncall@example.com") == "oncall@example.com"
    target = parse_target(
        "WeixinUrl", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", "R"
    )
    assert "key=k" not in repr(target)
