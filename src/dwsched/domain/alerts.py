"""Custom alert rules (DataWorks' CreateAlertRule ... DeleteAlertRule): what a rule watches,
when it fires, whom it tells, and every check of a rule's values. Pure.

A rule's trigger condition and notification are read from their DataWorks shape (the JSON
objects `TriggerCondition` and `Notification` of the API, which are also the rule's stored
document) and validated field by field: every bad value raises InvalidArgument naming the
field by its path (`TriggerCondition.Extension.Timeout.TimeoutInMinutes`). What dwsched
cannot do is refused with a message saying so (docs/alerts.md).

Webhook URLs are secrets (a robot's token is in them): answers show them masked
(`mask_url`), and a masked URL sent back in an update stands for the stored one
(`parse_notification`'s `previous`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from dwsched.domain.errors import InvalidArgument, MissingArgument

E = TypeVar("E", bound=enum.Enum)

MAX_NAME = 128  # DataWorks' limit on a custom rule's name
MAX_IDS = 100  # Target.Ids and Target.AllowTasks
MAX_CHANNELS = 10
MAX_RECEIVERS = 20
MAX_RECEIVER_VALUES = 20
MAX_CYCLES = 288
MAX_URL = 1024
MAX_EXTENSION = 1024
MASK = "****"


class TriggerType(enum.StrEnum):
    """The alert types dwsched evaluates (TriggerCondition.Type)."""

    ERROR = "Error"
    EXHAUSTED_ERROR = "ExhaustedError"
    FINISHED = "Finished"
    TIMEOUT = "Timeout"
    UNFINISHED = "UnFinished"
    CYCLE_UNFINISHED = "CycleUnfinished"
    INSTANCE_ERROR_COUNT = "InstanceErrorCount"
    INSTANCE_ERROR_PERCENTAGE = "InstanceErrorPercentage"
    RESOURCE_GROUP_WAIT_COUNT = "ResourceGroupWaitCount"
    RESOURCE_GROUP_PERCENTAGE = "ResourceGroupPercentage"


RESOURCE_GROUP_TRIGGERS = frozenset(
    {TriggerType.RESOURCE_GROUP_WAIT_COUNT, TriggerType.RESOURCE_GROUP_PERCENTAGE}
)
REFUSED_TRIGGERS: Mapping[str, str] = {
    "InstanceTransferComplete": "dwsched makes instances from deployed workflows without a "
    "separate node-to-instance conversion, so there is nothing to report",
    "InstanceTransferFluctuate": "dwsched does not compare the instance counts of successive "
    "days; use InstanceErrorCount or InstanceErrorPercentage",
    "InstanceKeyword": "dwsched does not search task logs for keywords; use Error or "
    "ExhaustedError (their messages carry the last log lines)",
}


class TargetType(enum.StrEnum):
    """What a rule watches (TriggerCondition.Target.Type)."""

    TASK = "Task"  # Ids: task ids (deployed nodes)
    PROJECT = "Project"  # Ids: workspace ids; every task of the workspace
    RESOURCE_GROUP = "ResourceGroup"  # Ids: resource group names (dwsched's choice)


REFUSED_TARGETS: Mapping[str, str] = {
    "Baseline": "dwsched has no baselines yet; watch the tasks (Task) or the workspace "
    "(Project) instead",
    "BizProcess": "dwsched has no business processes; watch the workflow's tasks (Task) or "
    "the workspace (Project) instead",
}


class ReceiverType(enum.StrEnum):
    TASK_OWNER = "TaskOwner"  # no values: the owner of the task an alert is about
    ALI_UID = "AliUid"  # dwsched users, by name or id (stored as ids)
    WEBHOOK_URL = "WebhookUrl"
    DINGDING_URL = "DingdingUrl"
    WEIXIN_URL = "WeixinUrl"
    FEISHU_URL = "FeishuUrl"


URL_RECEIVERS = frozenset(
    {
        ReceiverType.WEBHOOK_URL,
        ReceiverType.DINGDING_URL,
        ReceiverType.WEIXIN_URL,
        ReceiverType.FEISHU_URL,
    }
)
REFUSED_RECEIVERS: Mapping[str, str] = {
    "ShiftSchedule": "dwsched has no shift schedules; name the users (AliUid) or a webhook",
    "Owner": "Owner receivers are for baseline alerts, and dwsched has no baselines; use TaskOwner",
}


class Channel(enum.StrEnum):
    MAIL = "Mail"
    WEBHOOK = "Webhook"
    DINGDING = "Dingding"
    WEIXIN = "Weixin"
    FEISHU = "Feishu"


# The URL receiver each webhook-like channel sends to.
CHANNEL_RECEIVERS: Mapping[Channel, ReceiverType] = {
    Channel.WEBHOOK: ReceiverType.WEBHOOK_URL,
    Channel.DINGDING: ReceiverType.DINGDING_URL,
    Channel.WEIXIN: ReceiverType.WEIXIN_URL,
    Channel.FEISHU: ReceiverType.FEISHU_URL,
}
_NO_GATEWAY = (
    "a self-hosted dwsched has no SMS or phone gateway; use Mail (SMTP configured by the "
    "operator) or a webhook receiver (WebhookUrl, DingdingUrl, WeixinUrl, FeishuUrl) instead"
)
REFUSED_CHANNELS: Mapping[str, str] = {"Sms": _NO_GATEWAY, "Phone": _NO_GATEWAY}

_CLOCK_47 = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_SILENCE = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")
_GROUP = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
_URL_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class Target:
    type: TargetType
    ids: tuple[int | str, ...]  # task or workspace ids; resource group names
    allow_tasks: tuple[int, ...] = ()  # tasks a Project target does not watch


@dataclass(frozen=True, slots=True)
class CycleTime:
    cycle_id: int  # 1-288: the cycle of the day, first is 1
    time: str  # hh:mm, hh 0-47


@dataclass(frozen=True, slots=True)
class Trigger:
    """TriggerCondition: its type, what it watches, and the extension its type reads."""

    type: TriggerType
    target: Target
    auto_rerun_alert_enabled: bool = False  # Error: also each failed attempt that is retried
    unfinished_time: str | None = None  # UnFinished: hh:mm of the run day, hh 0-47
    timeout_minutes: int | None = None  # Timeout
    cycles: tuple[CycleTime, ...] = ()  # CycleUnfinished
    count: int | None = None  # InstanceErrorCount, ResourceGroupWaitCount
    percentage: int | None = None  # InstanceErrorPercentage, ResourceGroupPercentage

    def minutes_of_day(self) -> int | None:
        """UnFinished's deadline in minutes after the run day's midnight (up to 47:59)."""
        return None if self.unfinished_time is None else _minutes(self.unfinished_time)


@dataclass(frozen=True, slots=True)
class Receiver:
    type: ReceiverType
    values: tuple[str, ...] = ()  # user ids (AliUid), URLs; none for TaskOwner
    extension: str | None = None  # JSON object text, e.g. {"atAll": true} for DingdingUrl


@dataclass(frozen=True, slots=True)
class Notification:
    channels: tuple[Channel, ...]
    receivers: tuple[Receiver, ...]
    interval_minutes: int | None = None  # re-alert while the condition holds (5-10000)
    maximum: int | None = None  # alerts per calendar day (1-10000)
    silence_start: str | None = None  # HH:mm or HH:mm:ss
    silence_end: str | None = None


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A stored rule. `owner` is a user id; times are epoch milliseconds."""

    id: int
    name: str
    owner: int
    enabled: bool
    trigger: Trigger
    notification: Notification
    create_time: int
    modify_time: int
    create_user: str
    modify_user: str


@dataclass(frozen=True, slots=True)
class NewRule:
    """What a rule is made of before it has an id: its checked values, and each target's
    workspace (target id or name -> workspace id; None for a resource group)."""

    name: str
    owner: int
    enabled: bool
    trigger: Trigger
    notification: Notification
    workspaces: dict[int | str, int | None]


@dataclass(frozen=True, slots=True)
class RuleQuery:
    """ListAlertRules' filters (None: no filter)."""

    name_contains: str | None = None
    owner: int | None = None
    receiver: int | None = None  # an AliUid receiver's user id
    task_ids: Sequence[int] | None = None
    task_projects: Sequence[int] = ()  # the workspaces of task_ids
    types: Sequence[TriggerType] | None = None


# Reading and checking


def _fault(path: str, problem: str) -> InvalidArgument:
    return InvalidArgument(path, f"The parameter {path} {problem}.")


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fault(path, "must be a JSON object")
    return value


def _list(value: Any, path: str, maximum: int) -> list[Any]:
    if not isinstance(value, list):
        raise _fault(path, "must be a JSON array")
    if len(value) > maximum:
        raise _fault(path, f"takes at most {maximum} items, got {len(value)}")
    return value


def _int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fault(path, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise _fault(path, f"must be between {low} and {high}, got {value}")
    return value


def _text(value: Any, path: str, maximum: int) -> str:
    if not isinstance(value, str):
        raise _fault(path, f"must be a string, got {value!r}")
    if len(value) > maximum:
        raise _fault(path, f"is longer than {maximum} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _fault(path, "must not contain control characters")
    return value


def _choice(value: Any, path: str, kind: type[E], refused: Mapping[str, str] = {}) -> E:
    if isinstance(value, str) and value in refused:
        raise _fault(path, f"does not take {value}: {refused[value]}")
    for member in kind:
        if member.value == value:
            return member
    allowed = ", ".join(str(m.value) for m in kind)
    raise _fault(path, f"must be one of {allowed}, got {value!r}")


def _unknown(found: dict[str, Any], known: tuple[str, ...], path: str) -> None:
    for key in found:
        if key not in known:
            raise _fault(f"{path}.{key}", f"is not a field of {path} (fields: {', '.join(known)})")


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")[:2]
    return int(hours) * 60 + int(minutes)


def clock_47(value: Any, path: str) -> str:
    """hh:mm with hh 0-47 (the next day's hours count on from 24) and mm 0-59."""
    text = _text(value, path, 5)
    match = _CLOCK_47.fullmatch(text)
    if match is None or int(match[1]) > 47 or int(match[2]) > 59:
        raise _fault(path, f"must be hh:mm with hh 0-47 and mm 0-59, got {text!r}")
    return text


def silence_time(value: Any, path: str) -> str:
    """HH:mm (or HH:mm:ss) of a day."""
    text = _text(value, path, 8)
    match = _SILENCE.fullmatch(text)
    if (
        match is None
        or int(match[1]) > 23
        or int(match[2]) > 59
        or (match[3] is not None and int(match[3]) > 59)
    ):
        raise _fault(path, f"must be HH:mm with HH 00-23 and mm 00-59, got {text!r}")
    return text


def rule_name(value: Any, path: str = "Name") -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MissingArgument(path)
    return _text(value, path, MAX_NAME).strip()


def parse_trigger(value: Any, path: str = "TriggerCondition") -> Trigger:
    """A TriggerCondition in DataWorks' shape, checked; InvalidArgument naming the field."""
    found = _object(value, path)
    _unknown(found, ("Type", "Target", "Extension"), path)
    if found.get("Type") is None:
        raise MissingArgument(f"{path}.Type")
    kind = _choice(found["Type"], f"{path}.Type", TriggerType, REFUSED_TRIGGERS)
    if found.get("Target") is None:
        raise MissingArgument(f"{path}.Target")
    target = _target(found["Target"], f"{path}.Target", kind)
    extension = found.get("Extension")
    extension = {} if extension is None else _object(extension, f"{path}.Extension")
    known = (
        "Error",
        "Timeout",
        "UnFinished",
        "CycleUnfinished",
        "InstanceErrorCount",
        "InstanceErrorPercentage",
        "InstanceTransferFluctuate",
    )
    _unknown(extension, known, f"{path}.Extension")
    return _extension(kind, target, extension, f"{path}.Extension")


def _target(value: Any, path: str, kind: TriggerType) -> Target:
    target = parse_target(value, path)
    on_groups = kind in RESOURCE_GROUP_TRIGGERS
    if on_groups != (target.type is TargetType.RESOURCE_GROUP):
        raise _fault(
            f"{path}.Type",
            f"must be ResourceGroup for a {kind} rule"
            if on_groups
            else f"cannot be ResourceGroup for a {kind} rule: only ResourceGroupWaitCount "
            "and ResourceGroupPercentage rules watch resource groups",
        )
    return target


def parse_target(value: Any, path: str = "TriggerCondition.Target") -> Target:
    """A Target in DataWorks' shape, checked on its own (what it names, for authorisation
    before the whole condition is read)."""
    found = _object(value, path)
    _unknown(found, ("Type", "Ids", "AllowTasks"), path)
    if found.get("Type") is None:
        raise MissingArgument(f"{path}.Type")
    target = _choice(found["Type"], f"{path}.Type", TargetType, REFUSED_TARGETS)
    raw = _list(found.get("Ids") or [], f"{path}.Ids", MAX_IDS)
    if not raw:
        raise MissingArgument(f"{path}.Ids")
    ids: list[int | str]
    if target is TargetType.RESOURCE_GROUP:
        ids = [_group(v, f"{path}.Ids") for v in raw]
    else:
        ids = [_int(v, f"{path}.Ids", 1, 2**63 - 1) for v in raw]
    allow = [
        _int(v, f"{path}.AllowTasks", 1, 2**63 - 1)
        for v in _list(found.get("AllowTasks") or [], f"{path}.AllowTasks", MAX_IDS)
    ]
    if allow and target is not TargetType.PROJECT:
        raise _fault(
            f"{path}.AllowTasks",
            "applies to Project targets only (the tasks of the workspaces it does not watch); "
            "for Task targets, list only the tasks to watch in Ids",
        )
    return Target(target, tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(allow)))


def _group(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _GROUP.fullmatch(value):
        raise _fault(
            path,
            "must hold resource group names (letters, digits and _ . : @ -, at most 128 "
            f"characters) for a ResourceGroup target, got {value!r}",
        )
    return value


def _section(extension: dict[str, Any], name: str, path: str, kind: TriggerType) -> dict[str, Any]:
    value = extension.get(name)
    if value is None:
        raise MissingArgument(f"{path}.{name}")
    return _object(value, f"{path}.{name}")


def _extension(kind: TriggerType, target: Target, ext: dict[str, Any], path: str) -> Trigger:
    T = TriggerType
    if kind in (T.ERROR, T.EXHAUSTED_ERROR, T.FINISHED):
        error = ext.get("Error")
        auto = False
        if error is not None:
            section = _object(error, f"{path}.Error")
            _unknown(section, ("AutoRerunAlertEnabled", "StreamTaskIds"), f"{path}.Error")
            flag = section.get("AutoRerunAlertEnabled", False)
            if not isinstance(flag, bool):
                raise _fault(f"{path}.Error.AutoRerunAlertEnabled", "must be true or false")
            if section.get("StreamTaskIds"):
                raise _fault(
                    f"{path}.Error.StreamTaskIds",
                    "is not supported: dwsched has no real-time tasks",
                )
            auto = flag and kind is T.ERROR
        return Trigger(kind, target, auto_rerun_alert_enabled=auto)
    if kind is T.TIMEOUT:
        section = _section(ext, "Timeout", path, kind)
        _unknown(section, ("TimeoutInMinutes",), f"{path}.Timeout")
        where = f"{path}.Timeout.TimeoutInMinutes"
        if section.get("TimeoutInMinutes") is None:
            raise MissingArgument(where)
        return Trigger(
            kind, target, timeout_minutes=_int(section["TimeoutInMinutes"], where, 1, 21600)
        )
    if kind is T.UNFINISHED:
        section = _section(ext, "UnFinished", path, kind)
        _unknown(section, ("UnFinishedTime",), f"{path}.UnFinished")
        where = f"{path}.UnFinished.UnFinishedTime"
        if section.get("UnFinishedTime") is None:
            raise MissingArgument(where)
        return Trigger(kind, target, unfinished_time=clock_47(section["UnFinishedTime"], where))
    if kind is T.CYCLE_UNFINISHED:
        section = _section(ext, "CycleUnfinished", path, kind)
        _unknown(section, ("CycleAndTime",), f"{path}.CycleUnfinished")
        where = f"{path}.CycleUnfinished.CycleAndTime"
        items = _list(section.get("CycleAndTime") or [], where, MAX_CYCLES)
        if not items:
            raise MissingArgument(where)
        cycles: dict[int, CycleTime] = {}
        for item in items:
            entry = _object(item, where)
            _unknown(entry, ("CycleId", "Time"), where)
            cycle = _int(entry.get("CycleId"), f"{where}.CycleId", 1, 288)
            if cycle in cycles:
                raise _fault(f"{where}.CycleId", f"names the cycle {cycle} twice")
            cycles[cycle] = CycleTime(cycle, clock_47(entry.get("Time"), f"{where}.Time"))
        return Trigger(
            kind, target, cycles=tuple(sorted(cycles.values(), key=lambda c: c.cycle_id))
        )
    if kind in (T.INSTANCE_ERROR_COUNT, T.RESOURCE_GROUP_WAIT_COUNT):
        # ResourceGroupWaitCount has no extension of its own in the API: its threshold (the
        # waiting instances) is given as InstanceErrorCount.Count (docs/alerts.md).
        section = _section(ext, "InstanceErrorCount", path, kind)
        _unknown(section, ("Count",), f"{path}.InstanceErrorCount")
        where = f"{path}.InstanceErrorCount.Count"
        return Trigger(kind, target, count=_int(section.get("Count"), where, 1, 10000))
    section = _section(ext, "InstanceErrorPercentage", path, kind)
    _unknown(section, ("Percentage",), f"{path}.InstanceErrorPercentage")
    where = f"{path}.InstanceErrorPercentage.Percentage"
    return Trigger(kind, target, percentage=_int(section.get("Percentage"), where, 1, 100))


def parse_notification(
    value: Any, path: str = "Notification", previous: Notification | None = None
) -> Notification:
    """A Notification in DataWorks' shape, checked. A URL receiver value that is a masked
    URL (as answers show it) stands for the URL of `previous` that masks the same way."""
    found = _object(value, path)
    known = (
        "Channels",
        "Receivers",
        "IntervalInMinutes",
        "Maximum",
        "SilenceStartTime",
        "SilenceEndTime",
    )
    _unknown(found, known, path)
    raw_channels = _list(found.get("Channels") or [], f"{path}.Channels", MAX_CHANNELS)
    if not raw_channels:
        raise MissingArgument(f"{path}.Channels")
    channels = tuple(
        dict.fromkeys(
            _choice(c, f"{path}.Channels", Channel, REFUSED_CHANNELS) for c in raw_channels
        )
    )
    raw_receivers = _list(found.get("Receivers") or [], f"{path}.Receivers", MAX_RECEIVERS)
    if not raw_receivers:
        raise MissingArgument(f"{path}.Receivers")
    stored = _stored_urls(previous)
    receivers = tuple(_receiver(r, f"{path}.Receivers", stored) for r in raw_receivers)
    types = [r.type for r in receivers]
    for kind in set(types):
        if types.count(kind) > 1:
            raise _fault(f"{path}.Receivers", f"names the receiver type {kind} twice")
    _channels_fit(channels, set(types), path)
    interval = found.get("IntervalInMinutes")
    maximum = found.get("Maximum")
    start, end = found.get("SilenceStartTime"), found.get("SilenceEndTime")
    if (start is None) != (end is None):
        missing = "SilenceEndTime" if end is None else "SilenceStartTime"
        raise MissingArgument(f"{path}.{missing}")
    return Notification(
        channels,
        receivers,
        None if interval is None else _int(interval, f"{path}.IntervalInMinutes", 5, 10000),
        None if maximum is None else _int(maximum, f"{path}.Maximum", 1, 10000),
        None if start is None else silence_time(start, f"{path}.SilenceStartTime"),
        None if end is None else silence_time(end, f"{path}.SilenceEndTime"),
    )


def _channels_fit(channels: tuple[Channel, ...], types: set[ReceiverType], path: str) -> None:
    """Each channel has someone to reach, and each URL receiver a channel that sends to it."""
    for channel in channels:
        wanted = CHANNEL_RECEIVERS.get(channel)
        if wanted is not None and wanted not in types:
            raise _fault(f"{path}.Channels", f"names {channel}, which needs a {wanted} receiver")
        if channel is Channel.MAIL and not types & {ReceiverType.TASK_OWNER, ReceiverType.ALI_UID}:
            raise _fault(
                f"{path}.Channels", "names Mail, which needs a TaskOwner or AliUid receiver"
            )
    for kind in types & URL_RECEIVERS:
        channel = next(c for c, r in CHANNEL_RECEIVERS.items() if r is kind)
        if channel not in channels:
            raise _fault(
                f"{path}.Receivers", f"holds a {kind} receiver without the {channel} channel"
            )
    if types & {ReceiverType.TASK_OWNER, ReceiverType.ALI_UID} and Channel.MAIL not in channels:
        raise _fault(f"{path}.Channels", "must name Mail to reach TaskOwner or AliUid receivers")


_Stored = dict[tuple[ReceiverType, str], list[str]]


def _stored_urls(previous: Notification | None) -> _Stored:
    """The stored URLs by (receiver type, masked form), in order: masked values sent back
    take them in turn (two robots of one host mask alike)."""
    found: _Stored = {}
    for r in previous.receivers if previous is not None else ():
        if r.type in URL_RECEIVERS:
            for v in r.values:
                found.setdefault((r.type, mask_url(v)), []).append(v)
    return found


def _receiver(value: Any, path: str, stored: _Stored) -> Receiver:
    found = _object(value, path)
    _unknown(found, ("ReceiverType", "ReceiverValues", "Extension"), path)
    if found.get("ReceiverType") is None:
        raise MissingArgument(f"{path}.ReceiverType")
    kind = _choice(found["ReceiverType"], f"{path}.ReceiverType", ReceiverType, REFUSED_RECEIVERS)
    where = f"{path}.ReceiverValues"
    raw = _list(found.get("ReceiverValues") or [], where, MAX_RECEIVER_VALUES)
    if kind is ReceiverType.TASK_OWNER:
        if raw:
            raise _fault(where, "takes no values for a TaskOwner receiver")
        values: tuple[str, ...] = ()
    elif not raw:
        raise MissingArgument(where)
    elif kind is ReceiverType.ALI_UID:
        values = tuple(dict.fromkeys(_text(v, where, 64).strip() for v in raw))
    else:
        values = tuple(dict.fromkeys(_url(v, where, kind, stored) for v in raw))
    extension = found.get("Extension")
    if extension is not None:
        extension = _text(extension, f"{path}.Extension", MAX_EXTENSION)
        if extension.strip() and not re.fullmatch(r"\s*\{.*\}\s*", extension, re.DOTALL):
            raise _fault(f"{path}.Extension", 'must be a JSON object such as {"atAll": true}')
        extension = extension or None
    return Receiver(kind, values, extension)


def _url(value: Any, path: str, kind: ReceiverType, stored: _Stored) -> str:
    text = _text(value, path, MAX_URL).strip()
    if MASK in text:
        known = stored.get((kind, text))
        if not known:
            raise _fault(
                path,
                f"holds the masked URL {text!r}, which stands for no stored {kind} URL of this "
                "rule; send the whole URL",
            )
        return known.pop(0)
    check_url(text, path)
    return text


def check_url(text: str, path: str) -> None:
    """An absolute http or https URL with a host, no credentials, no spaces (its shape only:
    where it may lead is the delivery's check)."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _fault(path, f"must be an http or https URL: {exc}") from exc
    if parts.scheme.lower() not in _URL_SCHEMES or not parts.hostname:
        raise _fault(path, "must be an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise _fault(
            path, "must not carry a user name or password (put a token in the path or query)"
        )
    if any(c.isspace() for c in text) or (port is not None and not 0 < port < 65536):
        raise _fault(path, "must be an http or https URL without spaces")
    if MASK in text:
        raise _fault(path, f"must not contain {MASK!r}, which marks masked URLs")


def mask_url(url: str) -> str:
    """The URL as answers show it: scheme, host and port, the path with its last segment
    replaced by ****, every query value replaced by ****; no credentials, no fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    segments = parts.path.split("/")
    if segments and segments[-1]:
        segments[-1] = MASK
    elif len(segments) > 1 and len(segments[-2]):
        segments[-2] = MASK
    path = "/".join(segments)
    query = urlencode(
        [(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*"
    )
    return f"{parts.scheme}://{host}{path}" + (f"?{query}" if query else "")


def masked(notification: Notification) -> Notification:
    """The notification with every URL masked."""
    return with_values(notification, URL_RECEIVERS, mask_url, unique=False)


def with_values(
    notification: Notification,
    kinds: frozenset[ReceiverType],
    change: Callable[[str], str],
    unique: bool = True,
) -> Notification:
    """The notification with each value of the receivers of `kinds` replaced by
    `change(value)` (user names resolved to ids; URLs sealed, opened or masked), each once
    unless not `unique` (two URLs may mask alike)."""

    def values(r: Receiver) -> tuple[str, ...]:
        changed = [change(v) for v in r.values]
        return tuple(dict.fromkeys(changed)) if unique else tuple(changed)

    return Notification(
        notification.channels,
        tuple(
            Receiver(r.type, values(r), r.extension) if r.type in kinds else r
            for r in notification.receivers
        ),
        notification.interval_minutes,
        notification.maximum,
        notification.silence_start,
        notification.silence_end,
    )


# The rule's document: DataWorks' shape, as the API answers it and the store keeps it.


def trigger_document(t: Trigger) -> dict[str, Any]:
    target: dict[str, Any] = {"Type": t.target.type.value, "Ids": list(t.target.ids)}
    if t.target.allow_tasks:
        target["AllowTasks"] = list(t.target.allow_tasks)
    extension: dict[str, Any] = {}
    T = TriggerType
    if t.type in (T.ERROR, T.EXHAUSTED_ERROR, T.FINISHED) and t.auto_rerun_alert_enabled:
        extension["Error"] = {"AutoRerunAlertEnabled": True}
    if t.timeout_minutes is not None:
        extension["Timeout"] = {"TimeoutInMinutes": t.timeout_minutes}
    if t.unfinished_time is not None:
        extension["UnFinished"] = {"UnFinishedTime": t.unfinished_time}
    if t.cycles:
        extension["CycleUnfinished"] = {
            "CycleAndTime": [{"CycleId": c.cycle_id, "Time": c.time} for c in t.cycles]
        }
    if t.count is not None:
        extension["InstanceErrorCount"] = {"Count": t.count}
    if t.percentage is not None:
        extension["InstanceErrorPercentage"] = {"Percentage": t.percentage}
    return {"Type": t.type.value, "Target": target, "Extension": extension}


def notification_document(n: Notification) -> dict[str, Any]:
    receivers = []
    for r in n.receivers:
        item: dict[str, Any] = {"ReceiverType": r.type.value, "ReceiverValues": list(r.values)}
        if r.extension is not None:
            item["Extension"] = r.extension
        receivers.append(item)
    found: dict[str, Any] = {"Channels": [c.value for c in n.channels], "Receivers": receivers}
    for key, value in (
        ("IntervalInMinutes", n.interval_minutes),
        ("Maximum", n.maximum),
        ("SilenceStartTime", n.silence_start),
        ("SilenceEndTime", n.silence_end),
    ):
        if value is not None:
            found[key] = value
    return found


def merged(stored: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """An update's document: the fields `given` names replace the stored ones, the others
    keep their values."""
    return {**stored, **given}


def mask_document_text(text: str) -> str:
    """A Notification parameter's text with every URL-looking value masked (for the audit
    log, which keeps a request's parameters); the text as it is when it is not JSON."""
    return re.sub(r"https?://[^\s\"',\]}]+", lambda m: mask_url(m.group(0)), text)
