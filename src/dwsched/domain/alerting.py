"""When an alert rule fires, and whether a notice is sent now (pure: no I/O, no clock).

Two kinds of trigger (docs/alerts.md, "When a rule fires"):
- on a status change, read from the status events: `Error` (a task instance fails for
  good; with AutoRerunAlertEnabled, also each failed attempt that will be retried),
  `ExhaustedError` (it fails for good after the automatic reruns its node allows),
  `Finished` (it succeeds);
- on a condition the scheduler checks on its tick: `Timeout` (Running longer than N
  minutes), `UnFinished` (not Success by hh:mm of its BizDate's run day, in the
  workspace's zone; hh up to 47, the day after), `CycleUnfinished` (the same, per cycle of
  an hourly or minute task), `InstanceErrorCount` / `InstanceErrorPercentage` (over a
  workspace's task instances of a BizDate), `ResourceGroupWaitCount` /
  `ResourceGroupPercentage` (a resource group's WaitResource depth / slots in use).

An alert is keyed (`AlertKey`): the same key is one alert, however many processes see it
or however often the condition is checked. A condition that holds on is alerted again
every IntervalInMinutes (each a new key: its repeat number), never more than Maximum
alerts a calendar day per rule, and not during the silence window (suppressed, recorded).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dwsched.domain.alerts import TriggerType as Trigger
from dwsched.domain.models import Status
from dwsched.domain.transitions import Cause

MINUTE_MS = 60_000
DAY_MS = 86_400_000


ON_EVENTS = (Trigger.ERROR, Trigger.EXHAUSTED_ERROR, Trigger.FINISHED)
ON_TICK = tuple(t for t in Trigger if t not in ON_EVENTS)


@dataclass(frozen=True, slots=True)
class TaskChange:
    """A task instance's status change, with what a rule needs to judge it."""

    task_instance_id: int
    task_id: int
    project_id: int
    old: Status
    new: Status
    cause: Cause
    run_number: int
    retries_allowed: int  # automatic reruns its node allows after the first attempt


def fires_on(trigger: Trigger, change: TaskChange, alert_retries: bool) -> bool:
    """Whether a rule of this trigger fires on the change (its targets already matched)."""
    if change.old == change.new:
        return False
    failed_for_good = change.new is Status.FAILURE and change.cause is not Cause.STOP
    if trigger is Trigger.FINISHED:
        return change.new is Status.SUCCESS
    if trigger is Trigger.EXHAUSTED_ERROR:
        return failed_for_good and change.retries_allowed > 0
    if trigger is Trigger.ERROR:
        retried = change.cause in (Cause.RETRY, Cause.RECOVERY) and change.new in (
            Status.WAIT_RESOURCE,
            Status.WAIT_TIME,
        )
        return failed_for_good or (alert_retries and retried)
    return False


def event_key(rule_id: int, trigger: Trigger, change: TaskChange) -> str:
    """One alert per rule, task instance, attempt and outcome."""
    return f"{rule_id}:{trigger.value}:{change.task_instance_id}:{change.run_number}:{change.new}"


def condition_key(rule_id: int, trigger: Trigger, subject: str, repeat: int) -> str:
    """One alert per rule, subject (a task instance, a cycle, a workspace-day, a resource
    group) and repeat of a condition that holds on."""
    return f"{rule_id}:{trigger.value}:{subject}:{repeat}"


def parse_hhmm(text: str, max_hour: int) -> tuple[int, int]:
    """`hh:mm` (hh 0..max_hour, mm 0..59) as (hours, minutes); ValueError otherwise."""
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"{text!r} is not hh:mm")
    h, m = int(hours), int(minutes)
    if not (0 <= h <= max_hour and 0 <= m <= 59) or len(hours) > 2:
        raise ValueError(f"{text!r} is not hh:mm with hh 0-{max_hour} and mm 0-59")
    return h, m


def unfinished_deadline(biz_day: date, hhmm: str, tz: str) -> int:
    """The instant (ms) an instance of `biz_day` must have succeeded by: hh:mm of its run
    day (the BizDate's next day) in the workspace's zone, hh >= 24 on the day after."""
    hours, minutes = parse_hhmm(hhmm, 47)
    day = biz_day + timedelta(days=1 + hours // 24)
    return int(datetime.combine(day, time(hours % 24, minutes), ZoneInfo(tz)).timestamp() * 1000)


def repeat_of(first_due_ms: int, now_ms: int, interval_minutes: int | None) -> int:
    """Which repeat of a condition due since `first_due_ms` is due at `now_ms` (0 first;
    without an interval, only the first)."""
    if interval_minutes is None or now_ms < first_due_ms:
        return 0
    return (now_ms - first_due_ms) // (interval_minutes * MINUTE_MS)


class Verdict(enum.StrEnum):
    SEND = "send"
    SILENCED = "silenced"  # in the rule's silence window
    OVER_MAXIMUM = "over_maximum"  # the rule's alerts of the day reached Maximum


@dataclass(frozen=True, slots=True)
class Throttle:
    maximum: int | None  # alerts a calendar day (the rule's zone)
    silence_start: str | None  # HH:mm
    silence_end: str | None


def verdict(throttle: Throttle, now_ms: int, tz: str, sent_today: int) -> Verdict:
    """Whether an alert due now is sent: not in the silence window (which may span
    midnight: 22:00-06:00), nor past the day's Maximum."""
    if throttle.silence_start and throttle.silence_end:
        local = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(tz))
        now = local.hour * 60 + local.minute
        sh, sm = parse_hhmm(throttle.silence_start, 23)
        eh, em = parse_hhmm(throttle.silence_end, 23)
        start, end = sh * 60 + sm, eh * 60 + em
        inside = start <= now < end if start <= end else now >= start or now < end
        if inside:
            return Verdict.SILENCED
    if throttle.maximum is not None and sent_today >= throttle.maximum:
        return Verdict.OVER_MAXIMUM
    return Verdict.SEND


def day_start_ms(now_ms: int, tz: str) -> int:
    """The start of `now_ms`'s calendar day in `tz` (Maximum counts from there)."""
    local = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(tz))
    return int(datetime.combine(local.date(), time(0), ZoneInfo(tz)).timestamp() * 1000)


def retry_delay_ms(attempt: int) -> int:
    """The wait before a delivery's next try after `attempt` failed ones: 10 s, doubling,
    at most 30 minutes."""
    return int(min(10_000 * 2 ** max(0, attempt - 1), 30 * MINUTE_MS))


MAX_DELIVERY_ATTEMPTS = 8  # about 40 minutes of retrying, then the delivery fails


@dataclass(frozen=True, slots=True)
class Leased:
    """A delivery leased for sending (store.outbox): its event's notice (JSON) and its
    target (JSON, opened from its sealed form)."""

    id: int
    event_id: int
    channel: str
    receiver: str
    address: str
    attempt: int  # this try's number, from 1
    notice: str
