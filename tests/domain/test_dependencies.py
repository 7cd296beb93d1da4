"""Pure tests of instance-level dependency resolution (`dwsched.domain.dependencies`).

One test per row of the rule table in docs/dependencies.md, named after the row, then
properties. Expected instants are written as wall-clock times and converted with zoneinfo,
never computed by the code under test. R is Tuesday 2025-06-10; Asia/Shanghai has no daylight
saving; Europe/Berlin springs forward on 2025-03-30 (02:00 -> 03:00) and falls back on
2025-10-26 (03:00 -> 02:00).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st

from dwsched.domain.dependencies import NodeDays, Slot, node_days, slots_on, upstream_slots
from dwsched.domain.flowspec import DependencyType
from dwsched.domain.schedule import Trigger

NORMAL = DependencyType.NORMAL
SELF = DependencyType.CROSS_CYCLE_SELF
OTHER = DependencyType.CROSS_CYCLE_OTHER
CHILDREN = DependencyType.CROSS_CYCLE_CHILDREN

SH = "Asia/Shanghai"
BERLIN = "Europe/Berlin"
R = date(2025, 6, 10)  # a Tuesday
MONDAY = date(2025, 6, 9)
SPRING = date(2025, 3, 30)
AUTUMN = date(2025, 10, 26)
FOREVER = (-(2**53), 2**53)
FAST = settings(max_examples=200, deadline=None, derandomize=True, database=None)

HOURLY = "0 0 * * * ?"
QUARTER = "0 */15 * * * ?"


def wall(tz: str, day: date, h: int = 0, mi: int = 0, fold: int = 0) -> int:
    """Epoch ms of a wall-clock time on `day` in `tz`."""
    local = datetime(day.year, day.month, day.day, h, mi, tzinfo=ZoneInfo(tz), fold=fold)
    return int(local.timestamp() * 1000)


def sh(h: int, mi: int = 0, day: date = R) -> int:
    return wall(SH, day, h, mi)


def berlin(day: date, h: int, mi: int = 0, fold: int = 0) -> int:
    return wall(BERLIN, day, h, mi, fold)


def days(
    cron: str, tz: str = SH, run_date: date = R, self_dependent: bool = False, start_ms: int = 0
) -> NodeDays:
    start = start_ms or FOREVER[0]
    return node_days(Trigger(cron, tz, start, FOREVER[1]), run_date, self_dependent)


YESTERDAY = R - timedelta(days=1)


# Same cycle (Normal)


def test_row_01_hour_on_hour_with_equal_counts_pairs_the_ith_cycles_whatever_their_times() -> None:
    found = upstream_slots(NORMAL, days("0 10 * * * ?"), days("0 30 * * * ?"))
    assert found == [(sh(h, 30),) for h in range(24)]  # 00:10 waits for 00:30


def test_row_02_hour_on_fewer_hours_waits_for_the_nearest_earlier() -> None:
    found = upstream_slots(NORMAL, days(HOURLY), days("0 0 */6 * * ?"))
    assert found == [(sh(h - h % 6),) for h in range(24)]


def test_row_03_hour_on_more_hours_waits_for_those_since_its_previous_cycle() -> None:
    found = upstream_slots(NORMAL, days("0 0 */6 * * ?"), days(HOURLY))
    assert found == [
        (sh(0),),
        tuple(sh(h) for h in range(1, 7)),
        tuple(sh(h) for h in range(7, 13)),
        tuple(sh(h) for h in range(13, 19)),
    ]  # 19:00 to 23:00 are waited for by no instance of R


def test_row_04_hour_on_minute_waits_for_the_minutes_of_its_hour() -> None:
    found = upstream_slots(NORMAL, days(HOURLY), days(QUARTER))
    assert found[0] == (sh(0),)
    assert found[1] == (sh(0, 15), sh(0, 30), sh(0, 45), sh(1))
    assert found[23] == (sh(22, 15), sh(22, 30), sh(22, 45), sh(23))
    assert len(found) == 24


def test_row_05_hour_on_a_self_dependent_minute_node_waits_for_the_nearest_alone() -> None:
    expected = [(sh(h),) for h in range(24)]
    up = days(QUARTER, self_dependent=True)
    assert upstream_slots(NORMAL, days(HOURLY), up) == expected
    assert upstream_slots(NORMAL, days(HOURLY, self_dependent=True), up) == expected


def test_row_06_minute_on_hour_waits_for_the_nearest_earlier_hour() -> None:
    expected = [(sh(h),) for h in range(24) for _ in range(4)]
    assert upstream_slots(NORMAL, days(QUARTER), days(HOURLY)) == expected
    both = upstream_slots(
        NORMAL, days(QUARTER, self_dependent=True), days(HOURLY, self_dependent=True)
    )
    assert both == expected  # DataWorks: each minute cycle still waits for its hour


def test_row_07_hour_on_day_every_hour_waits_for_the_day_even_before_it() -> None:
    found = upstream_slots(NORMAL, days(HOURLY), days("0 0 7 * * ?"))
    assert found == [(sh(7),)] * 24  # 00:00 to 06:00 wait until 07:00's instance succeeds


def test_row_08_self_dependent_hour_on_day_only_the_first_hour_waits() -> None:
    found = upstream_slots(NORMAL, days(HOURLY, self_dependent=True), days("0 0 7 * * ?"))
    assert found == [(sh(7),)] + [()] * 23


def test_row_09_day_on_hour_waits_for_the_whole_day() -> None:
    found = upstream_slots(NORMAL, days("0 30 0 * * ?"), days(HOURLY))
    assert found == [tuple(sh(h) for h in range(24))]


def test_row_10_day_on_a_self_dependent_hour_waits_for_the_nearest_earlier_hour() -> None:
    up = days(HOURLY, self_dependent=True)
    assert upstream_slots(NORMAL, days("0 30 5 * * ?"), up) == [(sh(5),)]
    early = upstream_slots(NORMAL, days("0 10 0 * * ?"), days("0 30 * * * ?", self_dependent=True))
    assert early == [(sh(0, 30),)]  # nothing earlier: the day's first


def test_row_11_day_on_day_is_the_same_cycle_whatever_the_times() -> None:
    assert upstream_slots(NORMAL, days("0 0 1 * * ?"), days("0 0 19 * * ?")) == [(sh(19),)]


def test_row_12_day_on_week_waits_on_run_days_only() -> None:
    weekly = "0 0 10 ? * MON,FRI"
    daily = "0 30 0 * * ?"
    tuesday = days(weekly)
    assert tuesday.current == (Slot(sh(10), dry_run=True),)
    assert upstream_slots(NORMAL, days(daily), tuesday) == [()]
    monday = upstream_slots(NORMAL, days(daily, run_date=MONDAY), days(weekly, run_date=MONDAY))
    assert monday == [(sh(10, day=MONDAY),)]


def test_row_13_day_on_month_waits_on_the_first_of_the_month_only() -> None:
    monthly = "0 0 2 1 * ?"
    first = date(2025, 6, 1)
    assert upstream_slots(NORMAL, days(HOURLY), days(monthly)) == [()] * 24
    found = upstream_slots(
        NORMAL, days("0 0 1 * * ?", run_date=first), days(monthly, run_date=first)
    )
    assert found == [(sh(2, day=first),)]
    assert upstream_slots(NORMAL, days("0 0 1 * * ?"), days(monthly)) == [()]


def test_row_14_week_on_day_its_dry_runs_wait_too() -> None:
    weekly = "0 0 10 ? * MON"
    daily = "0 0 1 * * ?"
    monday = upstream_slots(NORMAL, days(weekly, run_date=MONDAY), days(daily, run_date=MONDAY))
    assert monday == [(sh(1, day=MONDAY),)]
    tuesday = days(weekly)
    assert tuesday.current[0].dry_run
    assert upstream_slots(NORMAL, tuesday, days(daily)) == [(sh(1),)]


# Cross cycle


def test_row_15_self_hourly_midnight_waits_for_yesterdays_last_hour() -> None:
    node = days(HOURLY, self_dependent=True)
    found = upstream_slots(SELF, node, node)
    assert found[0] == (sh(23, day=YESTERDAY),)
    assert found[1:] == [(sh(h),) for h in range(23)]


def test_row_16_self_daily_waits_for_yesterday() -> None:
    node = days("0 0 2 * * ?", self_dependent=True)
    assert upstream_slots(SELF, node, node) == [(sh(2, day=YESTERDAY),)]


def test_row_17_self_weekly_chain_runs_through_its_dry_runs() -> None:
    weekly = "0 0 10 ? * MON"
    tuesday = days(weekly, self_dependent=True)
    assert upstream_slots(SELF, tuesday, tuesday) == [(sh(10, day=MONDAY),)]
    monday = days(weekly, run_date=MONDAY, self_dependent=True)
    sunday = sh(10, day=date(2025, 6, 8))
    assert monday.previous == (Slot(sunday, dry_run=True),)
    assert upstream_slots(SELF, monday, monday) == [(sunday,)]


def test_row_18_other_day_on_hour_waits_for_all_of_yesterdays_hours() -> None:
    found = upstream_slots(OTHER, days("0 30 0 * * ?"), days(HOURLY))
    assert found == [tuple(sh(h, day=YESTERDAY) for h in range(24))]


def test_row_19_other_day_on_a_self_dependent_hour_waits_for_yesterdays_last_hour() -> None:
    found = upstream_slots(OTHER, days("0 30 5 * * ?"), days(HOURLY, self_dependent=True))
    assert found == [(sh(23, day=YESTERDAY),)]
    # Every six hours on it: 12:00's previous cycle, 06:00, waited for 01:00 to 06:00, and
    # 00:00's, yesterday's 18:00, for 13:00 to 18:00 (19:00 to 23:00 had no downstream).
    found = upstream_slots(OTHER, days("0 0 */6 * * ?"), days(HOURLY, self_dependent=True))
    assert found == [(sh(18, day=YESTERDAY),), (sh(0),), (sh(6),), (sh(12),)]
    plain = upstream_slots(OTHER, days("0 0 */6 * * ?"), days(HOURLY))
    assert plain[2] == tuple(sh(h) for h in range(1, 7))


def test_row_20_other_hour_on_hour_waits_for_the_previous_hour() -> None:
    found = upstream_slots(OTHER, days(HOURLY), days(HOURLY))
    assert found == [(sh(23, day=YESTERDAY),)] + [(sh(h),) for h in range(23)]
    shifted = upstream_slots(OTHER, days("0 10 * * * ?"), days("0 30 * * * ?"))
    assert shifted == [(sh(23, 30, day=YESTERDAY),)] + [(sh(h, 30),) for h in range(23)]


def test_row_21_other_hour_on_day_every_hour_waits_for_yesterdays_day() -> None:
    found = upstream_slots(OTHER, days(HOURLY), days("0 0 7 * * ?"))
    assert found == [(sh(7, day=YESTERDAY),)] * 24


def test_row_22_children_day_node_waits_for_all_of_its_hourly_childs_yesterday() -> None:
    found = upstream_slots(CHILDREN, days("0 30 0 * * ?"), days(HOURLY))
    assert found == [tuple(sh(h, day=YESTERDAY) for h in range(24))]


def test_row_23_children_hour_node_with_a_daily_child_only_midnight_waits() -> None:
    # The daily child waited for all of the node's hours, the last 23:00: the node's next
    # cycle, 00:00 of the following day, waits for it; no cycle waits for its own consumer.
    found = upstream_slots(CHILDREN, days(HOURLY), days("0 0 12 * * ?"))
    assert found == [(sh(12, day=YESTERDAY),)] + [()] * 23


def test_row_24_children_with_a_self_dependent_child_waits_for_its_last_cycle() -> None:
    found = upstream_slots(CHILDREN, days("0 30 0 * * ?"), days(HOURLY, self_dependent=True))
    assert found == [(sh(23, day=YESTERDAY),)]


def test_row_25_upstream_later_than_every_downstream_cycle() -> None:
    found = upstream_slots(NORMAL, days("0 0 0-5 * * ?"), days("0 0 12-23 * * ?"))
    assert found == [(sh(12),)] * 6  # they wait; 13:00 to 23:00 are waited for by none


def test_row_26_first_descendant_of_the_day_waits_for_the_first_ancestor() -> None:
    found = upstream_slots(NORMAL, days(HOURLY), days("0 10,40 * * * ?"))
    assert found[0] == (sh(0, 10),)
    assert found[1:] == [(sh(h, 10), sh(h, 40)) for h in range(23)]


def test_row_27_spring_forward_in_berlin() -> None:
    hours = [h for h in range(24) if h != 2]  # 02:00 does not exist
    instants = [berlin(SPRING, h) for h in hours]
    hourly = days(HOURLY, BERLIN, SPRING, self_dependent=True)
    assert [s.trigger_time for s in hourly.current] == instants
    assert upstream_slots(NORMAL, days(HOURLY, BERLIN, SPRING), hourly) == [(t,) for t in instants]
    day = upstream_slots(
        NORMAL, days("0 30 23 * * ?", BERLIN, SPRING), days(HOURLY, BERLIN, SPRING)
    )
    assert day == [tuple(instants)]
    chain = upstream_slots(SELF, hourly, hourly)
    assert chain[0] == (berlin(SPRING - timedelta(days=1), 23),)
    assert chain[2] == (berlin(SPRING, 1),)  # 03:00 CEST waits for 01:00 CET, an hour before
    half = upstream_slots(
        NORMAL, days(HOURLY, BERLIN, SPRING), days("0 0,30 * * * ?", BERLIN, SPRING)
    )
    assert half[2] == (berlin(SPRING, 1, 30), berlin(SPRING, 3))


def test_row_28_fall_back_in_berlin() -> None:
    hourly = days(HOURLY, BERLIN, AUTUMN, self_dependent=True)
    assert len(hourly.current) == 24  # the repeated 02:00 fires once
    assert hourly.current[2].trigger_time == berlin(AUTUMN, 2, fold=0)
    assert hourly.current[3].trigger_time == berlin(AUTUMN, 3)
    pairs = upstream_slots(NORMAL, hourly, days(HOURLY, SH, AUTUMN))
    assert pairs == [(sh(h, day=AUTUMN),) for h in range(24)]  # 24 = 24: by position
    chain = upstream_slots(SELF, hourly, hourly)
    assert chain[3] == (berlin(AUTUMN, 2, fold=0),)  # two hours before 03:00 CET
    half = upstream_slots(NORMAL, hourly, days("0 0,30 * * * ?", BERLIN, AUTUMN))
    assert half[3] == (berlin(AUTUMN, 2, 30, fold=0), berlin(AUTUMN, 3))


def test_row_29_two_zones_compare_instants() -> None:
    # Berlin (CEST, UTC+2) hourly on Shanghai (UTC+8) every two hours, both of run date R:
    # Berlin's 00:00 is 22:00 UTC on the 9th, Shanghai's 06:00.
    found = upstream_slots(NORMAL, days(HOURLY, BERLIN), days("0 0 */2 * * ?", SH))
    nearest = [6, 8, 8, 10, 10, 12, 12, 14, 14, 16, 16, 18, 18, 20, 20, 22, 22] + [22] * 6
    assert found[0] == (sh(0), sh(2), sh(4), sh(6))
    assert found[1:] == [(sh(h),) for h in nearest]
    assert berlin(R, 0) == sh(6)


def test_row_30_the_first_cycle_ever_has_no_previous_cycle() -> None:
    start = sh(0)  # the validity window opens on R: nothing on the day before
    node = days(HOURLY, start_ms=start, self_dependent=True)
    assert node.previous == ()
    assert upstream_slots(SELF, node, node) == [()] + [(sh(h),) for h in range(23)]
    daily = days("0 30 0 * * ?", start_ms=start)
    assert upstream_slots(OTHER, daily, days(HOURLY)) == [()]
    assert upstream_slots(CHILDREN, daily, days(HOURLY)) == [()]


def test_row_31_expired_cycles_of_an_immediate_deploy_do_not_block() -> None:
    # A new workflow deployed at 09:50 under Immediately: its cycles to 10:00 are
    # RealtimeDeprecated dry runs, which turn Success at their time.
    up = NodeDays((), tuple(Slot(sh(h), dry_run=h <= 10) for h in range(24)))
    down = days(HOURLY)
    assert upstream_slots(NORMAL, down, up) == [()] * 11 + [(sh(h),) for h in range(11, 24)]
    assert upstream_slots(SELF, up, up)[1] == (sh(0),)  # its own chain keeps them


def test_slots_on_reads_cycles_on() -> None:
    assert slots_on(Trigger("0 0 10 ? * MON", SH, *FOREVER), R) == (Slot(sh(10), True),)
    assert days("0 0 3 * * ?").previous == (Slot(sh(3, day=YESTERDAY)),)


# Properties


_DAY_MS = 86_400_000
_slot_times = st.lists(st.integers(0, _DAY_MS - 1), max_size=30, unique=True).map(sorted)


@st.composite
def node_days_of(draw: st.DrawFn) -> NodeDays:
    """Any node's two days, with dry runs anywhere."""

    def day(offset: int) -> tuple[Slot, ...]:
        return tuple(Slot(offset + t, draw(st.booleans())) for t in draw(_slot_times))

    return NodeDays(day(0), day(_DAY_MS), draw(st.booleans()))


KINDS = st.sampled_from(list(DependencyType))


@FAST
@given(KINDS, node_days_of(), node_days_of())
def test_every_answer_is_a_list_of_ascending_slots_of_up(
    kind: DependencyType, down: NodeDays, other: NodeDays
) -> None:
    up = down if kind is SELF else other
    found = upstream_slots(kind, down, up)
    assert len(found) == len(down.current)
    slots = {s.trigger_time: s for s in up.previous + up.current}
    for times in found:
        assert list(times) == sorted(set(times))
        assert all(t in slots for t in times)
        if kind is not SELF:
            assert not any(slots[t].dry_run for t in times)


@FAST
@given(node_days_of(), node_days_of())
def test_children_never_wait_for_a_child_cycle_that_waits_for_them(
    node: NodeDays, child: NodeDays
) -> None:
    found = upstream_slots(CHILDREN, node, child)
    for day_node, day_child in ((node.previous, child.previous), (node.current, child.current)):
        waits = upstream_slots(
            NORMAL,
            NodeDays((), day_child, child.self_dependent),
            NodeDays((), day_node, node.self_dependent),
        )
        awaited = dict(zip((s.trigger_time for s in day_child), waits, strict=True))
        for d, times in zip(node.current, found, strict=True):
            for t in times:
                assert all(n < d.trigger_time for n in awaited.get(t, ()))


CRONS = [
    HOURLY,
    "0 10 * * * ?",
    QUARTER,
    "0 0 */6 * * ?",
    "0 30 2 * * ?",
    "0 0 10 ? * MON,FRI",
    "0 0 2 1 * ?",
    "0 0,30 0-3 * * ?",
]
ZONES = [SH, BERLIN, "America/New_York", "UTC"]
DATES = st.dates(date(2025, 1, 1), date(2025, 12, 31)) | st.sampled_from([SPRING, AUTUMN])


@FAST
@given(st.sampled_from(CRONS), st.sampled_from(ZONES), DATES, st.booleans(), st.booleans())
def test_equal_schedules_link_one_to_one_at_the_same_time(
    cron: str, tz: str, run_date: date, down_self: bool, up_self: bool
) -> None:
    down = days(cron, tz, run_date, down_self)
    up = days(cron, tz, run_date, up_self)
    found = upstream_slots(NORMAL, down, up)
    assert found == [() if s.dry_run else (s.trigger_time,) for s in up.current]
