"""When a rule fires and whether its alert is sent (domain.alerting, pure)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from dwsched.domain.alerting import (
    MINUTE_MS,
    TaskChange,
    Throttle,
    Verdict,
    fires_on,
    repeat_of,
    retry_delay_ms,
    unfinished_deadline,
    verdict,
)
from dwsched.domain.alerts import TriggerType as T
from dwsched.domain.models import Status as S
from dwsched.domain.transitions import Cause as C

TZ = "Asia/Shanghai"


def change(old: S, new: S, cause: C, retries: int = 0) -> TaskChange:
    return TaskChange(1, 2, 3, old, new, cause, 1, retries)


@pytest.mark.parametrize(
    ("trigger", "c", "alert_retries", "fires"),
    [
        (T.ERROR, change(S.RUNNING, S.FAILURE, C.FINISH), False, True),
        (T.ERROR, change(S.RUNNING, S.FAILURE, C.RECOVERY), False, True),
        (T.ERROR, change(S.RUNNING, S.FAILURE, C.STOP), False, False),  # an operator's stop
        (T.ERROR, change(S.RUNNING, S.WAIT_RESOURCE, C.RETRY), False, False),
        (T.ERROR, change(S.RUNNING, S.WAIT_RESOURCE, C.RETRY), True, True),
        (T.EXHAUSTED_ERROR, change(S.RUNNING, S.FAILURE, C.FINISH, retries=2), False, True),
        (T.EXHAUSTED_ERROR, change(S.RUNNING, S.FAILURE, C.FINISH, retries=0), False, False),
        (T.FINISHED, change(S.RUNNING, S.SUCCESS, C.FINISH), False, True),
        (T.FINISHED, change(S.WAIT_TIME, S.SUCCESS, C.PLAN), False, True),  # a dry run
        (T.FINISHED, change(S.RUNNING, S.FAILURE, C.FINISH), False, False),
        (T.FINISHED, change(S.SUCCESS, S.SUCCESS, C.RESUME), False, False),  # no change
    ],
)
def test_fires_on(trigger: T, c: TaskChange, alert_retries: bool, fires: bool) -> None:
    assert fires_on(trigger, c, alert_retries) is fires


def test_an_unfinished_time_is_on_the_bizdates_run_day_or_the_day_after() -> None:
    biz = date(2026, 3, 1)
    at = datetime.fromtimestamp(unfinished_deadline(biz, "08:30", TZ) / 1000, ZoneInfo(TZ))
    assert at == datetime(2026, 3, 2, 8, 30, tzinfo=ZoneInfo(TZ))
    late = datetime.fromtimestamp(unfinished_deadline(biz, "47:59", TZ) / 1000, ZoneInfo(TZ))
    assert late == datetime(2026, 3, 3, 23, 59, tzinfo=ZoneInfo(TZ))
    with pytest.raises(ValueError):
        unfinished_deadline(biz, "48:00", TZ)


def test_a_condition_repeats_every_interval_or_never() -> None:
    assert repeat_of(1000, 999, 5) == 0
    assert repeat_of(1000, 1000 + 5 * MINUTE_MS - 1, 5) == 0
    assert repeat_of(1000, 1000 + 5 * MINUTE_MS, 5) == 1
    assert repeat_of(1000, 1000 + 100 * MINUTE_MS, None) == 0


def at(hour: int, minute: int) -> int:
    return int(datetime(2026, 3, 2, hour, minute, tzinfo=ZoneInfo(TZ)).timestamp() * 1000)


def test_silence_windows_may_span_midnight_and_maximum_counts_the_day() -> None:
    night = Throttle(None, "22:00", "06:00")
    assert verdict(night, at(23, 0), TZ, 0) is Verdict.SILENCED
    assert verdict(night, at(5, 59), TZ, 0) is Verdict.SILENCED
    assert verdict(night, at(6, 0), TZ, 0) is Verdict.SEND
    day = Throttle(3, "12:00", "13:00")
    assert verdict(day, at(12, 30), TZ, 0) is Verdict.SILENCED
    assert verdict(day, at(14, 0), TZ, 2) is Verdict.SEND
    assert verdict(day, at(14, 0), TZ, 3) is Verdict.OVER_MAXIMUM


def test_deliveries_back_off_to_half_an_hour() -> None:
    assert [retry_delay_ms(n) // 1000 for n in (1, 2, 3)] == [10, 20, 40]
    assert retry_delay_ms(20) == 30 * MINUTE_MS
