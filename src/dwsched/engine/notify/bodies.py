"""What each webhook kind receives, and how its answer is read.

`WebhookUrl` with format `json` receives dwsched's own body (`webhook_body`, versioned,
documented in docs/alerts.md "Webhook body"); `slack` and `teams` the incoming-webhook
formats of Slack and Microsoft Teams (Workflows, an Adaptive Card); `DingdingUrl`,
`WeixinUrl` and `FeishuUrl` the text message of each robot's documented API. The chat
robots answer HTTP 200 with an error code in the body when they refuse a message, so their
answers are read as well as their status.

Every webhook kind also carries the delivery's identity in two headers
(`identity_headers`), and dwsched's own body carries it as fields: a receiver can
recognise a notice it has had already (a try repeated after a lost answer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime

from dwsched.domain.notices import (
    ChannelKind,
    DeliveryIds,
    Notice,
    Target,
    WebhookFormat,
    fact_rows,
)
from dwsched.engine.notify.errors import Undeliverable

SCHEMA = "dwsched.alert/v1"
DELIVERY_HEADER = "X-Dwsched-Delivery"
EVENT_HEADER = "X-Dwsched-Event"

# Robots' per-message limits, in UTF-8 bytes, with room left for the JSON around the text.
_TEXT_LIMIT = {
    ChannelKind.DINGDING: 18_000,
    ChannelKind.WEIXIN: 2_000,
    ChannelKind.FEISHU: 18_000,
}
# Robot error codes that mean "too many messages, later": DingTalk 130101, WeCom 45009.
_RATE_LIMITED = frozenset({130101, 45009})


def webhook_body(notice: Notice, ids: DeliveryIds | None = None) -> dict[str, object]:
    """dwsched's JSON body, version 1: fields are added within a version, never renamed or
    removed (a breaking change is `dwsched.alert/v2`). `eventId` and `deliveryId` are null
    for a notice sent as no recorded delivery (a test)."""
    facts = notice.facts
    return {
        "schema": SCHEMA,
        "eventId": None if ids is None else ids.event_id,
        "deliveryId": None if ids is None else ids.delivery_id,
        "title": notice.title,
        "summary": notice.summary,
        "text": notice.body,
        "rule": facts.rule_name,
        "trigger": facts.trigger,
        "workspace": {"id": facts.workspace_id, "name": facts.workspace},
        "workflow": {"id": facts.workflow_id, "name": facts.workflow},
        "task": {"id": facts.task_id, "name": facts.task_name},
        "workflowInstanceId": facts.workflow_instance_id,
        "taskInstanceId": facts.task_instance_id,
        "bizDate": _iso(facts.biz_date),
        "status": facts.status,
        "runNumber": facts.run_number,
        "occurredAt": _iso(facts.occurred_at),
        "startedAt": _iso(facts.started_at),
        "finishedAt": _iso(facts.finished_at),
        "timeZone": facts.zone,
        "logTail": list(facts.log_tail),
        "consoleUrl": notice.console_url,
    }


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def payload(notice: Notice, target: Target, ids: DeliveryIds | None = None) -> bytes:
    """The request body `target` receives for `notice` sent as the delivery `ids`."""
    body: dict[str, object]
    if target.kind is ChannelKind.WEBHOOK and target.format is WebhookFormat.JSON:
        body = webhook_body(notice, ids)
    elif target.kind is ChannelKind.WEBHOOK:
        body = _FORMATS[target.format](notice)
    else:
        body = _robot_body(notice, target)
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def identity_headers(ids: DeliveryIds | None) -> tuple[tuple[str, str], ...]:
    """The headers naming the delivery and its alert, sent with every webhook kind (the
    vendors' bodies are fixed, their servers ignore header fields they do not know); none
    for a notice that is no recorded delivery."""
    if ids is None:
        return ()
    return ((DELIVERY_HEADER, str(ids.delivery_id)), (EVENT_HEADER, str(ids.event_id)))


def _chat_text(notice: Notice, kind: ChannelKind) -> str:
    text = f"{notice.title}\n{notice.body}"
    encoded = text.encode("utf-8")
    limit = _TEXT_LIMIT[kind]
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode("utf-8", "ignore") + "…"


def _robot_body(notice: Notice, target: Target) -> dict[str, object]:
    text = _chat_text(notice, target.kind)
    if target.kind is ChannelKind.DINGDING:
        return {"msgtype": "text", "text": {"content": text}, "at": {"isAtAll": target.at_all}}
    if target.kind is ChannelKind.WEIXIN:
        mention = {"mentioned_list": ["@all"]} if target.at_all else {}
        return {"msgtype": "text", "text": {"content": text, **mention}}
    if target.kind is ChannelKind.FEISHU:
        return {"msg_type": "text", "content": {"text": text}}
    raise Undeliverable(f"{target.kind.value} is not a webhook")


def _slack(notice: Notice) -> dict[str, object]:
    def escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    facts = "\n".join(f"*{escape(k)}:* {escape(v)}" for k, v in fact_rows(notice.facts))
    log = "\n".join(notice.facts.log_tail)
    text = f"*{escape(notice.title)}*\n{escape(notice.summary)}\n{facts}"
    text += f"\n<{notice.console_url}|Open in the dwsched console>"
    if log:
        text += f"\n```{escape(log)}```"
    return {"text": text}


def _teams(notice: Notice) -> dict[str, object]:
    card: list[dict[str, object]] = [
        {"type": "TextBlock", "text": notice.title, "weight": "Bolder", "size": "Medium"},
        {"type": "TextBlock", "text": notice.summary, "wrap": True},
        {
            "type": "FactSet",
            "facts": [{"title": k, "value": v} for k, v in fact_rows(notice.facts)],
        },
    ]
    if notice.facts.log_tail:
        log = "\n".join(notice.facts.log_tail)
        card.append({"type": "TextBlock", "text": log, "fontType": "Monospace", "wrap": True})
    content = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": card,
        "actions": [
            {"type": "Action.OpenUrl", "title": "Open in console", "url": notice.console_url}
        ],
    }
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "content": content}
    return {"type": "message", "attachments": [attachment]}


_FORMATS: dict[WebhookFormat, Callable[[Notice], dict[str, object]]] = {
    WebhookFormat.SLACK: _slack,
    WebhookFormat.TEAMS: _teams,
}


def robot_refusal(kind: ChannelKind, answer: bytes) -> Undeliverable | None:
    """The refusal in a chat robot's HTTP 200 answer (`errcode`/`code` not 0), or None."""
    if kind not in _TEXT_LIMIT:
        return None
    try:
        document = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    code = document.get("errcode", document.get("code", document.get("StatusCode", 0)))
    if code in (0, None):
        return None
    message = str(document.get("errmsg", document.get("msg", "")))[:120]
    printable = "".join(c if c.isprintable() else " " for c in message)
    return Undeliverable(
        f"the {kind.value} robot refused the message: {code} {printable}".rstrip(),
        retryable=code in _RATE_LIMITED,
    )
