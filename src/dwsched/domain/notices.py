"""Alert notices and where they go: the values the alert evaluator hands to
`dwsched.engine.notify.send`, and the answer it gets back. No I/O.

A `Notice` is one message about one instance (what happened, where, when, its last log
lines, the console link); a `Target` is one receiver (an e-mail address or a webhook URL of
a given kind); an `Outcome` says whether it was delivered and whether trying again may
help. `parse_target` validates what a rule names, so that a rule is refused when it is
created rather than when it fires.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from dwsched.domain.alerts import mask_url
from dwsched.domain.errors import InvalidArgument

LOG_LINES = 20
"""How many of the last log lines a notice carries."""

LOG_LINE_CHARS = 500
"""Longer log lines are cut to this many characters (with an ellipsis)."""


class ChannelKind(StrEnum):
    """Where a notice goes, spelled as DataWorks spells its channels and receiver types."""

    MAIL = "Mail"
    WEBHOOK = "WebhookUrl"
    DINGDING = "DingdingUrl"
    WEIXIN = "WeixinUrl"
    FEISHU = "FeishuUrl"
    SMS = "Sms"
    PHONE = "Phone"


class WebhookFormat(StrEnum):
    """The body a `WebhookUrl` receives: dwsched's own JSON, or a Slack or Microsoft Teams
    incoming webhook's format."""

    JSON = "json"
    SLACK = "slack"
    TEAMS = "teams"


URL_KINDS = frozenset(
    {ChannelKind.WEBHOOK, ChannelKind.DINGDING, ChannelKind.WEIXIN, ChannelKind.FEISHU}
)
UNSUPPORTED_KINDS = frozenset({ChannelKind.SMS, ChannelKind.PHONE})

NO_GATEWAY = (
    "{kind} needs a gateway that a self-hosted dwsched does not have. Get notified by Mail, "
    "by a DingdingUrl, WeixinUrl or FeishuUrl robot, or by a WebhookUrl pointing at your own "
    "SMS or paging service (its JSON body is documented in docs/alerts.md)."
)

_MAIL = re.compile(r"[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_SLACK_HOSTS = ("hooks.slack.com",)
_TEAMS_HOST_SUFFIXES = (".webhook.office.com", ".logic.azure.com", ".powerplatform.com")


@dataclass(frozen=True, slots=True)
class Target:
    """One receiver: the kind of channel and its address (an e-mail address for `Mail`, a
    URL for the others). `at_all` asks a DingTalk robot to @ everyone."""

    kind: ChannelKind
    address: str = field(repr=False)
    format: WebhookFormat = WebhookFormat.JSON
    at_all: bool = False

    def __repr__(self) -> str:
        return f"Target({self.kind.value}, {redact(self.address)})"


@dataclass(frozen=True, slots=True)
class DeliveryIds:
    """Which recorded alert (`alert_events.id`) and which of its deliveries
    (`alert_deliveries.id`) a notice is sent as: the same on every try of that delivery, so
    that a receiver can recognise a notice it has had already. A sample notice (`dwsched
    alerts test`) is recorded nowhere and has none."""

    delivery_id: int
    event_id: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer of one delivery: `detail` is short and safe to show and store (it never
    holds a whole webhook URL or a password); `retryable` says whether the same notice may
    get through later (a timeout, a 5xx, a server down), as opposed to a refusal that will
    not change by itself (a 4xx, the outbound guard, a bad address)."""

    delivered: bool
    detail: str
    retryable: bool = False

    @classmethod
    def ok(cls, detail: str) -> Outcome:
        return cls(True, detail, False)

    @classmethod
    def failed(cls, detail: str, *, retryable: bool) -> Outcome:
        return cls(False, detail, retryable)


@dataclass(frozen=True, slots=True)
class NoticeFacts:
    """What a notice is about, as structured fields (the webhook body carries them all).
    Times are aware; they are shown in `zone` (the workspace's time zone)."""

    rule_name: str
    trigger: str
    workspace: str
    workflow: str
    task_name: str
    occurred_at: datetime
    zone: str = "UTC"
    workspace_id: int | None = None
    workflow_id: int | None = None
    task_id: int | None = None
    workflow_instance_id: int | None = None
    task_instance_id: int | None = None
    biz_date: date | None = None
    status: str | None = None
    run_number: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    log_tail: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Notice:
    """One alert message: a title (a mail's subject), a one-line summary (what chat robots
    show first), a plain-text body, the facts, and the console page of the instance."""

    title: str
    summary: str
    body: str
    facts: NoticeFacts
    console_url: str


def compose(facts: NoticeFacts, console_url: str) -> Notice:
    """The standard notice for `facts`: what happened, where, when, the last log lines and
    the console link. The log tail is cut to `LOG_LINES` lines of `LOG_LINE_CHARS`."""
    facts = _trimmed(facts)
    title = f"[dwsched] {facts.trigger}: {facts.task_name} in {facts.workflow} ({facts.workspace})"
    summary = _summary(facts)
    facts_text = [f"{name}: {value}" for name, value in fact_rows(facts)]
    lines = [summary, "", *facts_text, f"Console: {console_url}"]
    if facts.log_tail:
        lines += ["", f"Last {len(facts.log_tail)} log lines:", *facts.log_tail]
    return Notice(title, summary, "\n".join(lines), facts, console_url)


def _summary(facts: NoticeFacts) -> str:
    status = f" ({facts.status})" if facts.status else ""
    when = local_time(facts.occurred_at, facts.zone)
    return f"{facts.trigger}{status}: task {facts.task_name} of workflow {facts.workflow} at {when}"


def fact_rows(facts: NoticeFacts) -> list[tuple[str, str]]:
    """The facts as (label, text) rows, times in the workspace's zone, absent ones left out."""
    rows: list[tuple[str, object]] = [
        ("Rule", facts.rule_name),
        ("Trigger", facts.trigger),
        ("Workspace", _named(facts.workspace, facts.workspace_id)),
        ("Workflow", _named(facts.workflow, facts.workflow_id)),
        ("Task", _named(facts.task_name, facts.task_id)),
        ("Workflow instance", facts.workflow_instance_id),
        ("Task instance", facts.task_instance_id),
        ("BizDate", facts.biz_date),
        ("Status", facts.status),
        ("Run", facts.run_number),
        ("Started", facts.started_at and local_time(facts.started_at, facts.zone)),
        ("Finished", facts.finished_at and local_time(facts.finished_at, facts.zone)),
        ("Occurred", local_time(facts.occurred_at, facts.zone)),
    ]
    return [(name, str(value)) for name, value in rows if value is not None]


def _named(name: str, id_: int | None) -> str:
    return name if id_ is None else f"{name} ({id_})"


def _trimmed(facts: NoticeFacts) -> NoticeFacts:
    tail = tuple(_cut(line.rstrip("\r\n"), LOG_LINE_CHARS) for line in facts.log_tail[-LOG_LINES:])
    return facts if tail == facts.log_tail else replace(facts, log_tail=tail)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def local_time(at: datetime, zone: str) -> str:
    """`at` in `zone` as `YYYY-MM-DD HH:MM:SS+08:00`."""
    return at.astimezone(ZoneInfo(zone)).isoformat(sep=" ", timespec="seconds")


def parse_target(kind: str, address: str, param: str, *, extension: str = "") -> Target:
    """The `Target` a rule names, or `InvalidArgument` naming `param`. `Sms` and `Phone`
    are refused with a message saying how to be notified instead. `extension` is the
    receiver's JSON object as DataWorks has it: `{"atAll": true}` for a DingTalk robot,
    and dwsched's `{"format": "json"|"slack"|"teams"}` for a `WebhookUrl` (by default
    `slack` or `teams` when the host is Slack's or Teams', else `json`)."""
    try:
        channel = ChannelKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in ChannelKind if k not in UNSUPPORTED_KINDS)
        raise InvalidArgument(param, f"{param}: unknown channel {kind!r}; use {known}.") from None
    if channel in UNSUPPORTED_KINDS:
        raise InvalidArgument(param, NO_GATEWAY.format(kind=channel.value))
    if channel is ChannelKind.MAIL:
        return Target(channel, _mail_address(address, param))
    url = _webhook_url(address, param)
    options = _extension(extension, param)
    fmt = WebhookFormat.JSON
    if channel is ChannelKind.WEBHOOK:
        fmt = _format(options.get("format"), param) or detected_format(url)
    return Target(channel, url, fmt, at_all=options.get("atAll") is True)


def _mail_address(address: str, param: str) -> str:
    if not _MAIL.fullmatch(address) or len(address) > 254:
        raise InvalidArgument(param, f"{param}: {address[:80]!r} is not an e-mail address.")
    return address


def _webhook_url(address: str, param: str) -> str:
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(param, f"{param}: a webhook must be an http or https URL.")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(param, f"{param}: a webhook URL may not carry a user or password.")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in address) or len(address) > 2048:
        raise InvalidArgument(param, f"{param}: the webhook URL has spaces or control characters.")
    return address


def _extension(text: str, param: str) -> dict[str, object]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidArgument(param, f"{param}: the extension must be a JSON object.")
    return value


def _format(value: object, param: str) -> WebhookFormat | None:
    if value is None:
        return None
    try:
        return WebhookFormat(str(value).lower())
    except ValueError:
        raise InvalidArgument(param, f"{param}: format must be json, slack or teams.") from None


def detected_format(url: str) -> WebhookFormat:
    """The format a webhook URL's host implies: Slack's and Teams' incoming webhooks have
    well-known hosts; anything else receives dwsched's JSON."""
    host = (urlsplit(url).hostname or "").lower()
    if host in _SLACK_HOSTS:
        return WebhookFormat.SLACK
    if host.endswith(_TEAMS_HOST_SUFFIXES):
        return WebhookFormat.TEAMS
    return WebhookFormat.JSON


def redact(address: str) -> str:
    """An address safe to log or show: an e-mail address as is; a URL masked as answers
    show it (domain.alerts.mask_url: its last path segment and every query value are
    `****`, where chat robots carry their secret token)."""
    if "://" not in address:
        return address
    return mask_url(address)
