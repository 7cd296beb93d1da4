"""Cycles of a scheduled workflow: which instants a trigger fires on a run date, and which run
dates are due to have their instances generated.

A trigger is a 6-field cron `second minute hour day-of-month month day-of-week` (DataWorks'
Spring/Quartz-like form, with `?`, `L`, `W` and `#`), an IANA zone and a validity window of
epoch ms, both ends inclusive. Day-of-week numbers follow Spring and croniter: 0 or 7 is
Sunday, 1 is Monday; names (MON, ...) are read the same everywhere. The second field names
one second (DataWorks schedules at most once a minute), so a run date has at most
MAX_CYCLES_PER_DAY (1,440) cycles; a cron stored before this rule that names several seconds
fires at the first of them.

A run date D is a calendar date in the trigger's zone. Its cycles are the instants whose local
wall-clock time falls on D and matches the cron; each cycle's BizDate is D - 1 day, and cycles
are numbered 1.. in time order over the whole day, so a cycle keeps its number when the
validity window or an immediate deploy leaves earlier cycles out.

Daylight saving: a matching wall-clock time fires once.
- A wall-clock time that occurs twice (fall back) fires at its first instant only: a daily
  02:30 job runs once, and an hourly job has 24 cycles (the repeated hour's second 02:00 is
  not a new cycle). Users expect a daily job to run daily, not twice.
- A wall-clock time that does not exist (spring forward) gives one cycle at the first instant
  after the gap (03:00 for a 02:30 job in Europe/Berlin); it merges with a cycle already at
  that instant, so an hourly job has 23 cycles. A gap that ends on the next day drops the time.
dwsched computes this without iterating croniter, from the cron's times of day.

Day-restricted crons (a day-of-month, month or day-of-week that is not every day) still give
every date one instance: on a run day the cycles above; on any other day one dry-run cycle
(`SkipCycle`) at the cron's first time of day.

Generation: under `T+1` the instances of D are generated at 23:30 local on D - 1; under
`Immediately` the deploy's own date is generated at deploy time (`immediate_cycles`) and later
dates follow `T+1`. Nothing here reads the clock: every instant is an argument.
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_left, bisect_right
from calendar import isleap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import product
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from dwsched.domain.calendar import MAX_MS, zone
from dwsched.domain.errors import InvalidArgument

GENERATE_AT = time(23, 30)
IMMEDIATE_BUFFER_MS = 600_000
MAX_CYCLES_PER_DAY = 24 * 60  # one second per minute at most

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_WINDOW_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")

_FIELD_NAMES = ("second", "minute", "hour", "day-of-month", "month", "day-of-week")
_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_WEEKDAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
# What each field may contain before croniter reads it; this keeps out croniter's own
# extensions (`H` hashing, `R` random) that DataWorks does not have.
_FIELD_SYNTAX = (
    re.compile(r"[0-9,*/-]+"),
    re.compile(r"[0-9,*/-]+"),
    re.compile(r"[0-9,*/-]+"),
    re.compile(r"[0-9,*/?LW-]+"),
    re.compile(rf"(?:[0-9,*/-]|{_MONTHS})+"),
    re.compile(rf"(?:[0-9,*/?#L-]|{_WEEKDAYS})+"),
)
_FIELD_HINTS = (
    "0-59 with , - * /",
    "0-59 with , - * /",
    "0-23 with , - * /",
    "1-31 with , - * / ?, L for the last day, 15W for the weekday nearest the 15th",
    "1-12 or JAN-DEC with , - * /",
    "0-7 (0 and 7 are Sunday) or SUN-SAT with , - * / ?, L5 for the last Friday, 5#3 for the third",
)
_EVERY_DAY = ("*", "?")


class InstanceMode(enum.StrEnum):
    """When a deployed workflow's instances are generated (FlowSpec `instanceMode`)."""

    T_PLUS_1 = "T+1"
    IMMEDIATELY = "Immediately"


class CycleKind(enum.StrEnum):
    """How a cycle's instance runs when triggered (DataWorks `TriggerRecurrence`)."""

    NORMAL = "Normal"
    SKIP_CYCLE = "SkipCycle"  # a non-run day of a day-restricted cron: Success, not run
    REALTIME_DEPRECATED = "RealtimeDeprecated"  # expired at an immediate deploy: Success


@dataclass(frozen=True, slots=True)
class Trigger:
    """A workflow's schedule: cron, IANA zone, validity window [start_ms, end_ms]."""

    cron: str
    timezone: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Cycle:
    """One instance-to-be of a run date."""

    trigger_time: int  # epoch ms
    biz_day: date  # run_date - 1 day
    run_date: date
    period_number: int  # 1-based position among the run date's cycles
    kind: CycleKind

    @property
    def dry_run(self) -> bool:
        """True when the instance turns Success at its time without running."""
        return self.kind is not CycleKind.NORMAL


@dataclass(frozen=True, slots=True)
class _Cron:
    text: str
    seconds: tuple[int, ...]  # wall-clock seconds after local midnight, ascending
    day_expr: str | None  # the day fields alone; None when every date is a run day
    every_second: str | None  # the second field when it names several seconds (refused)


class _BadCron(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def parse_cron(text: str, path: str) -> str:
    """`text` with single spaces and upper-case names, when it is a valid 6-field cron.

    InvalidArgument naming `path` otherwise; the message says which field is wrong or why
    the whole expression is not accepted (a date that never occurs, both day fields set).
    """
    cron = _read(text, path)
    if cron.every_second is not None:
        raise InvalidArgument(
            path,
            f"The cron {text!r} at {path} is invalid: the second field {cron.every_second!r} "
            "fires more than once a minute; it must be one second (0-59), as DataWorks "
            "schedules at most once a minute.",
        )
    return cron.text


def _read(text: str, path: str) -> _Cron:
    """The compiled cron, the frequency rule aside; InvalidArgument naming `path`."""
    normalised = " ".join(text.split()).upper()
    try:
        return _compile(normalised)
    except _BadCron as exc:
        message = f"The cron {text!r} at {path} is invalid: {exc.problem}."
        raise InvalidArgument(path, message) from exc


@lru_cache(maxsize=16384)
def _compile(text: str) -> _Cron:
    fields = text.split(" ") if text else []
    if len(fields) != 6:
        raise _BadCron(
            f"it has {len(fields)} fields, expected 6: second minute hour day-of-month "
            "month day-of-week"
        )
    for i, token in enumerate(fields):
        _check_field(i, token)
    dom, month, dow = fields[3:]
    if dom not in _EVERY_DAY and dow not in _EVERY_DAY:
        raise _BadCron("day-of-month and day-of-week cannot both be set; put ? in one of them")
    try:
        expanded, nth = croniter.expand(text, second_at_beginning=True, strict=True)
    except (CroniterError, ValueError, LookupError, TypeError) as exc:
        raise _BadCron(_croniter_reason(exc)) from exc
    minutes, hours, days, months, weekdays, seconds = expanded
    # Several seconds are refused by parse_cron; a cron stored before that rule fires at
    # the first, so no cron has more than MAX_CYCLES_PER_DAY cycles.
    second_values = _values(seconds, 60)
    times = sorted(
        h * 3600 + m * 60 + min(second_values)
        for h, m in product(_values(hours, 24), _values(minutes, 60))
    )
    # croniter reads day-of-week 7 as 0, so a full week is the seven values 0-6.
    every_day = (
        len(_values(days, 32, 1)) == 31
        and len(_values(months, 13, 1)) == 12
        and len(_values(weekdays, 7)) == 7
        and not nth
    )
    return _Cron(
        text,
        tuple(times),
        None if every_day else f"0 0 0 {dom} {month} {dow}",
        fields[0] if len(second_values) > 1 else None,
    )


@lru_cache(maxsize=4096)
def _check_field(i: int, token: str) -> None:
    name, hint = _FIELD_NAMES[i], _FIELD_HINTS[i]
    if not _FIELD_SYNTAX[i].fullmatch(token):
        raise _BadCron(f"the {name} field {token!r} is not valid (allowed: {hint})")
    probe = ["0", "0", "0", "*", "*", "?"]
    if i == 5:
        probe[3] = "?"
    probe[i] = token
    try:
        croniter.expand(" ".join(probe), second_at_beginning=True, strict=True)
    except (CroniterError, ValueError, LookupError, TypeError) as exc:
        raise _BadCron(f"the {name} field {token!r} is not valid (allowed: {hint})") from exc


def _croniter_reason(exc: Exception) -> str:
    # croniter prefixes the expression in brackets; keep only what it says about it.
    reason = str(exc).split("]", 1)[-1].strip(" .").removeprefix("is not acceptable")
    reason = reason.strip(" .,")
    if "never occur" in reason:
        return f"it never fires ({reason})"
    return f"it is not accepted ({reason})" if reason else "it is not accepted"


def _values(field: Sequence[int | str], stop: int, start: int = 0) -> set[int]:
    if "*" in field:
        return set(range(start, stop))
    return {v for v in field if isinstance(v, int)}


@lru_cache(maxsize=4096)
def _cron(text: str, path: str) -> _Cron:
    return _read(text, path)


def _runs_on(day_expr: str, day: date) -> bool:
    """Whether the day fields `day_expr` (as croniter reads them) match `day`."""
    return _day_rule(day_expr).matches(day)


@dataclass(frozen=True, slots=True)
class _DayRule:
    """The day fields as croniter expands them, matched without building a croniter per
    date (croniter.match costs about 0.5 ms: 20,000 BizDates of a backfill took 10 s).
    `W` (the weekday nearest a day, one day a month) is left to croniter, a month at a
    time. tests/domain/test_run_bounds.py checks this agrees with croniter.match."""

    days: frozenset[int] | None  # None: any day of the month
    last_day: bool  # `L` in the day-of-month field
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # cron numbering, 0 is Sunday
    nth: tuple[tuple[int, frozenset[int | str]], ...]  # weekday -> {n, or "l" for the last}
    nearest_weekday: str | None  # the day fields, when day-of-month has `W`

    def matches(self, day: date) -> bool:
        if self.nearest_weekday is not None:
            return day.day in _month_run_days(self.nearest_weekday, day.year, day.month)
        if self.months is not None and day.month not in self.months:
            return False
        if self.days is not None and day.day not in self.days:
            if not (self.last_day and day.day == _month_end(day.year, day.month)):
                return False
        weekday = day.toordinal() % 7  # 0001-01-01 was a Monday: cron numbering
        if self.nth:
            week = (day.day - 1) // 7 + 1
            return any(
                weekday == w
                and (
                    week in which
                    or ("l" in which and day.day + 7 > _month_end(day.year, day.month))
                )
                for w, which in self.nth
            )
        return self.weekdays is None or weekday in self.weekdays


def _month_end(year: int, month: int) -> int:
    if month == 2:
        return 29 if isleap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


@lru_cache(maxsize=1024)
def _day_rule(day_expr: str) -> _DayRule:
    if "W" in day_expr.split(" ")[3]:
        return _DayRule(None, False, None, None, (), day_expr)
    expanded, nth = croniter.expand(day_expr, second_at_beginning=True, strict=True)
    days, months, weekdays = expanded[2], expanded[3], expanded[4]

    def ints(field: Sequence[int | str]) -> frozenset[int] | None:
        return None if "*" in field else frozenset(v for v in field if isinstance(v, int))

    return _DayRule(
        days=ints(days),
        last_day="l" in days,
        months=ints(months),
        weekdays=None
        if "*" in weekdays
        else frozenset(v % 7 for v in weekdays if isinstance(v, int)),
        nth=tuple((w % 7, frozenset(which)) for w, which in sorted(nth.items())),
        nearest_weekday=None,
    )


@lru_cache(maxsize=4096)
def _month_run_days(day_expr: str, year: int, month: int) -> frozenset[int]:
    """The days of a month the day fields match, found by croniter's own iteration."""
    start = datetime(year, month, 1)
    found: set[int] = set()
    it = croniter(day_expr, start - _SECOND, second_at_beginning=True)
    while (at := it.get_next(datetime)).month == month and at.year == year:
        found.add(at.day)
    return frozenset(found)


def parse_window_time(text: str, tz: str, path: str) -> int:
    """Epoch ms of `yyyy-MM-dd HH:mm:ss` read as wall-clock time in zone `tz`.

    A time that occurs twice is its first occurrence; a time inside a daylight-saving gap is
    the first instant after the gap. InvalidArgument naming `path` when the text is not such
    a time or the zone is not an IANA zone.
    """
    z = zone(tz, path)
    match = _WINDOW_TIME.fullmatch(text)
    problem = f"The time {text!r} at {path} is invalid: expected yyyy-MM-dd HH:mm:ss."
    if match is None:
        raise InvalidArgument(path, problem)
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        wall = datetime(year, month, day, hour, minute, second)
        return _wall_instants(wall, z)[0] * 1000
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument(path, problem) from exc


def _epoch_s(at: datetime) -> int:
    return (at - _EPOCH) // _SECOND


def _wall_instants(wall: datetime, z: ZoneInfo) -> list[int]:
    """Epoch seconds at which the naive `wall` is the local time in `z`, ascending.

    Two for a repeated time; for a time in a gap, the first instant after the gap.
    """
    early = _epoch_s(wall.replace(tzinfo=z, fold=0))
    late = _epoch_s(wall.replace(tzinfo=z, fold=1))
    if early == late:
        return [early]
    if early < late:
        return [early, late]
    # In a gap fold=0 lands after it and fold=1 before it; the gap's end lies between.
    lo, hi = late, early
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, z).replace(tzinfo=None) > wall:
            hi = mid
        else:
            lo = mid
    return [hi]


@lru_cache(maxsize=4096)
def _plain_day_start(day: date, tz: str) -> int | None:
    """Epoch s of `day`'s local midnight when the day has no offset change, else None.

    The offset at the day's first second, its last and the next midnight is enough: in the
    tz database two offset changes are never less than 4 days apart, so a day cannot change
    and change back. (A change at the next midnight gives None too: the slower path is
    exact for any day.)
    """
    z = zone(tz)
    offset = datetime(day.year, day.month, day.day, tzinfo=z).utcoffset()
    if offset is None:
        return None
    start = (day.toordinal() - _EPOCH_DAY) * 86_400 - offset // _SECOND
    for at in (start, start + 86_399, start + 86_400):
        if datetime.fromtimestamp(at, z).utcoffset() != offset:
            return None
    return start


def _instants(day: date, tz: str, seconds: tuple[int, ...]) -> list[int]:
    """Distinct epoch seconds on local `day` for the wall-clock `seconds`, ascending."""
    base = _plain_day_start(day, tz)
    if base is not None:
        return [base + s for s in seconds]
    found = _instants_across_change(day, tz, seconds)
    return _instants_by_wall(day, tz, seconds) if found is None else found


def _instants_across_change(day: date, tz: str, seconds: tuple[int, ...]) -> list[int] | None:
    """`_instants_by_wall` by arithmetic, for a day with one offset change (from o1 to o2 at
    the instant `change`): a wall time is its instant under o1 if that comes before the
    change, else under o2 if that comes at or after it, else (in the gap) the change itself.
    None when the neighbourhood of the day holds other than one change."""
    found = _numbered_across_change(day, tz, seconds, 0, 86_400)
    return None if found is None else [instant for _, instant in found]


def _numbered_across_change(
    day: date, tz: str, seconds: tuple[int, ...], lo_s: float, hi_s: float
) -> list[tuple[int, int]] | None:
    """(number, instant) of the distinct instants of `_instants_across_change` whose local
    time of day lies in [lo_s, hi_s], by bisection: in wall-clock order the instants are
    those under o1 (wall times before `early_end`), then at most one for the gap (the change
    itself, local time `late_start`; a wall time at `late_start` is that same instant), then
    those under o2, and their local times ascend in that order."""
    change_at = _change_near(day, tz)
    if change_at is None:
        return None
    change, before, after = change_at
    naive = (day.toordinal() - _EPOCH_DAY) * 86_400
    early_end = change + before - naive  # wall times before it come before the change
    late_start = change + after - naive  # wall times from it come after the change
    n_early = bisect_left(seconds, early_end)
    n_gap = bisect_left(seconds, late_start) - n_early
    gap = n_gap > 0 and 0 <= late_start < 86_400
    first_late = bisect_left(seconds, max(early_end, late_start))
    if gap and first_late < len(seconds) and seconds[first_late] == late_start:
        first_late += 1  # the same instant as the gap's
    low = bisect_left(seconds, lo_s, 0, n_early)
    found = [
        (i + 1, naive + s - before)
        for i, s in enumerate(seconds[low : bisect_right(seconds, hi_s, 0, n_early)], start=low)
    ]
    if gap and lo_s <= late_start <= hi_s:
        found.append((n_early + 1, change))
    low = bisect_left(seconds, lo_s, first_late)
    found += [
        (n_early + gap + 1 + i - first_late, naive + s - after)
        for i, s in enumerate(seconds[low : bisect_right(seconds, hi_s, first_late)], start=low)
    ]
    return found


def _change_near(day: date, tz: str) -> tuple[int, int, int] | None:
    """(instant, offset before, offset after) in seconds of the one offset change from a day
    before `day` to two days after it; None when there is none or more than one."""
    z = zone(tz)
    naive = (day.toordinal() - _EPOCH_DAY) * 86_400
    lo, hi = naive - 86_400, naive + 2 * 86_400

    def offset(at: int) -> timedelta | None:
        return datetime.fromtimestamp(at, z).utcoffset()

    o1, o2 = offset(lo), offset(hi)
    if o1 is None or o2 is None or o1 == o2:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offset(mid) == o1:
            lo = mid
        else:
            hi = mid
    if offset(hi) != o2:
        return None  # a third offset between the two: not one change
    return hi, o1 // _SECOND, o2 // _SECOND


def _numbered_by_wall(
    day: date, tz: str, seconds: tuple[int, ...], lo_s: float, hi_s: float
) -> list[tuple[int, int]]:
    """`_numbered_across_change` read from the wall clock, instant by instant."""
    z = zone(tz)
    return [
        (number, i)
        for number, i in enumerate(_instants_by_wall(day, tz, seconds), start=1)
        if lo_s <= _seconds_of(datetime.fromtimestamp(i, z).time()) <= hi_s
    ]


def _instants_by_wall(day: date, tz: str, seconds: tuple[int, ...]) -> list[int]:
    z = zone(tz)
    midnight = datetime(day.year, day.month, day.day)
    found: set[int] = set()
    for s in seconds:
        for instant in _wall_instants(midnight + timedelta(seconds=s), z)[:1]:
            if datetime.fromtimestamp(instant, z).date() == day:
                found.add(instant)
    return sorted(found)


def cycles_on(trigger: Trigger, run_date: date) -> list[Cycle]:
    """The cycles of `run_date` inside the trigger's window, in time order.

    A run day of the cron has one `Normal` cycle per matching instant; a non-run day of a
    day-restricted cron has one `SkipCycle` cycle at the cron's first time of day.
    InvalidArgument naming `cron` or `timezone` when the trigger does not parse.
    """
    cron = _cron(trigger.cron, "cron")
    zone(trigger.timezone, "timezone")
    if cron.day_expr is None or _runs_on(cron.day_expr, run_date):
        kind, instants = CycleKind.NORMAL, _instants(run_date, trigger.timezone, cron.seconds)
    else:
        kind, instants = (
            CycleKind.SKIP_CYCLE,
            _instants(run_date, trigger.timezone, cron.seconds[:1])[:1],
        )
    biz_day = run_date - timedelta(days=1)
    return [
        Cycle(s * 1000, biz_day, run_date, number, kind)
        for number, s in enumerate(instants, start=1)
        if trigger.start_ms <= s * 1000 <= trigger.end_ms
    ]


def cycles_between(trigger: Trigger, run_date: date, low: time, high: time) -> list[Cycle]:
    """The cycles of `cycles_on(trigger, run_date)` whose local time of day lies in
    [low, high], numbered as there."""
    return next(cycles_over(trigger, (run_date,), low, high))


def cycles_over(
    trigger: Trigger, run_dates: Iterable[date], low: time, high: time
) -> Iterator[list[Cycle]]:
    """For each of `run_dates` in turn, `cycles_between(trigger, run_date, low, high)`.

    Lazy, and cheap per date: the zone's offset changes are found once a year
    (`_year_changes`), and on a date without one only the cycles inside the window are built
    (on a date with one, by arithmetic too: `_numbered_across_change`), so 20,000 dates of an
    every-minute cron with a narrow window cost a few microseconds each.
    """
    cron = _cron(trigger.cron, "cron")
    tz = trigger.timezone
    zone(tz, "timezone")
    lo_s, hi_s = _seconds_of(low), _seconds_of(high)
    normal = (bisect_left(cron.seconds, lo_s), bisect_right(cron.seconds, hi_s))
    skip = (0, 1) if lo_s <= cron.seconds[0] <= hi_s else (0, 0)
    rule = None if cron.day_expr is None else _day_rule(cron.day_expr)
    year = 0
    changes: tuple[int, ...] = ()
    offsets: tuple[int, ...] = ()
    for run_date in run_dates:
        biz_day = run_date - _DAY
        runs = rule is None or rule.matches(run_date)
        kind = CycleKind.NORMAL if runs else CycleKind.SKIP_CYCLE
        if run_date.year != year:
            year = run_date.year
            changes, offsets = _year_changes(tz, year)
        naive = (run_date.toordinal() - _EPOCH_DAY) * 86_400
        near = bisect_left(changes, naive - 2 * 86_400)
        if near < len(changes) and changes[near] <= naive + 3 * 86_400:
            base = _plain_day_start(run_date, tz)  # a change within a day or two: look closely
        else:
            base = naive - offsets[near]
        if base is None:  # the day has an offset change
            seconds = cron.seconds if runs else cron.seconds[:1]
            numbered = _numbered_across_change(run_date, tz, seconds, lo_s, hi_s)
            if numbered is None:
                numbered = _numbered_by_wall(run_date, tz, seconds, lo_s, hi_s)
            yield [
                Cycle(i * 1000, biz_day, run_date, number, kind)
                for number, i in numbered
                if trigger.start_ms <= i * 1000 <= trigger.end_ms
            ]
            continue
        first, stop = normal if runs else skip
        yield [
            Cycle((base + s) * 1000, biz_day, run_date, number, kind)
            for number, s in enumerate(cron.seconds[first:stop], start=first + 1)
            if trigger.start_ms <= (base + s) * 1000 <= trigger.end_ms
        ]


def _seconds_of(at: time) -> float:
    return at.hour * 3600 + at.minute * 60 + at.second + at.microsecond / 1e6


def _offset_s(instant: int, tz: str) -> int:
    found = datetime.fromtimestamp(instant, zone(tz)).utcoffset()
    return 0 if found is None else found // _SECOND


_FIRST_S = -62_135_596_800 + 3 * 86_400  # 0001-01-04 UTC: nothing earlier is sampled
_LAST_S = 253_402_041_600  # 9999-12-29 UTC


@lru_cache(maxsize=1024)
def _year_changes(tz: str, year: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The instants (epoch s) at which zone `tz` changes its offset from 4 days before
    `year` to 4 days after it, and the offset in seconds before, between and after them.
    Sampled every 2 days, which misses none: two changes are never
    less than 4 days apart in the tz database; each is then found by bisection."""

    def offset(at: int) -> int:
        return _offset_s(at, tz)

    start = max(_FIRST_S, (date(year, 1, 1).toordinal() - _EPOCH_DAY - 4) * 86_400)
    end = min(_LAST_S, start + 374 * 86_400)
    changes: list[int] = []
    offsets = [offset(start)]
    at = start
    while at < end:
        ahead = min(at + 2 * 86_400, end)
        if (then := offset(ahead)) != offsets[-1]:
            lo, hi = at, ahead
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset(mid) == offsets[-1]:
                    lo = mid
                else:
                    hi = mid
            changes.append(hi)
            offsets.append(then)
        at = ahead
    return tuple(changes), tuple(offsets)


def immediate_cycles(trigger: Trigger, deployed_ms: int, new_workflow: bool) -> list[Cycle]:
    """The deploy date's cycles under `Immediately`, generated at `deployed_ms`.

    Cycles at or before deployed_ms + IMMEDIATE_BUFFER_MS have expired: a new workflow gets
    them as `RealtimeDeprecated` dry runs, a modified workflow does not get them at all (its
    instances generated before the deploy stand). The rest are as `cycles_on` gives them.
    """
    run_date = _local_date(deployed_ms, trigger.timezone)
    expiry = deployed_ms + IMMEDIATE_BUFFER_MS
    out: list[Cycle] = []
    for cycle in cycles_on(trigger, run_date):
        if cycle.trigger_time > expiry:
            out.append(cycle)
        elif new_workflow:
            out.append(replace(cycle, kind=CycleKind.REALTIME_DEPRECATED))
    return out


def generation_time_ms(run_date: date, tz: str) -> int:
    """Epoch ms at which `T+1` generates `run_date`'s instances: 23:30 local the day before."""
    eve = run_date - timedelta(days=1)
    return _wall_instants(datetime.combine(eve, GENERATE_AT), zone(tz))[0] * 1000


def first_run_date(trigger_tz: str, deployed_ms: int, mode: InstanceMode) -> date:
    """The first run date a deployment at `deployed_ms` has instances for.

    `Immediately`: the deploy's own local date. `T+1`: the next date, or the one after it
    when the deploy is at or after that next date's generation time (23:30 local).
    """
    today = _local_date(deployed_ms, trigger_tz)
    if mode is InstanceMode.IMMEDIATELY:
        return today
    tomorrow = today + timedelta(days=1)
    if deployed_ms >= generation_time_ms(tomorrow, trigger_tz):
        return tomorrow + timedelta(days=1)
    return tomorrow


def due_run_dates(
    tz: str, first: date, last_generated: date | None, now_ms: int, limit: int
) -> list[date]:
    """Run dates still to generate at `now_ms`, oldest first, at most `limit` of them.

    Dates run from the day after `last_generated` (or from `first`, never before it) to the
    latest date whose generation time has come. A caller catching up after downtime calls
    again with the last date it generated until the list is empty.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    start = first if last_generated is None else max(first, last_generated + timedelta(days=1))
    latest = _local_date(now_ms, tz) + timedelta(days=1)
    while generation_time_ms(latest, tz) > now_ms:
        latest -= timedelta(days=1)
    count = min((latest - start).days + 1, limit)
    return [start + timedelta(days=i) for i in range(count)]


def _local_date(instant_ms: int, tz: str) -> date:
    return datetime.fromtimestamp(instant_ms // 1000, zone(tz)).date()


def next_runs(trigger: Trigger, after_ms: int, count: int, horizon_days: int = 400) -> list[Cycle]:
    """The next `count` Normal cycles after `after_ms` (fewer when the trigger's window or
    `horizon_days` ends first), in time order."""
    found: list[Cycle] = []
    day = _local_date(after_ms, trigger.timezone)
    for _ in range(horizon_days):
        if day > _local_date(min(trigger.end_ms, MAX_MS), trigger.timezone):
            break
        for cycle in cycles_on(trigger, day):
            if cycle.trigger_time > after_ms and cycle.kind is CycleKind.NORMAL:
                found.append(cycle)
                if len(found) == count:
                    return found
        day += timedelta(days=1)
    return found
