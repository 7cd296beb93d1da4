"""Pure tests of the listing's value parsing (`dwsched.domain.queries`) and of business-day
arithmetic (`dwsched.domain.calendar`), including zones whose midnight is skipped or
repeated. No database, no server.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from dwsched.domain import calendar
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.models import EnvType
from dwsched.domain.queries import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SORT,
    MAX_IDS,
    MAX_PAGE_NUMBER,
    MAX_PAGE_SIZE,
    MAX_TAGS,
    InstanceQuery,
    Page,
    SortField,
    SortKey,
    TagMatch,
    page,
    parse_sort,
    parse_tag_match,
)
from tests import reference

SHANGHAI_DAY_MS = 1_743_350_400_000  # 2025-03-31T00:00+08:00
FAST = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def utc_ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


# parse_sort


def test_empty_sort_is_id_descending() -> None:
    assert DEFAULT_SORT == (SortKey(SortField.ID, descending=True),)
    assert parse_sort("") == DEFAULT_SORT
    assert parse_sort("   ") == DEFAULT_SORT


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("TriggerTime", [("TriggerTime", False)]),
        ("TriggerTime Asc", [("TriggerTime", False)]),
        ("triggertime DESC", [("TriggerTime", True)]),
        ("  StartedTime   desc  ", [("StartedTime", True)]),
        ("FINISHEDTIME", [("FinishedTime", False)]),
        ("createTime Desc", [("CreateTime", True)]),
        ("id", [("Id", False)]),
        ("Id Desc", [("Id", True)]),
        (
            "StartedTime Desc, FinishedTime",
            [("StartedTime", True), ("FinishedTime", False)],
        ),
        (
            "CreateTime desc,TriggerTime asc , Id DESC",
            [("CreateTime", True), ("TriggerTime", False), ("Id", True)],
        ),
    ],
)
def test_parse_sort(text: str, keys: list[tuple[str, bool]]) -> None:
    assert parse_sort(text) == tuple(SortKey(SortField(f), d) for f, d in keys)


@pytest.mark.parametrize(
    "text",
    [
        "Status",
        "Name Asc",
        "Id Up",
        "Id Asc Desc",
        "Id,",
        ",Id",
        "Id,,TriggerTime",
        "Id, id desc",
        "StartedTime Desc, TriggerTime, STARTEDTIME",
        "TriggerTime-Desc",
        "Trigger Time",
        "Id;TriggerTime",
    ],
)
def test_parse_sort_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_sort(text)
    assert raised.value.param == "SortBy"
    with pytest.raises(InvalidArgument) as raised:
        parse_sort(text, param="--sort")
    assert raised.value.param == "--sort"


def test_only_started_and_finished_time_may_be_missing() -> None:
    assert {f for f in SortField if f.nullable} == {SortField.STARTED_TIME, SortField.FINISHED_TIME}


@FAST
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(SortField)),
            st.sampled_from([str.lower, str.upper, str]),
            st.sampled_from([None, "asc", "desc", "Asc", "DESC"]),
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda t: t[0],
    ),
    st.sampled_from([",", ", ", " ,  "]),
)
def test_any_spelling_of_distinct_keys_parses(
    parts: list[tuple[SortField, object, str | None]], comma: str
) -> None:
    text = comma.join(
        case(f.value) + ("" if d is None else f" {d}")  # type: ignore[operator]
        for f, case, d in parts
    )
    assert parse_sort(text) == tuple(
        SortKey(f, d is not None and d.lower() == "desc") for f, _c, d in parts
    )


# parse_tag_match


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("team:a", "team", "a"),
        ("team:", "team", ""),
        ("team", "team", None),
        ("team:a:b", "team", "a:b"),
        ("team::", "team", ":"),
        ("数据:日报", "数据", "日报"),
        ("k: v", "k", " v"),
    ],
)
def test_parse_tag_match(text: str, key: str, value: str | None) -> None:
    assert parse_tag_match(text) == TagMatch(key, value)


@pytest.mark.parametrize("text", ["", ":", ":value"])
def test_parse_tag_match_needs_a_key(text: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_tag_match(text)
    assert raised.value.param == "Tags"


def test_tag_match_matches() -> None:
    exact, empty, any_value = TagMatch("k", "v"), TagMatch("k", ""), TagMatch("k", None)
    assert exact.matches("k", "v") and not exact.matches("k", "V") and not exact.matches("K", "v")
    assert not exact.matches("k", "") and not exact.matches("k", "v ")
    assert empty.matches("k", "") and not empty.matches("k", "v")
    assert any_value.matches("k", "") and any_value.matches("k", "anything")
    assert not any_value.matches("kk", "v")


@FAST
@given(st.text(min_size=1).filter(lambda k: ":" not in k), st.text())
def test_tag_texts_split_at_the_first_colon(key: str, value: str) -> None:
    assert parse_tag_match(f"{key}:{value}") == TagMatch(key, value)
    assert parse_tag_match(key) == TagMatch(key, None)
    assert parse_tag_match(f"{key}:{value}").matches(key, value)


# page


def test_page_defaults_and_offsets() -> None:
    assert page(None, None) == Page(1, DEFAULT_PAGE_SIZE) == Page(1, 10)
    assert page(None, None).offset == 0
    assert page(3, 20).offset == 40
    assert page(1, MAX_PAGE_SIZE) == Page(1, 500)
    assert page(MAX_PAGE_NUMBER, 1).offset == MAX_PAGE_NUMBER - 1
    assert page(2, None) == Page(2, 10)
    assert page(None, 7) == Page(1, 7)


@pytest.mark.parametrize(
    ("number", "size", "param"),
    [
        (1, 0, "PageSize"),
        (1, -1, "PageSize"),
        (1, MAX_PAGE_SIZE + 1, "PageSize"),
        (0, 10, "PageNumber"),
        (-3, 10, "PageNumber"),
        (MAX_PAGE_NUMBER + 1, 10, "PageNumber"),
    ],
)
def test_page_rejects(number: int, size: int, param: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        page(number, size)
    assert raised.value.param == param


def test_instance_query_limits_ids_and_tags() -> None:
    base = {"project_id": 1, "env_type": EnvType.PROD, "biz_date_ms": SHANGHAI_DAY_MS}
    assert len(InstanceQuery(**base, ids=tuple(range(1, MAX_IDS + 1))).ids or ()) == MAX_IDS
    with pytest.raises(InvalidArgument) as raised:
        InstanceQuery(**base, ids=tuple(range(1, MAX_IDS + 2)))
    assert raised.value.param == "Ids"
    many = tuple(TagMatch(f"k{n}", None) for n in range(MAX_TAGS + 1))
    assert len(InstanceQuery(**base, tags=many[:MAX_TAGS]).tags) == MAX_TAGS
    with pytest.raises(InvalidArgument) as raised:
        InstanceQuery(**base, tags=many)
    assert raised.value.param == "Tags"


def test_instance_query_days_are_taken_in_the_zone_given() -> None:
    q = InstanceQuery(1, EnvType.PROD, SHANGHAI_DAY_MS, execution_date_ms=SHANGHAI_DAY_MS)
    assert q.biz_day("Asia/Shanghai") == date(2025, 3, 31)
    assert q.biz_day("UTC") == date(2025, 3, 30)
    assert q.trigger_window("Asia/Shanghai") == (SHANGHAI_DAY_MS, SHANGHAI_DAY_MS + 86_400_000)
    assert q.trigger_window("UTC") == (
        SHANGHAI_DAY_MS - 16 * 3_600_000,
        SHANGHAI_DAY_MS + 8 * 3_600_000,
    )
    assert InstanceQuery(1, EnvType.PROD, SHANGHAI_DAY_MS).trigger_window("UTC") is None


# calendar: zones


@pytest.mark.parametrize("name", ["UTC", "Asia/Shanghai", "America/Santiago", "Etc/GMT+5"])
def test_zone_accepts_iana_names(name: str) -> None:
    assert calendar.zone(name).key == name


@pytest.mark.parametrize(
    "name",
    ["", "Mars/Olympus", " Asia/Shanghai", "Asia/Shanghai ", "../etc/passwd", "/etc/localtime"],
)
def test_zone_rejects_other_names(name: str) -> None:
    with pytest.raises(InvalidArgument):
        calendar.zone(name)


# calendar: days


def test_day_of_takes_the_day_in_the_zone() -> None:
    assert calendar.day_of(SHANGHAI_DAY_MS, "Asia/Shanghai") == date(2025, 3, 31)
    assert calendar.day_of(SHANGHAI_DAY_MS - 1, "Asia/Shanghai") == date(2025, 3, 30)
    assert calendar.day_of(SHANGHAI_DAY_MS + 86_400_000 - 1, "Asia/Shanghai") == date(2025, 3, 31)
    assert calendar.day_of(SHANGHAI_DAY_MS, "UTC") == date(2025, 3, 30)
    assert calendar.day_of(SHANGHAI_DAY_MS, "America/New_York") == date(2025, 3, 30)
    assert calendar.day_of(utc_ms(2025, 3, 31, 10, 0), "Asia/Kolkata") == date(2025, 3, 31)
    assert calendar.day_of(utc_ms(2025, 3, 31, 18, 29, 59), "Asia/Kolkata") == date(2025, 3, 31)
    assert calendar.day_of(utc_ms(2025, 3, 31, 18, 30), "Asia/Kolkata") == date(2025, 4, 1)


def test_day_of_in_a_repeated_hour() -> None:
    # Santiago, 2024-04-06: at 24:00 (-03) clocks go back to 23:00 (-04); both 23:30s are
    # still the 6th, and the 7th begins at 04:00Z.
    first, second = utc_ms(2024, 4, 7, 2, 30), utc_ms(2024, 4, 7, 3, 30)
    assert calendar.day_of(first, "America/Santiago") == date(2024, 4, 6)
    assert calendar.day_of(second, "America/Santiago") == date(2024, 4, 6)
    assert calendar.day_of(utc_ms(2024, 4, 7, 4, 0), "America/Santiago") == date(2024, 4, 7)


@pytest.mark.parametrize(
    ("tz", "day", "start_utc", "hours"),
    [
        ("Asia/Shanghai", date(2025, 3, 31), (2025, 3, 30, 16), 24),
        ("UTC", date(2025, 3, 31), (2025, 3, 31, 0), 24),
        ("Asia/Kolkata", date(2025, 3, 31), (2025, 3, 30, 18, 30), 24),
        # Spring forward at 02:00 (midnight exists) and fall back at 02:00.
        ("America/New_York", date(2024, 3, 10), (2024, 3, 10, 5), 23),
        ("America/New_York", date(2024, 11, 3), (2024, 11, 3, 4), 25),
        # Midnight does not exist: the day begins at 01:00 local.
        ("America/Santiago", date(2024, 9, 8), (2024, 9, 8, 4), 23),
        ("Asia/Beirut", date(2024, 3, 31), (2024, 3, 30, 22), 23),
        # 23:00-24:00 happens twice on the day before.
        ("America/Santiago", date(2024, 4, 6), (2024, 4, 6, 3), 25),
        ("Asia/Beirut", date(2024, 10, 26), (2024, 10, 25, 21), 25),
        # 00:00-01:00 happens twice: the day begins at the first midnight.
        ("America/Havana", date(2024, 11, 3), (2024, 11, 3, 4), 25),
        # Lord Howe moves its clocks by 30 minutes.
        ("Australia/Lord_Howe", date(2024, 10, 6), (2024, 10, 5, 13, 30), 23.5),
    ],
)
def test_day_start_and_length(tz: str, day: date, start_utc: tuple[int, ...], hours: float) -> None:
    start = utc_ms(*start_utc)
    assert calendar.day_start_ms(day, tz) == start
    start_of_next, end = calendar.day_window_ms(day, tz)
    assert start_of_next == start
    assert end - start == int(hours * 3_600_000)
    assert calendar.day_of(start, tz) == day
    assert calendar.day_of(start - 1, tz) == day - timedelta(days=1)
    assert calendar.day_of(end - 1, tz) == day


def test_a_skipped_day_starts_where_the_next_one_does() -> None:
    # Samoa skipped 2011-12-30 (from -10 to +14).
    assert calendar.day_start_ms(date(2011, 12, 30), "Pacific/Apia") == utc_ms(2011, 12, 30, 10)
    assert calendar.day_start_ms(date(2011, 12, 31), "Pacific/Apia") == utc_ms(2011, 12, 30, 10)


ZONES = [
    "Asia/Shanghai",
    "UTC",
    "America/New_York",
    "America/Santiago",
    "Asia/Beirut",
    "America/Havana",
    "America/Asuncion",
    "America/Sao_Paulo",
    "Asia/Tehran",
    "Africa/Casablanca",
    "Europe/Dublin",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Antarctica/Troll",
    "Pacific/Apia",
    "Pacific/Kiritimati",
]


@FAST
@given(st.sampled_from(ZONES), st.dates(date(1971, 1, 1), date(2060, 12, 31)))
def test_day_start_is_the_first_instant_of_the_day(tz: str, day: date) -> None:
    """Against an independent search over milliseconds (tests.reference.first_instant)."""
    start = calendar.day_start_ms(day, tz)
    assert start == reference.first_instant(day, tz)
    assert calendar.day_window_ms(day, tz) == (
        start,
        reference.first_instant(day + timedelta(1), tz),
    )


@FAST
@given(st.sampled_from(ZONES), st.integers(utc_ms(1971, 1, 2), utc_ms(2100, 1, 1)))
def test_every_instant_lies_in_the_window_of_its_day(tz: str, instant: int) -> None:
    day = calendar.day_of(instant, tz)
    assert day == reference.local_day(instant, tz)
    start, end = calendar.day_window_ms(day, tz)
    assert start <= instant < end


@FAST
@given(st.sampled_from(ZONES), st.dates(date(1971, 1, 2), date(2100, 1, 1)))
def test_day_edges_round_trip(tz: str, day: date) -> None:
    start, end = calendar.day_window_ms(day, tz)
    if start == end:  # a skipped day has no instant
        return
    assert calendar.day_of(start, tz) == day
    assert calendar.day_of(end - 1, tz) == day
    assert calendar.day_of(start - 1, tz) < day
    assert calendar.day_of(end, tz) > day


@FAST
@given(st.dates(date(1, 1, 1), date(9999, 12, 31)))
def test_day_key_round_trips(day: date) -> None:
    key = calendar.day_key(day)
    assert key == int(day.strftime("%Y%m%d").zfill(8))
    assert calendar.day_from_key(key) == day


def test_day_keys_order_like_days() -> None:
    days = [date(2024, 12, 31), date(2025, 1, 1), date(2025, 1, 10), date(2025, 10, 1)]
    assert [calendar.day_key(d) for d in days] == sorted(calendar.day_key(d) for d in days)


@pytest.mark.parametrize("instant", [-1, calendar.MAX_MS + 1])
def test_instants_outside_the_range_are_rejected(instant: int) -> None:
    with pytest.raises(InvalidArgument) as raised:
        calendar.day_of(instant, "UTC", "Filter.executionDate")
    assert raised.value.param == "Filter.executionDate"


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_days_inside_the_supported_range_are_accepted_at_both_ends(tz: str) -> None:
    first = calendar.day_start_ms(calendar.FIRST_DAY, tz)
    assert calendar.day_of(first, tz) == calendar.FIRST_DAY
    last_start, last_end = calendar.day_window_ms(calendar.LAST_DAY, tz)
    assert calendar.day_of(last_start, tz) == calendar.LAST_DAY
    assert last_end > last_start
