"""Business-date arithmetic: which calendar day an instant falls on in a workspace's zone.

A BizDate on the wire is an instant; dwsched keeps the calendar day it names, and answers
with 00:00:00 of that day in the workspace's zone (the first instant of the day where a
daylight-saving gap swallows midnight).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dwsched.domain.errors import InvalidArgument

MIN_MS = 0
MAX_MS = 253_402_214_399_999  # 9999-12-30T23:59:59.999Z
# Business days dwsched can represent in every zone (a day's end must be representable too).
FIRST_DAY = date(1970, 1, 2)
LAST_DAY = date(9999, 12, 30)


@lru_cache(maxsize=512)
def zone(name: str, param: str = "TimeZone") -> ZoneInfo:
    """The zone called `name`; InvalidArgument naming `param` when it is not an IANA zone."""
    message = f"The parameter {param} {name!r} is not an IANA time zone (e.g. Asia/Shanghai)."
    if not name or name != name.strip() or name.startswith("/") or ".." in name or "\x00" in name:
        raise InvalidArgument(param, message)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidArgument(param, message) from exc


@lru_cache(maxsize=65536)
def day_of(instant_ms: int, tz: str, param: str = "BizDate") -> date:
    """The calendar day in zone `tz` that contains the instant.

    InvalidArgument naming `param` when the day is outside FIRST_DAY..LAST_DAY, so that a
    day's first instant and its end are representable in every zone.
    """
    if not MIN_MS <= instant_ms <= MAX_MS:
        raise InvalidArgument(
            param,
            f"The parameter {param} must be epoch milliseconds between {MIN_MS} and {MAX_MS}.",
        )
    day = datetime.fromtimestamp(instant_ms / 1000, UTC).astimezone(zone(tz)).date()
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidArgument(
            param,
            f"The parameter {param} falls on {day} in {tz}; days from {FIRST_DAY} to "
            f"{LAST_DAY} are supported.",
        )
    return day


@lru_cache(maxsize=65536)
def day_start_ms(day: date, tz: str) -> int:
    """Epoch ms of the first instant of `day` in zone `tz`."""
    z = zone(tz)
    local = datetime(day.year, day.month, day.day, tzinfo=z)
    start = local.astimezone(UTC)
    # A gap at midnight: 00:00 does not exist; the day starts when the gap ends.
    if start.astimezone(z).date() != day:
        start = _first_instant_of(day, z, start)
    return int(start.timestamp() * 1000)


def _first_instant_of(day: date, z: ZoneInfo, guess: datetime) -> datetime:
    lo, hi = guess - timedelta(hours=3), guess + timedelta(hours=3)
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(z).date() >= day:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def day_window_ms(day: date, tz: str) -> tuple[int, int]:
    """[start, end) of `day` in zone `tz`, in epoch ms."""
    return day_start_ms(day, tz), day_start_ms(day + timedelta(days=1), tz)


def day_key(day: date) -> int:
    """The storage key of a calendar day: yyyymmdd as an integer."""
    return day.year * 10000 + day.month * 100 + day.day


def day_from_key(key: int) -> date:
    return date(key // 10000, key // 100 % 100, key % 100)
