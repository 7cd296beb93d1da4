"""Pure tests of "bounded before expanded": the BizDates of a backfill are counted from its
ranges without enumerating days, a request past the cap is refused before any work, a cron
fires at most once a minute, and the fast paths that keep a capped request cheap agree with
the slow ones they replace (croniter.match, wall-clock conversion per cycle).
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings, strategies as st

from dwsched.domain import flowspec, schedule
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.models import EnvType, InstanceType
from dwsched.domain.runs import (
    MAX_INSTANCES,
    MAX_RANGES,
    RunRequest,
    biz_days,
    check_ranges,
    day_count,
    merged_ranges,
    plan_run,
)
from dwsched.domain.schedule import (
    MAX_CYCLES_PER_DAY,
    CycleKind,
    Trigger,
    cycles_between,
    cycles_on,
    parse_cron,
)
from dwsched.domain.workflows import DeployedTask, DeployedWorkflow

SH = "Asia/Shanghai"
BERLIN = "Europe/Berlin"
PATH = "$.spec.workflows[0].trigger.cron"
FOREVER = (-(2**62), 2**62)
FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None)
D = date.fromisoformat


def brute_days(ranges: list[tuple[date, date]]) -> set[date]:
    return {s + timedelta(days=n) for s, e in ranges for n in range((e - s).days + 1)}


# Counting BizDates by arithmetic


@pytest.mark.parametrize(
    ("ranges", "count", "merged"),
    [
        ([], 0, []),
        ([("2025-01-01", "2025-01-01")], 1, [("2025-01-01", "2025-01-01")]),
        (
            [("2025-01-01", "2025-01-10"), ("2025-01-05", "2025-01-20")],
            20,
            [("2025-01-01", "2025-01-20")],
        ),
        (  # nested, duplicated, given out of order
            [("2025-03-01", "2025-03-31"), ("2025-03-10", "2025-03-12")] * 3,
            31,
            [("2025-03-01", "2025-03-31")],
        ),
        (  # adjacent ranges merge; a gap of one day does not
            [
                ("2025-01-11", "2025-01-20"),
                ("2025-01-01", "2025-01-10"),
                ("2025-01-22", "2025-01-22"),
            ],
            21,
            [("2025-01-01", "2025-01-20"), ("2025-01-22", "2025-01-22")],
        ),
        (  # a reversed range is empty
            [("2025-01-10", "2025-01-01"), ("2025-02-01", "2025-02-02")],
            2,
            [("2025-02-01", "2025-02-02")],
        ),
        ([("2024-02-28", "2024-03-01")], 3, [("2024-02-28", "2024-03-01")]),  # leap day
        ([("0001-01-01", "9999-12-31")], 3_652_059, [("0001-01-01", "9999-12-31")]),
    ],
)
def test_day_count_is_the_size_of_the_union(
    ranges: list[tuple[str, str]], count: int, merged: list[tuple[str, str]]
) -> None:
    parsed = [(D(a), D(b)) for a, b in ranges]
    assert day_count(parsed) == count
    assert merged_ranges(parsed) == [(D(a), D(b)) for a, b in merged]


_DAYS = st.dates(date(2024, 1, 1), date(2024, 3, 31))


@FAST
@given(st.lists(st.tuples(_DAYS, _DAYS), max_size=MAX_RANGES))
def test_day_count_and_biz_days_agree_with_enumeration(ranges: list[tuple[date, date]]) -> None:
    expected = brute_days(ranges)
    assert day_count(ranges) == len(expected)
    merged = merged_ranges(ranges)
    assert all(a <= b for a, b in merged)
    assert all((c - b).days > 1 for (_, b), (c, _) in itertools.pairwise(merged))
    request = backfill(tuple(ranges))
    assert biz_days(request) == sorted(expected)
    assert biz_days(backfill(tuple(ranges), descending=True)) == sorted(expected, reverse=True)


def test_seven_ranges_over_two_millennia_are_refused_before_any_day_is_made() -> None:
    # The review's request: ~740,000 days once enumerated; here a handful of subtractions.
    ranges = tuple((D(f"000{n}-01-01"), D("2025-12-31")) for n in range(1, 8))
    with pytest.raises(InvalidArgument) as caught:
        check_ranges(ranges)
    assert caught.value.param == "Periods.BizDates"
    assert "739" in caught.value.message and str(MAX_INSTANCES) in caught.value.message
    with pytest.raises(InvalidArgument):
        biz_days(backfill(ranges))


def test_the_cap_counts_distinct_days_not_the_sum_of_the_ranges() -> None:
    last = D("2025-01-01")
    first = last - timedelta(days=MAX_INSTANCES - 1)
    at_cap = ((first, last),) * MAX_RANGES  # 7 x 20,000 days listed, 20,000 distinct
    check_ranges(at_cap)
    assert len(biz_days(backfill(at_cap))) == MAX_INSTANCES
    with pytest.raises(InvalidArgument, match="20001 BizDates"):
        check_ranges(((first - timedelta(days=1), last),))


def test_more_ranges_than_allowed_are_refused() -> None:
    day = D("2025-01-01")
    with pytest.raises(InvalidArgument) as caught:
        check_ranges(((day, day),) * (MAX_RANGES + 1))
    assert caught.value.param == "Periods.BizDates"


# plan_run: refused before expansion, bounded when accepted


def workflow(cron: str, tz: str = SH, workflow_id: int = 7) -> DeployedWorkflow:
    text = (
        '{"version": "1.1.0", "kind": "CycleWorkflow", "spec": {"workflows": [{"name": "w",'
        f'"trigger": {{"type": "Scheduler", "cron": "{cron}", "timezone": "{tz}"}},'
        '"nodes": [{"id": "a", "name": "a", "script": {"runtime": {"command": "VIRTUAL"}}}]}]}}'
    )
    spec = flowspec.parse(text, tz)
    task = DeployedTask(workflow_id * 10, workflow_id, 1, "o", spec.nodes[0], 0, 0)
    return DeployedWorkflow(workflow_id, 1, 1, EnvType.PROD, spec, 1, 0, 0, 0, "o", "o", (task,))


def backfill(
    ranges: tuple[tuple[date, date], ...],
    descending: bool = False,
    start: str = "00:00:00",
    end: str = "23:59:59",
) -> RunRequest:
    return RunRequest(
        project_id=1,
        name="b",
        type=InstanceType.SUPPLEMENT_DATA,
        workflow_id=7,
        ranges=ranges,
        descending=descending,
        day_start=start,
        day_end=end,
    )


NOW_MS = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp() * 1000)


def test_plan_run_refuses_a_huge_range_naming_the_parameter() -> None:
    request = backfill(((D("0001-01-01"), D("2025-05-01")),))
    with pytest.raises(InvalidArgument) as caught:
        plan_run(request, {7: workflow("0 0 3 * * ?")}, SH, NOW_MS)
    assert caught.value.param == "Periods.BizDates"


def test_plan_run_just_under_the_cap_plans_every_bizdate() -> None:
    last = D("2025-05-31")
    request = backfill(((last - timedelta(days=MAX_INSTANCES - 1), last),))
    planned = plan_run(request, {7: workflow("0 0 3 ? * MON")}, SH, NOW_MS)
    assert len(planned) == MAX_INSTANCES  # a run day or a SkipCycle dry run per BizDate
    assert planned[-1].cycle.biz_day == last
    assert {p.cycle.kind for p in planned} == {CycleKind.NORMAL, CycleKind.SKIP_CYCLE}


def test_a_window_that_selects_nothing_is_refused_after_bounded_work() -> None:
    # 20,000 BizDates of an every-minute cron, none in a one-second window: each day is
    # a bisection, not 1,440 cycles, and the request is refused as creating nothing.
    last = D("2025-05-31")
    request = backfill(
        ((last - timedelta(days=MAX_INSTANCES - 1), last),), start="12:00:30", end="12:00:31"
    )
    with pytest.raises(InvalidArgument, match="creates no instance"):
        plan_run(request, {7: workflow("0 * * * * ?", BERLIN)}, BERLIN, NOW_MS)


def test_bizdates_times_workflows_past_the_cap_are_refused() -> None:
    last = D("2025-05-31")
    request = RunRequest(
        project_id=1,
        name="b",
        type=InstanceType.SUPPLEMENT_DATA,
        workflow_id=1,
        root_task_ids=(70, 80),
        ranges=((last - timedelta(days=MAX_INSTANCES // 2), last),),
    )
    workflows = {
        7: workflow("0 0 3 * * ?", workflow_id=7),
        8: workflow("0 0 4 * * ?", workflow_id=8),
    }
    with pytest.raises(InvalidArgument) as caught:
        plan_run(request, workflows, SH, NOW_MS)
    assert caught.value.param == "Periods.BizDates"
    assert "2 workflows" in caught.value.message


# Crons fire at most once a minute


@pytest.mark.parametrize(
    "cron", ["* * * * * ?", "0/15 * * * * ?", "0,30 0 2 * * ?", "0-5 0 * * * ?"]
)
def test_a_cron_firing_more_than_once_a_minute_is_refused(cron: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_cron(cron, PATH)
    assert caught.value.param == PATH
    assert "second field" in caught.value.message and "once a minute" in caught.value.message


@pytest.mark.parametrize(
    "cron", ["0 * * * * ?", "30 */5 * * * ?", "15 0,30 9-10 * * ?", "59 59 23 * * ?"]
)
def test_one_fixed_second_is_accepted(cron: str) -> None:
    assert parse_cron(cron, PATH) == cron


def test_an_every_minute_cron_has_the_most_cycles_a_day_may_have() -> None:
    every_minute = Trigger("0 * * * * ?", SH, *FOREVER)
    assert len(cycles_on(every_minute, D("2025-04-01"))) == MAX_CYCLES_PER_DAY == 1440
    spring = Trigger("0 * * * * ?", BERLIN, *FOREVER)
    assert len(cycles_on(spring, D("2025-03-30"))) == 1380  # the skipped hour's times merge


def test_a_stored_every_second_cron_fires_at_its_first_second_only() -> None:
    # A workflow deployed before the rule keeps running, at most once a minute.
    legacy = cycles_on(Trigger("10-20 * * * * ?", SH, *FOREVER), D("2025-04-01"))
    assert len(legacy) == MAX_CYCLES_PER_DAY
    first = datetime.fromtimestamp(legacy[0].trigger_time / 1000, ZoneInfo(SH))
    assert first.time() == time(0, 0, 10)


# The fast paths agree with the slow ones


DAY_CRONS = [
    "0 0 3 ? * MON",
    "0 0 3 ? * MON-FRI",
    "0 0 3 ? * 7",
    "0 0 3 ? * SUN,SAT",
    "0 0 0 L * ?",
    "0 0 0 1-27,L * ?",
    "0 0 0 15W * ?",
    "0 0 0 1W * ?",
    "0 0 0 31W * ?",
    "0 0 0 ? * L5",
    "0 0 0 ? * 5#3",
    "0 0 0 ? * 1#1,1#5",
    "0 0 0 1 JAN ?",
    "0 0 0 */2 2-4 ?",
    "0 0 0 29 2 ?",
    "0 0 0 ? JUL-AUG 1-5",
]


@pytest.mark.parametrize("cron", DAY_CRONS)
def test_run_days_agree_with_croniter_match(cron: str) -> None:
    day_expr = "0 0 0 " + " ".join(cron.split()[3:])
    day = D("2024-01-01")
    while day < D("2025-03-01"):  # a leap year and the February after it
        at = datetime(day.year, day.month, day.day)
        expected = bool(croniter.match(day_expr, at, second_at_beginning=True))
        assert schedule._runs_on(day_expr, day) is expected, day
        day += timedelta(days=1)


_ZONES = st.sampled_from([SH, BERLIN, "America/Santiago", "Australia/Lord_Howe", "Pacific/Apia"])
_TRANSITIONS = [
    D("2025-03-30"),
    D("2025-10-26"),
    D("2025-04-06"),
    D("2025-09-07"),
    D("2024-04-07"),
    D("2011-12-29"),
    D("2011-12-30"),
    D("2011-12-31"),
]
_CRONS = st.sampled_from(
    ["0 * * * * ?", "0 30 2 * * ?", "0 0,30 * * * ?", "15 0 0 ? * MON", "0 */5 0-3 L * ?"]
)
_CLOCK = st.times().map(lambda t: t.replace(microsecond=0))


@FAST
@given(
    _ZONES,
    st.one_of(st.sampled_from(_TRANSITIONS), st.dates(D("2024-01-01"), D("2026-12-31"))),
    _CRONS,
    _CLOCK,
    _CLOCK,
)
def test_cycles_between_is_cycles_on_filtered_by_local_time(
    tz: str, day: date, cron: str, a: time, b: time
) -> None:
    low, high = min(a, b), max(a, b)
    trigger = Trigger(cron, tz, *FOREVER)
    z = ZoneInfo(tz)
    expected = [
        c
        for c in cycles_on(trigger, day)
        if low <= datetime.fromtimestamp(c.trigger_time / 1000, z).time() <= high
    ]
    assert cycles_between(trigger, day, low, high) == expected


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        (BERLIN, D("2025-03-30")),
        (BERLIN, D("2025-10-26")),
        ("Australia/Lord_Howe", D("2025-04-06")),  # half an hour back
        ("Australia/Lord_Howe", D("2025-10-05")),
        ("America/Santiago", D("2025-04-05")),  # midnight repeats
        ("America/Santiago", D("2025-09-07")),  # midnight is skipped
        ("Pacific/Apia", D("2011-12-29")),
        ("Pacific/Apia", D("2011-12-30")),  # a day that does not exist
        ("America/Toronto", D("1919-03-30")),  # a gap across midnight
        ("Africa/Cairo", D("2025-10-30")),  # midnight back to 23:00
    ],
)
def test_instants_across_an_offset_change_match_the_wall_clock_reading(tz: str, day: date) -> None:
    for seconds in (tuple(range(0, 86_400, 60)), (0,), (9_000,), (86_340,), (1_800, 5_400)):
        fast = schedule._instants_across_change(day, tz, seconds)
        assert fast is not None
        assert fast == schedule._instants_by_wall(day, tz, seconds)
    assert schedule._plain_day_start(day, tz) is None
