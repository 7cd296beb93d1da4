"""Pure tests of cycle and generation arithmetic (`dwsched.domain.schedule`).

Expected instants are computed here with datetime and zoneinfo (or written out in UTC), never
with the code under test. Daylight-saving cases use Europe/Berlin (2025-03-30 02:00 -> 03:00,
2025-10-26 03:00 -> 02:00) and zones with odd transitions; Asia/Shanghai has none.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings, strategies as st

from dwsched.domain.errors import InvalidArgument
from dwsched.domain.schedule import (
    GENERATE_AT,
    IMMEDIATE_BUFFER_MS,
    Cycle,
    CycleKind,
    InstanceMode,
    Trigger,
    cycles_on,
    due_run_dates,
    first_run_date,
    generation_time_ms,
    immediate_cycles,
    parse_cron,
    parse_window_time,
)

SH = "Asia/Shanghai"
BERLIN = "Europe/Berlin"
SPRING = date(2025, 3, 30)  # Berlin: 02:00 CET -> 03:00 CEST
AUTUMN = date(2025, 10, 26)  # Berlin: 03:00 CEST -> 02:00 CET
PATH = "$.spec.workflows[0].trigger.cron"
FOREVER = (-(2**53), 2**53)
FAST = settings(max_examples=200, deadline=None, derandomize=True, database=None)


def local_ms(
    tz: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, fold: int = 0
) -> int:
    """Epoch ms of a wall-clock time in `tz`."""
    return int(datetime(y, mo, d, h, mi, s, tzinfo=ZoneInfo(tz), fold=fold).timestamp() * 1000)


def utc_ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp() * 1000)


def trigger(
    cron: str, tz: str = SH, start_ms: int = FOREVER[0], end_ms: int = FOREVER[1]
) -> Trigger:
    return Trigger(cron, tz, start_ms, end_ms)


def times(cycles: list[Cycle]) -> list[int]:
    return [c.trigger_time for c in cycles]


def matching_instants(tz: str, day: date, match: Callable[[datetime], bool]) -> list[int]:
    """Every whole-minute instant whose local wall-clock time is on `day` and matches."""
    z = ZoneInfo(tz)
    at = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=15)
    end = at + timedelta(hours=54)
    out = []
    while at < end:
        local = at.astimezone(z)
        if local.date() == day and match(local):
            out.append(int(at.timestamp() * 1000))
        at += timedelta(minutes=1)
    return out


# parse_cron


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("00 30 02 * * ?", "00 30 02 * * ?"),
        ("  0  0 *  * * ?  ", "0 0 * * * ?"),
        ("0 */5 * * * ?", "0 */5 * * * ?"),
        ("0 0 3 ? * mon", "0 0 3 ? * MON"),
        ("0\t0 1 1 * ?", "0 0 1 1 * ?"),
        ("0 0 0 L * ?", "0 0 0 L * ?"),
        ("0 0 0 15W * ?", "0 0 0 15W * ?"),
        ("0 0 0 ? * 5#3", "0 0 0 ? * 5#3"),
        ("0 0 0 ? * L5", "0 0 0 ? * L5"),
        ("0 0/15 9-17 * jan-mar ?", "0 0/15 9-17 * JAN-MAR ?"),
        ("0 0 0 ? * 1-7", "0 0 0 ? * 1-7"),
        ("0 0 0 * * MON-FRI", "0 0 0 * * MON-FRI"),
        ("0 0 0 ? * ?", "0 0 0 ? * ?"),
    ],
)
def test_parse_cron_accepts_and_normalises(text: str, normalised: str) -> None:
    assert parse_cron(text, PATH) == normalised


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "0 fields"),
        ("0 0 * * ?", "5 fields"),
        ("0 0 0 * * ? 2025", "7 fields"),
        ("every day at noon", "4 fields"),
        ("60 0 0 * * ?", "second field '60'"),
        ("0 60 0 * * ?", "minute field '60'"),
        ("0 0 24 * * ?", "hour field '24'"),
        ("0 0 0 32 * ?", "day-of-month field '32'"),
        ("0 0 0 0 * ?", "day-of-month field '0'"),
        ("0 0 0 * 13 ?", "month field '13'"),
        ("0 0 0 ? * 8", "day-of-week field '8'"),
        ("0 0 0 ? * FOO", "day-of-week field 'FOO'"),
        ("0 0 0 ? * 5#6", "day-of-week field '5#6'"),
        ("0 */0 * * * ?", "minute field '*/0'"),
        ("0 -1 * * * ?", "minute field '-1'"),
        ("0 1.5 * * * ?", "minute field '1.5'"),
        ("0 ? 0 * * ?", "minute field '?'"),
        ("H 0 0 * * ?", "second field 'H'"),
        ("0 0 R * * ?", "hour field 'R'"),
        ("0 0 0 * R ?", "month field 'R'"),
        ("abc def ghi jkl mno pqr", "second field 'ABC'"),
        ("0 0 0 1 * MON", "cannot both be set"),
        ("0 0 0 30 2 ?", "never fires"),
        ("0 0 0 31 4,6 ?", "never fires"),
    ],
)
def test_parse_cron_rejects_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_cron(text, PATH)
    assert caught.value.param == PATH
    assert problem in caught.value.message
    assert PATH in caught.value.message


_TOKEN_TEXT = "0 00 5 59 60 23 24 31 32 12 13 7 8 * ? L W */5 0/15 1-5 5-1 1,2 15W L5 5#3"
_TOKENS = st.sampled_from([*_TOKEN_TEXT.split(), "MON", "JAN", "X", "-", ",", "R", "H"])


@FAST
@given(st.one_of(st.text(max_size=40), st.lists(_TOKENS, min_size=5, max_size=7).map(" ".join)))
def test_parse_cron_only_ever_returns_text_or_raises_invalid_argument(text: str) -> None:
    try:
        normalised = parse_cron(text, PATH)
    except InvalidArgument as exc:
        assert exc.param == PATH
    else:
        assert len(normalised.split(" ")) == 6
        assert parse_cron(normalised, PATH) == normalised


def test_cycles_on_names_the_broken_part_of_a_trigger() -> None:
    with pytest.raises(InvalidArgument) as caught:
        cycles_on(trigger("0 0 0 * *"), date(2025, 4, 1))
    assert caught.value.param == "cron"
    with pytest.raises(InvalidArgument) as caught:
        cycles_on(trigger("0 0 0 * * ?", "Mars/Olympus"), date(2025, 4, 1))
    assert caught.value.param == "timezone"


# cycles_on: daily and finer


def test_daily_cycle_in_shanghai() -> None:
    (cycle,) = cycles_on(trigger("00 30 02 * * ?"), date(2025, 4, 1))
    assert cycle == Cycle(
        trigger_time=local_ms(SH, 2025, 4, 1, 2, 30),
        biz_day=date(2025, 3, 31),
        run_date=date(2025, 4, 1),
        period_number=1,
        kind=CycleKind.NORMAL,
    )
    assert cycle.trigger_time == utc_ms(2025, 3, 31, 18, 30)
    assert not cycle.dry_run


def test_biz_day_crosses_months_and_years() -> None:
    (cycle,) = cycles_on(trigger("0 0 0 * * ?"), date(2025, 1, 1))
    assert cycle.biz_day == date(2024, 12, 31)
    assert cycle.trigger_time == utc_ms(2024, 12, 31, 16)
    (cycle,) = cycles_on(trigger("0 0 0 * * ?"), date(2024, 3, 1))
    assert cycle.biz_day == date(2024, 2, 29)


def test_hourly_cycles_are_numbered_in_time_order() -> None:
    day = date(2025, 4, 1)
    cycles = cycles_on(trigger("0 0 * * * ?"), day)
    assert times(cycles) == [local_ms(SH, 2025, 4, 1, h) for h in range(24)]
    assert [c.period_number for c in cycles] == list(range(1, 25))
    assert {c.biz_day for c in cycles} == {date(2025, 3, 31)}
    assert {c.kind for c in cycles} == {CycleKind.NORMAL}


def test_every_five_minutes() -> None:
    cycles = cycles_on(trigger("0 */5 * * * ?"), date(2025, 4, 1))
    assert len(cycles) == 288
    assert times(cycles) == [utc_ms(2025, 3, 31, 16) + i * 300_000 for i in range(288)]


def test_lists_ranges_and_seconds() -> None:
    cycles = cycles_on(trigger("15 0,30 9-10 * * ?"), date(2025, 4, 1))
    assert times(cycles) == [
        local_ms(SH, 2025, 4, 1, 9, 0, 15),
        local_ms(SH, 2025, 4, 1, 9, 30, 15),
        local_ms(SH, 2025, 4, 1, 10, 0, 15),
        local_ms(SH, 2025, 4, 1, 10, 30, 15),
    ]


# cycles_on: daylight saving


def test_spring_forward_daily_job_in_the_gap_fires_once_when_the_gap_ends() -> None:
    (cycle,) = cycles_on(trigger("00 30 02 * * ?", BERLIN), SPRING)
    assert cycle.trigger_time == utc_ms(2025, 3, 30, 1)  # 03:00 CEST
    assert cycle.period_number == 1
    assert cycle.biz_day == date(2025, 3, 29)


def test_spring_forward_hourly_has_23_cycles() -> None:
    cycles = cycles_on(trigger("0 0 * * * ?", BERLIN), SPRING)
    expected = matching_instants(BERLIN, SPRING, lambda t: t.minute == 0)
    assert len(expected) == 23
    assert times(cycles) == expected
    assert times(cycles)[:3] == [
        utc_ms(2025, 3, 29, 23),
        utc_ms(2025, 3, 30),
        utc_ms(2025, 3, 30, 1),
    ]
    assert [c.period_number for c in cycles] == list(range(1, 24))


def test_spring_forward_every_five_minutes_merges_the_gap() -> None:
    cycles = cycles_on(trigger("0 */5 * * * ?", BERLIN), SPRING)
    assert times(cycles) == matching_instants(BERLIN, SPRING, lambda t: t.minute % 5 == 0)
    assert len(cycles) == 288 - 12


def test_fall_back_hourly_fires_each_wall_time_once() -> None:
    cycles = cycles_on(trigger("0 0 * * * ?", BERLIN), AUTUMN)
    assert len(cycles) == 24
    assert times(cycles)[2:4] == [
        local_ms(
            BERLIN, 2025, 10, 26, 2, fold=0
        ),  # 02:00 CEST; the repeated 02:00 CET is not a cycle
        local_ms(BERLIN, 2025, 10, 26, 3),
    ]
    assert [c.period_number for c in cycles] == list(range(1, 25))


def test_fall_back_daily_job_runs_once() -> None:
    cycles = cycles_on(trigger("00 30 02 * * ?", BERLIN), AUTUMN)
    assert times(cycles) == [utc_ms(2025, 10, 26, 0, 30)]  # 02:30 CEST
    assert [c.period_number for c in cycles] == [1]


def test_ordinary_berlin_days_around_the_changes() -> None:
    (before,) = cycles_on(trigger("00 30 02 * * ?", BERLIN), SPRING - timedelta(days=1))
    (after,) = cycles_on(trigger("00 30 02 * * ?", BERLIN), SPRING + timedelta(days=1))
    assert before.trigger_time == utc_ms(2025, 3, 29, 1, 30)  # CET
    assert after.trigger_time == utc_ms(2025, 3, 31, 0, 30)  # CEST
    assert len(cycles_on(trigger("0 0 * * * ?", BERLIN), AUTUMN + timedelta(days=1))) == 24


def test_gap_at_midnight_maps_to_the_first_instant_of_the_day() -> None:
    # America/Santiago 2024-09-08: 00:00 -04 becomes 01:00 -03.
    tz, day = "America/Santiago", date(2024, 9, 8)
    (cycle,) = cycles_on(trigger("0 30 0 * * ?", tz), day)
    assert cycle.trigger_time == utc_ms(2024, 9, 8, 4)
    half_hourly = cycles_on(trigger("0 0/30 * * * ?", tz), day)
    assert times(half_hourly) == matching_instants(tz, day, lambda t: t.minute in (0, 30))


def test_half_hour_gap_in_lord_howe() -> None:
    # Australia/Lord_Howe 2024-10-06: 02:00 +10:30 becomes 02:30 +11.
    tz, day = "Australia/Lord_Howe", date(2024, 10, 6)
    (cycle,) = cycles_on(trigger("0 15 2 * * ?", tz), day)
    assert cycle.trigger_time == utc_ms(2024, 10, 5, 15, 30)
    cycles = cycles_on(trigger("0 0/30 * * * ?", tz), day)
    assert times(cycles) == matching_instants(tz, day, lambda t: t.minute in (0, 30))
    assert len(cycles) == 47


def test_a_skipped_day_has_no_cycles() -> None:
    # Pacific/Apia skipped 2011-12-30 entirely.
    assert cycles_on(trigger("0 30 0 * * ?", "Pacific/Apia"), date(2011, 12, 30)) == []
    (cycle,) = cycles_on(trigger("0 30 0 * * ?", "Pacific/Apia"), date(2011, 12, 31))
    assert cycle.trigger_time == local_ms("Pacific/Apia", 2011, 12, 31, 0, 30)


_ZONES = st.sampled_from(
    [SH, BERLIN, "America/New_York", "America/Santiago", "Australia/Lord_Howe", "UTC"]
)
_TRANSITION_DAYS = [
    SPRING,
    AUTUMN,
    date(2025, 3, 9),
    date(2025, 11, 2),
    date(2024, 9, 8),
    date(2025, 4, 6),
    date(2024, 10, 6),
]
_DAYS = st.one_of(st.sampled_from(_TRANSITION_DAYS), st.dates(date(2024, 1, 1), date(2026, 12, 31)))


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@example(BERLIN, AUTUMN, {1, 2, 3}, {0, 30})  # the repeated hour
@example(BERLIN, SPRING, {1, 2, 3}, {0, 30})  # the skipped hour
@given(
    _ZONES,
    _DAYS,
    st.sets(st.integers(0, 23), min_size=1, max_size=6),
    st.sets(st.sampled_from([0, 15, 30, 45, 59]), min_size=1, max_size=3),
)
def test_cycles_are_the_first_instants_of_the_matching_wall_times(
    tz: str, day: date, hours: set[int], minutes: set[int]
) -> None:
    cron = f"0 {','.join(map(str, sorted(minutes)))} {','.join(map(str, sorted(hours)))} * * ?"
    cycles = cycles_on(trigger(cron, tz), day)
    z = ZoneInfo(tz)
    every = matching_instants(tz, day, lambda t: t.hour in hours and t.minute in minutes)
    # A wall time that repeats fires at its first instant only.
    first_of: dict[time, int] = {}
    for ms in every:
        first_of.setdefault(datetime.fromtimestamp(ms / 1000, z).time(), ms)
    found = sorted(first_of.values())
    # A wall time the day skips fires at the first instant after the gap (if still on `day`).
    on_day = matching_instants(tz, day, lambda t: True)
    walls = {datetime.fromtimestamp(ms / 1000, z).replace(tzinfo=None).time() for ms in on_day}
    for h in hours:
        for m in minutes:
            if time(h, m) not in walls:
                later = [
                    ms for ms in on_day if datetime.fromtimestamp(ms / 1000, z).time() > time(h, m)
                ]
                if later:
                    found.append(later[0])
    assert times(cycles) == sorted(set(found))
    assert [c.period_number for c in cycles] == list(range(1, len(cycles) + 1))
    assert all(c.run_date == day and c.biz_day == day - timedelta(days=1) for c in cycles)


# cycles_on: day-restricted schedules


def test_weekly_run_day_and_dry_run_days() -> None:
    cron = "0 0 3 ? * MON"
    monday = date(2025, 3, 3)
    (run,) = cycles_on(trigger(cron, BERLIN), monday)
    assert run.kind is CycleKind.NORMAL
    assert run.trigger_time == utc_ms(2025, 3, 3, 2)
    for offset in range(1, 7):
        day = monday + timedelta(days=offset)
        (dry,) = cycles_on(trigger(cron, BERLIN), day)
        assert dry.kind is CycleKind.SKIP_CYCLE
        assert dry.dry_run
        assert dry.trigger_time == local_ms(BERLIN, day.year, day.month, day.day, 3)
        assert dry.period_number == 1
        assert dry.biz_day == day - timedelta(days=1)


def test_day_of_week_numbers_follow_spring() -> None:
    monday, sunday = date(2025, 3, 3), date(2025, 3, 9)
    for cron in ("0 0 3 ? * 1", "0 0 3 ? * MON", "0 0 3 * * MON"):
        assert cycles_on(trigger(cron), monday)[0].kind is CycleKind.NORMAL
        assert cycles_on(trigger(cron), sunday)[0].kind is CycleKind.SKIP_CYCLE
    for cron in ("0 0 3 ? * 0", "0 0 3 ? * 7", "0 0 3 ? * SUN"):
        assert cycles_on(trigger(cron), sunday)[0].kind is CycleKind.NORMAL
        assert cycles_on(trigger(cron), monday)[0].kind is CycleKind.SKIP_CYCLE


def test_dry_run_is_at_the_first_time_of_day_and_alone() -> None:
    cron = "0 15,45 9,17 ? * MON-FRI"
    saturday, monday = date(2025, 4, 5), date(2025, 4, 7)
    (dry,) = cycles_on(trigger(cron), saturday)
    assert dry.trigger_time == local_ms(SH, 2025, 4, 5, 9, 15)
    assert dry.kind is CycleKind.SKIP_CYCLE
    runs = cycles_on(trigger(cron), monday)
    assert times(runs) == [local_ms(SH, 2025, 4, 7, h, m) for h in (9, 17) for m in (15, 45)]
    assert {c.kind for c in runs} == {CycleKind.NORMAL}


def test_monthly_first_day() -> None:
    cron = "0 0 1 1 * ?"
    (run,) = cycles_on(trigger(cron), date(2025, 4, 1))
    assert (run.kind, run.trigger_time) == (CycleKind.NORMAL, utc_ms(2025, 3, 31, 17))
    (dry,) = cycles_on(trigger(cron), date(2025, 4, 2))
    assert (dry.kind, dry.trigger_time) == (CycleKind.SKIP_CYCLE, utc_ms(2025, 4, 1, 17))


def test_last_day_nearest_weekday_and_nth_weekday() -> None:
    def kind(cron: str, day: date) -> CycleKind:
        return cycles_on(trigger(cron), day)[0].kind

    assert kind("0 0 0 L * ?", date(2024, 2, 29)) is CycleKind.NORMAL
    assert kind("0 0 0 L * ?", date(2025, 2, 28)) is CycleKind.NORMAL
    assert kind("0 0 0 L * ?", date(2025, 3, 30)) is CycleKind.SKIP_CYCLE
    # 2025-03-15 is a Saturday: the nearest weekday is Friday the 14th.
    assert kind("0 0 0 15W * ?", date(2025, 3, 14)) is CycleKind.NORMAL
    assert kind("0 0 0 15W * ?", date(2025, 3, 15)) is CycleKind.SKIP_CYCLE
    # Third Friday and last Friday of March 2025.
    assert kind("0 0 0 ? * 5#3", date(2025, 3, 21)) is CycleKind.NORMAL
    assert kind("0 0 0 ? * 5#3", date(2025, 3, 14)) is CycleKind.SKIP_CYCLE
    assert kind("0 0 0 ? * L5", date(2025, 3, 28)) is CycleKind.NORMAL
    assert kind("0 0 0 ? * L5", date(2025, 3, 21)) is CycleKind.SKIP_CYCLE
    assert kind("0 0 0 1 JAN ?", date(2026, 1, 1)) is CycleKind.NORMAL
    assert kind("0 0 0 1 JAN ?", date(2026, 2, 1)) is CycleKind.SKIP_CYCLE


def test_full_ranges_are_daily() -> None:
    for cron in ("0 0 4 1-31 * ?", "0 0 4 ? * 1-7", "0 0 4 ? 1-12 SUN-SAT"):
        for day in (date(2025, 4, d) for d in range(1, 8)):
            assert cycles_on(trigger(cron), day)[0].kind is CycleKind.NORMAL


def test_dry_runs_on_daylight_saving_days() -> None:
    # Sunday 2025-03-30 and 2025-10-26 are not Mondays.
    (spring,) = cycles_on(trigger("0 30 2 ? * MON", BERLIN), SPRING)
    assert (spring.kind, spring.trigger_time) == (CycleKind.SKIP_CYCLE, utc_ms(2025, 3, 30, 1))
    (autumn,) = cycles_on(trigger("0 30 2 ? * MON", BERLIN), AUTUMN)
    assert (autumn.kind, autumn.trigger_time) == (
        CycleKind.SKIP_CYCLE,
        utc_ms(2025, 10, 26, 0, 30),
    )
    # On a run day the repeated time fires once, as for a daily job.
    runs = cycles_on(trigger("0 30 2 ? * SUN", BERLIN), AUTUMN)
    assert times(runs) == [utc_ms(2025, 10, 26, 0, 30)]


# validity window


def test_window_is_inclusive_and_keeps_period_numbers() -> None:
    day = date(2025, 4, 1)
    start, end = local_ms(SH, 2025, 4, 1, 12), local_ms(SH, 2025, 4, 1, 14)
    cycles = cycles_on(trigger("0 0 * * * ?", SH, start, end), day)
    assert times(cycles) == [start, start + 3_600_000, end]
    assert [c.period_number for c in cycles] == [13, 14, 15]
    assert cycles_on(trigger("0 0 * * * ?", SH, start + 1, end - 1), day)[0].period_number == 14


def test_window_outside_the_day_leaves_nothing() -> None:
    day = date(2025, 4, 1)
    noon = local_ms(SH, 2025, 4, 1, 12)
    assert cycles_on(trigger("0 0 6 * * ?", SH, noon, 2**53), day) == []
    assert cycles_on(trigger("0 0 18 * * ?", SH, 0, noon), day) == []
    assert cycles_on(trigger("0 0 18 ? * MON", SH, 0, noon), day) == []  # dry runs too
    (dry,) = cycles_on(trigger("0 0 6 ? * MON", SH, 0, noon), day)
    assert dry.kind is CycleKind.SKIP_CYCLE


# parse_window_time


def test_window_times() -> None:
    assert parse_window_time("2025-03-31 00:00:00", SH, "$.s") == 1_743_350_400_000
    assert parse_window_time("1970-01-01 00:00:00", SH, "$.s") == -8 * 3_600_000
    assert parse_window_time("9999-01-01 00:00:00", SH, "$.s") == local_ms(SH, 9999, 1, 1)
    assert parse_window_time("2025-06-01 12:34:56", BERLIN, "$.s") == utc_ms(2025, 6, 1, 10, 34, 56)


def test_window_time_in_a_gap_or_a_fold() -> None:
    assert parse_window_time("2025-03-30 02:30:00", BERLIN, "$.s") == utc_ms(2025, 3, 30, 1)
    assert parse_window_time("2025-10-26 02:30:00", BERLIN, "$.s") == utc_ms(2025, 10, 26, 0, 30)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2025-03-31",
        "2025-03-31T00:00:00",
        "2025-03-31 00:00",
        "2025-3-31 00:00:00",
        "2025-02-30 00:00:00",
        "2025-03-31 24:00:00",
        "2025-03-31 00:60:00",
        " 2025-03-31 00:00:00",
        "2025-03-31 00:00:00.000",
        "0000-01-01 00:00:00",
        "\u0662\u0660\u0662\u0665-03-31 00:00:00",  # Arabic-Indic digits
    ],
)
def test_window_time_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_window_time(text, SH, "$.spec.workflows[0].trigger.startTime")
    assert caught.value.param == "$.spec.workflows[0].trigger.startTime"
    assert "yyyy-MM-dd HH:mm:ss" in caught.value.message


def test_window_time_rejects_unknown_zone() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_window_time("2025-03-31 00:00:00", "Nowhere/Town", "$.t")
    assert caught.value.param == "$.t"


# generation


def test_generation_time_is_the_eve_at_23_30() -> None:
    assert GENERATE_AT == time(23, 30)
    assert generation_time_ms(date(2025, 4, 1), SH) == utc_ms(2025, 3, 31, 15, 30)
    # The eve of 2025-03-31 in Berlin is the spring-forward day: 23:30 CEST.
    assert generation_time_ms(date(2025, 3, 31), BERLIN) == utc_ms(2025, 3, 30, 21, 30)
    assert generation_time_ms(date(2025, 3, 30), BERLIN) == utc_ms(2025, 3, 29, 22, 30)


@pytest.mark.parametrize(
    ("deployed", "expected"),
    [
        ((2025, 4, 1, 0, 0), date(2025, 4, 2)),
        ((2025, 4, 1, 12, 0), date(2025, 4, 2)),
        ((2025, 4, 1, 23, 29), date(2025, 4, 2)),
        ((2025, 4, 1, 23, 30), date(2025, 4, 3)),
        ((2025, 4, 1, 23, 59), date(2025, 4, 3)),
    ],
)
def test_first_run_date_next_day(deployed: tuple[int, int, int, int, int], expected: date) -> None:
    y, mo, d, h, mi = deployed
    assert first_run_date(SH, local_ms(SH, y, mo, d, h, mi), InstanceMode.T_PLUS_1) == expected


def test_first_run_date_one_ms_before_generation() -> None:
    deployed = local_ms(SH, 2025, 4, 1, 23, 30) - 1
    assert first_run_date(SH, deployed, InstanceMode.T_PLUS_1) == date(2025, 4, 2)


def test_first_run_date_immediately_is_the_deploy_date() -> None:
    for hour in (0, 12, 23):
        deployed = local_ms(SH, 2025, 4, 1, hour, 45)
        assert first_run_date(SH, deployed, InstanceMode.IMMEDIATELY) == date(2025, 4, 1)


def test_first_run_date_uses_the_trigger_zone() -> None:
    deployed = utc_ms(2025, 4, 1, 20)  # 04:00 on 04-02 in Shanghai, 22:00 on 04-01 in Berlin
    assert first_run_date(SH, deployed, InstanceMode.T_PLUS_1) == date(2025, 4, 3)
    assert first_run_date(BERLIN, deployed, InstanceMode.T_PLUS_1) == date(2025, 4, 2)
    assert first_run_date(BERLIN, deployed, InstanceMode.IMMEDIATELY) == date(2025, 4, 1)


def test_instance_mode_spellings() -> None:
    assert InstanceMode("T+1") is InstanceMode.T_PLUS_1
    assert InstanceMode("Immediately") is InstanceMode.IMMEDIATELY
    assert [k.value for k in CycleKind] == ["Normal", "SkipCycle", "RealtimeDeprecated"]


def test_due_run_dates_before_and_after_the_nightly_run() -> None:
    first = date(2025, 4, 2)
    before = local_ms(SH, 2025, 4, 1, 23, 29, 59)
    at = local_ms(SH, 2025, 4, 1, 23, 30)
    assert due_run_dates(SH, first, None, before, 10) == []
    assert due_run_dates(SH, first, None, at, 10) == [date(2025, 4, 2)]
    assert due_run_dates(SH, first, date(2025, 4, 2), at, 10) == []
    next_day = local_ms(SH, 2025, 4, 2, 9)
    assert due_run_dates(SH, first, date(2025, 4, 2), next_day, 10) == []
    next_night = local_ms(SH, 2025, 4, 2, 23, 45)
    assert due_run_dates(SH, first, date(2025, 4, 2), next_night, 10) == [date(2025, 4, 3)]


def test_due_run_dates_catch_up_after_downtime_in_pages() -> None:
    first = date(2025, 4, 2)
    now = local_ms(SH, 2025, 4, 10, 8)  # down since 2025-04-03's generation
    assert due_run_dates(SH, first, date(2025, 4, 3), now, 100) == [
        date(2025, 4, d) for d in range(4, 11)
    ]
    seen: list[date] = []
    last: date | None = date(2025, 4, 3)
    while page := due_run_dates(SH, first, last, now, 3):
        assert len(page) <= 3
        seen += page
        last = page[-1]
    assert seen == [date(2025, 4, d) for d in range(4, 11)]


def test_due_run_dates_never_before_the_first_date() -> None:
    now = local_ms(SH, 2025, 4, 10, 8)
    first = date(2025, 4, 8)
    assert due_run_dates(SH, first, None, now, 10) == [
        date(2025, 4, 8),
        date(2025, 4, 9),
        date(2025, 4, 10),
    ]
    assert due_run_dates(SH, first, date(2025, 1, 1), now, 10)[0] == first
    assert due_run_dates(SH, date(2025, 5, 1), None, now, 10) == []


def test_due_run_dates_immediately_includes_the_deploy_date() -> None:
    deployed = local_ms(SH, 2025, 4, 1, 10)
    first = first_run_date(SH, deployed, InstanceMode.IMMEDIATELY)
    assert due_run_dates(SH, first, None, deployed, 10) == [date(2025, 4, 1)]
    late = local_ms(SH, 2025, 4, 1, 23, 40)
    first = first_run_date(SH, late, InstanceMode.IMMEDIATELY)
    assert due_run_dates(SH, first, None, late, 10) == [date(2025, 4, 1), date(2025, 4, 2)]


def test_due_run_dates_across_a_daylight_saving_change() -> None:
    now = utc_ms(2025, 3, 30, 21, 30)  # 23:30 CEST on the spring-forward day
    assert due_run_dates(BERLIN, SPRING, None, now, 10) == [SPRING, date(2025, 3, 31)]
    assert due_run_dates(BERLIN, SPRING, None, now - 1, 10) == [SPRING]


def test_due_run_dates_needs_a_positive_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        due_run_dates(SH, date(2025, 4, 1), None, utc_ms(2025, 4, 1), 0)


@FAST
@given(
    st.sampled_from([SH, BERLIN, "America/New_York"]),
    st.integers(utc_ms(2024, 1, 1), utc_ms(2026, 1, 1)),
    st.integers(0, 40 * 86_400_000),
    st.integers(1, 50),
)
def test_catch_up_generates_each_due_date_once(
    tz: str, deployed: int, wait: int, limit: int
) -> None:
    first = first_run_date(tz, deployed, InstanceMode.T_PLUS_1)
    now = deployed + wait
    seen: list[date] = []
    last: date | None = None
    while page := due_run_dates(tz, first, last, now, limit):
        seen += page
        last = page[-1]
    assert seen == sorted(set(seen))
    assert all(generation_time_ms(d, tz) <= now for d in seen)
    if seen:
        assert seen[0] == first
        assert generation_time_ms(seen[-1] + timedelta(days=1), tz) > now
    else:
        assert generation_time_ms(first, tz) > now


# immediate deployment


def test_immediate_new_workflow_marks_expired_cycles() -> None:
    deployed = local_ms(SH, 2025, 4, 1, 10, 5)  # cycles up to 10:15 have expired
    cycles = immediate_cycles(trigger("0 0 * * * ?"), deployed, new_workflow=True)
    assert times(cycles) == [local_ms(SH, 2025, 4, 1, h) for h in range(24)]
    assert [c.kind for c in cycles] == [CycleKind.REALTIME_DEPRECATED] * 11 + [
        CycleKind.NORMAL
    ] * 13
    assert all(c.dry_run for c in cycles[:11])
    assert [c.period_number for c in cycles] == list(range(1, 25))
    assert {c.run_date for c in cycles} == {date(2025, 4, 1)}


def test_immediate_modified_workflow_drops_expired_cycles() -> None:
    deployed = local_ms(SH, 2025, 4, 1, 10, 5)
    cycles = immediate_cycles(trigger("0 0 * * * ?"), deployed, new_workflow=False)
    assert times(cycles) == [local_ms(SH, 2025, 4, 1, h) for h in range(11, 24)]
    assert [c.period_number for c in cycles] == list(range(12, 25))
    assert {c.kind for c in cycles} == {CycleKind.NORMAL}


def test_immediate_buffer_boundary_is_inclusive() -> None:
    assert IMMEDIATE_BUFFER_MS == 10 * 60 * 1000
    ten = local_ms(SH, 2025, 4, 1, 10)
    (at_edge,) = immediate_cycles(trigger("0 0 10 * * ?"), ten - IMMEDIATE_BUFFER_MS, True)
    assert at_edge.kind is CycleKind.REALTIME_DEPRECATED
    (just_after,) = immediate_cycles(trigger("0 0 10 * * ?"), ten - IMMEDIATE_BUFFER_MS - 1, True)
    assert just_after.kind is CycleKind.NORMAL
    assert immediate_cycles(trigger("0 0 10 * * ?"), ten - IMMEDIATE_BUFFER_MS, False) == []


def test_immediate_uses_the_deploy_date_in_the_trigger_zone() -> None:
    deployed = utc_ms(2025, 4, 1, 20)  # 2025-04-02 04:00 in Shanghai
    (cycle,) = immediate_cycles(trigger("0 0 6 * * ?"), deployed, True)
    assert cycle.run_date == date(2025, 4, 2)
    assert cycle.trigger_time == local_ms(SH, 2025, 4, 2, 6)
    assert cycle.kind is CycleKind.NORMAL


def test_immediate_on_a_non_run_day() -> None:
    tuesday_morning = local_ms(SH, 2025, 4, 1, 1)
    (dry,) = immediate_cycles(trigger("0 0 3 ? * MON"), tuesday_morning, True)
    assert dry.kind is CycleKind.SKIP_CYCLE
    tuesday_noon = local_ms(SH, 2025, 4, 1, 12)
    (expired,) = immediate_cycles(trigger("0 0 3 ? * MON"), tuesday_noon, True)
    assert expired.kind is CycleKind.REALTIME_DEPRECATED
    assert immediate_cycles(trigger("0 0 3 ? * MON"), tuesday_noon, False) == []


# cost
