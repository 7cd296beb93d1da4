"""ListWorkflowInstances and GetWorkflowInstance through the official SDK (DESIGN.md §3)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from alibabacloud_dataworks_public20240518 import models

from dwsched.domain.models import EnvType, InstanceType, Status
from tests.api.sdk_helpers import (
    ALGORITHMS,
    ITEM_FIELDS,
    acs3,
    assert_sdk_error,
    expected_item,
    item_fields,
    list_instances,
    listed_ids,
    ok_json,
    sdk_error,
)
from tests.support.factories import DAY, SHANGHAI_DAY_MS, instance, project, put, tags
from tests.support.server import LiveServer

HOUR = 3_600_000
DAY_MS = 24 * HOUR
ONE_DAY = timedelta(days=1)


def ms(*args: int) -> int:
    """Epoch ms of a UTC wall time."""
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def ny_midnight_mar31() -> int:
    return ms(2025, 3, 31, 4)  # 2025-03-31T00:00-04:00 (EDT)


# ProjectId and BizDate


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_project_and_biz_date_select_one_partition(live: LiveServer, algorithm: str) -> None:
    p, other = project(live.store), project(live.store)
    mine = [instance(p.id) for _ in range(3)]
    next_day = instance(p.id, biz_day=DAY + ONE_DAY)
    elsewhere = instance(other.id)
    put(live.store, [*mine, next_day, elsewhere])

    assert listed_ids(live, p.id, algorithm=algorithm) == sorted((i.id for i in mine), reverse=True)
    assert listed_ids(live, p.id, SHANGHAI_DAY_MS + DAY_MS, algorithm) == [next_day.id]
    assert listed_ids(live, p.id, SHANGHAI_DAY_MS - DAY_MS, algorithm) == []
    assert listed_ids(live, other.id, algorithm=algorithm) == [elsewhere.id]


def test_any_instant_of_the_day_selects_it_in_shanghai(live: LiveServer) -> None:
    p = project(live.store)
    before, on, after = (
        instance(p.id, biz_day=DAY - ONE_DAY),
        instance(p.id),
        instance(p.id, biz_day=DAY + ONE_DAY),
    )
    put(live.store, [before, on, after])
    for instant in (SHANGHAI_DAY_MS, SHANGHAI_DAY_MS + 13 * HOUR, SHANGHAI_DAY_MS + DAY_MS - 1):
        paging = list_instances(live, p.id, instant)
        assert [i.id for i in paging.workflow_instances] == [on.id]
        assert paging.workflow_instances[0].biz_date == SHANGHAI_DAY_MS
    previous = list_instances(live, p.id, SHANGHAI_DAY_MS - 1).workflow_instances
    assert [i.id for i in previous] == [before.id]
    assert previous[0].biz_date == SHANGHAI_DAY_MS - DAY_MS
    assert listed_ids(live, p.id, SHANGHAI_DAY_MS + DAY_MS) == [after.id]


@pytest.mark.parametrize(
    ("tz", "day", "start", "hours"),
    [
        # Daylight saving starts: 2025-03-09 00:00 EST = 05:00Z, the day lasts 23 hours.
        ("America/New_York", date(2025, 3, 9), ms(2025, 3, 9, 5), 23),
        # Daylight saving ends: 2025-11-02 00:00 EDT = 04:00Z, the day lasts 25 hours.
        ("America/New_York", date(2025, 11, 2), ms(2025, 11, 2, 4), 25),
        # UTC+14: the day starts at 10:00Z of the day before in UTC.
        ("Pacific/Kiritimati", date(2025, 3, 31), ms(2025, 3, 30, 10), 24),
        # Midnight does not exist (24:00 -> 01:00): the day starts at 01:00-03 = 04:00Z.
        ("America/Santiago", date(2024, 9, 8), ms(2024, 9, 8, 4), 23),
    ],
)
def test_biz_date_is_the_calendar_day_in_the_project_zone(
    live: LiveServer, tz: str, day: date, start: int, hours: int
) -> None:
    p = project(live.store, tz=tz)
    before, on, after = (
        instance(p.id, biz_day=day - ONE_DAY),
        instance(p.id, biz_day=day),
        instance(p.id, biz_day=day + ONE_DAY),
    )
    put(live.store, [before, on, after])
    end = start + hours * HOUR
    for instant in (start, start + 1, start + hours * HOUR // 2, end - 1):
        paging = list_instances(live, p.id, instant)
        assert [i.id for i in paging.workflow_instances] == [on.id], instant
        assert paging.workflow_instances[0].biz_date == start  # canonical: the day's start
    assert listed_ids(live, p.id, start - 1) == [before.id]
    assert listed_ids(live, p.id, end) == [after.id]
    following = list_instances(live, p.id, end + 5 * HOUR).workflow_instances
    assert following[0].biz_date == end


# EnvType, Type, WorkflowId, UnifiedWorkflowInstanceId, Owner


def test_env_type_defaults_to_prod(live: LiveServer) -> None:
    p = project(live.store)
    prod, dev = instance(p.id), instance(p.id, env_type=EnvType.DEV)
    put(live.store, [prod, dev])
    assert listed_ids(live, p.id) == [prod.id]
    assert listed_ids(live, p.id, env_type="Prod") == [prod.id]
    found = list_instances(live, p.id, env_type="Dev").workflow_instances
    assert [i.id for i in found] == [dev.id]
    assert found[0].env_type == "Dev"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_type_selects_exactly_that_type(live: LiveServer, algorithm: str) -> None:
    p = project(live.store)
    by_type = {t: instance(p.id, type=t) for t in InstanceType}
    put(live.store, list(by_type.values()))
    for kind, made in by_type.items():
        found = list_instances(live, p.id, algorithm=algorithm, type=kind.value)
        assert [i.id for i in found.workflow_instances] == [made.id]
        assert found.workflow_instances[0].type == kind.value
    assert len(listed_ids(live, p.id)) == len(InstanceType)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_workflow_unified_id_and_owner_match_exactly(live: LiveServer, algorithm: str) -> None:
    p = project(live.store)
    a = instance(p.id, workflow_id=7001, unified_workflow_instance_id=5001, owner="1000")
    b = instance(p.id, workflow_id=70011, unified_workflow_instance_id=50011, owner="10000")
    c = instance(p.id, workflow_id=7001, unified_workflow_instance_id=50011, owner="100")
    put(live.store, [a, b, c])

    def ids(**fields: object) -> set[int]:
        return set(listed_ids(live, p.id, algorithm=algorithm, **fields))

    assert ids(workflow_id=7001) == {a.id, c.id}
    assert ids(workflow_id=700) == set()
    assert ids(unified_workflow_instance_id=50011) == {b.id, c.id}
    assert ids(unified_workflow_instance_id=5001) == {a.id}
    assert ids(owner="1000") == {a.id}
    assert ids(owner="100") == {c.id}
    assert ids(owner="10") == set()
    assert ids(workflow_id=7001, owner="100") == {c.id}
    assert ids(workflow_id=7001, unified_workflow_instance_id=50011, owner="1000") == set()


# Name


def test_name_is_a_case_insensitive_substring_with_literal_wildcards(live: LiveServer) -> None:
    p = project(live.store)
    names = [
        "Daily_Sales",
        "daily-sales",
        "DAILYxSALES",
        "rate 100%",
        "rate 1000",
        "back\\slash",
        "Ünïcode_Flow",
    ]
    made = {n: instance(p.id, name=n) for n in names}
    put(live.store, list(made.values()))

    def names_for(name: str) -> set[str]:
        found = list_instances(live, p.id, name=name, page_size=100).workflow_instances
        return {i.name for i in found}

    assert names_for("SALES") == {"Daily_Sales", "daily-sales", "DAILYxSALES"}
    assert names_for("daily_sales") == {"Daily_Sales"}  # `_` is not a wildcard
    assert names_for("ily_s") == {"Daily_Sales"}
    assert names_for("_") == {"Daily_Sales", "Ünïcode_Flow"}
    assert names_for("%") == {"rate 100%"}  # `%` is not a wildcard
    assert names_for("100%") == {"rate 100%"}
    assert names_for("rate 100") == {"rate 100%", "rate 1000"}
    assert names_for("\\") == {"back\\slash"}
    assert names_for("üNÏCODE") == {"Ünïcode_Flow"}
    assert names_for("nothing") == set()


# Ids


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_ids_combine_with_every_other_filter(live: LiveServer, algorithm: str) -> None:
    p, other = project(live.store), project(live.store)
    a, b = instance(p.id), instance(p.id)
    c = instance(p.id, type=InstanceType.MANUAL, status=Status.FAILURE)
    next_day = instance(p.id, biz_day=DAY + ONE_DAY)
    dev = instance(p.id, env_type=EnvType.DEV)
    elsewhere = instance(other.id)
    put(live.store, [a, b, c, next_day, dev, elsewhere])

    def ids(**fields: object) -> list[int]:
        return listed_ids(live, p.id, algorithm=algorithm, **fields)

    assert ids(ids=[a.id, c.id]) == [c.id, a.id]
    assert ids(ids=[a.id, a.id]) == [a.id]
    assert ids(ids=[a.id, c.id], type="Manual") == [c.id]
    assert ids(ids=[a.id, c.id], filter='{"status":"Success"}') == [a.id]
    assert ids(ids=[a.id, b.id], name=a.name) == [a.id]
    # The partition still applies: another day, environment or workspace is not listed.
    assert ids(ids=[next_day.id, dev.id, elsewhere.id]) == []
    assert ids(ids=[dev.id], env_type="Dev") == [dev.id]


# Tags


def test_tags_forms_and_any_match(live: LiveServer) -> None:
    p = project(live.store)
    data = instance(p.id, tags=tags("team:data", "env:prod"))
    ops = instance(p.id, tags=tags("team:ops"))
    empty = instance(p.id, tags=tags("team:"))
    url = instance(p.id, tags=tags("url:http://x:80"))
    bare = instance(p.id)
    put(live.store, [data, ops, empty, url, bare])

    def ids(*wanted: str) -> set[int]:
        return set(listed_ids(live, p.id, tags=list(wanted)))

    assert ids("team:data") == {data.id}
    assert ids("team:") == {empty.id}  # `key:` is the key with an empty value
    assert ids("team") == {data.id, ops.id, empty.id}  # `key` is the key with any value
    assert ids("team:ops", "env:prod") == {data.id, ops.id}  # any listed tag
    assert ids("team:ops", "team:data", "nope") == {data.id, ops.id}
    assert ids("url:http://x:80") == {url.id}  # split at the first colon
    assert ids("url:http") == set()
    assert ids("env:data") == set()
    assert ids("nope") == set()
    shown = list_instances(live, p.id, tags=["team"], page_size=10).workflow_instances
    by_id = {i.id: item_fields(i)["Tags"] for i in shown}
    assert by_id[data.id] == [{"Key": "team", "Value": "data"}, {"Key": "env", "Value": "prod"}]
    assert by_id[empty.id] == [{"Key": "team", "Value": ""}]


# Filter


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_filter_status_one_or_a_list(live: LiveServer, algorithm: str) -> None:
    p = project(live.store)
    by_status = {s: instance(p.id, status=s) for s in Status}
    put(live.store, list(by_status.values()))

    def ids(text: str) -> set[int]:
        return set(listed_ids(live, p.id, algorithm=algorithm, filter=text))

    for status, made in by_status.items():
        assert ids(json.dumps({"status": status.value})) == {made.id}
    assert ids('{"status":["Success","Running"]}') == {
        by_status[Status.SUCCESS].id,
        by_status[Status.RUNNING].id,
    }
    assert ids('{"status":["NotRun"]}') == {by_status[Status.NOT_RUN].id}
    assert ids("{}") == {i.id for i in by_status.values()}


def test_filter_execution_date_is_the_trigger_day_in_the_project_zone(live: LiveServer) -> None:
    p = project(live.store, tz="America/New_York")
    day = date(2025, 3, 31)
    # Trigger times around 2025-04-01 in New York (EDT, UTC-4).
    late = instance(p.id, biz_day=day, trigger_time=ms(2025, 4, 2, 2), status=Status.FAILURE)
    first = instance(p.id, biz_day=day, trigger_time=ms(2025, 4, 1, 4))  # 00:00 local
    last = instance(p.id, biz_day=day, trigger_time=ms(2025, 4, 2, 4) - 1)  # 23:59:59.999
    before = instance(p.id, biz_day=day, trigger_time=ms(2025, 4, 1, 4) - 1)
    after = instance(p.id, biz_day=day, trigger_time=ms(2025, 4, 2, 4))
    put(live.store, [late, first, last, before, after])
    biz = ny_midnight_mar31()
    noon_apr1 = ms(2025, 4, 1, 16)

    def ids(value: object, **extra: object) -> set[int]:
        text = json.dumps({"executionDate": value, **extra})
        return set(listed_ids(live, p.id, biz, filter=text))

    assert ids(noon_apr1) == {late.id, first.id, last.id}
    assert ids(str(noon_apr1)) == {late.id, first.id, last.id}  # as the SDK docs show it
    assert ids(ms(2025, 4, 1, 4)) == {late.id, first.id, last.id}
    assert ids(ms(2025, 4, 2, 4)) == {after.id}
    assert ids(ms(2025, 4, 1, 3)) == {before.id}
    assert ids(noon_apr1, status="Failure") == {late.id}
    assert ids(str(noon_apr1), status=["Success"]) == {first.id, last.id}


# SortBy


def _sort_fixture(live: LiveServer) -> tuple[int, dict[str, dict[int, int]]]:
    """Four instances whose order differs for every sortable field; values by field."""
    p = project(live.store)
    base = SHANGHAI_DAY_MS + DAY_MS
    orders = {
        "TriggerTime": [3, 1, 4, 2],
        "StartedTime": [2, 4, 1, 3],
        "FinishedTime": [4, 3, 2, 1],
        "CreateTime": [1, 3, 2, 4],
    }
    made = [
        instance(
            p.id,
            trigger_time=base + orders["TriggerTime"][k] * HOUR,
            started_time=base + orders["StartedTime"][k] * HOUR,
            finished_time=base + 10 * HOUR + orders["FinishedTime"][k] * HOUR,
            create_time=base + orders["CreateTime"][k] * HOUR,
        )
        for k in range(4)
    ]
    put(live.store, made)
    values = {
        "TriggerTime": {i.id: i.trigger_time for i in made},
        "StartedTime": {i.id: i.started_time or 0 for i in made},
        "FinishedTime": {i.id: i.finished_time or 0 for i in made},
        "CreateTime": {i.id: i.create_time for i in made},
        "Id": {i.id: i.id for i in made},
    }
    return p.id, values


@pytest.mark.parametrize(
    "field", ["TriggerTime", "StartedTime", "FinishedTime", "CreateTime", "Id"]
)
def test_sort_by_each_field_in_both_directions(live: LiveServer, field: str) -> None:
    project_id, values = _sort_fixture(live)
    by_value = sorted(values[field], key=lambda i: values[field][i])
    assert listed_ids(live, project_id, sort_by=f"{field} Asc") == by_value
    assert listed_ids(live, project_id, sort_by=f"{field} Desc") == by_value[::-1]
    assert listed_ids(live, project_id, sort_by=field) == by_value  # Asc when omitted
    assert listed_ids(live, project_id, sort_by=f"{field.lower()} DESC") == by_value[::-1]
    assert listed_ids(live, project_id, sort_by=f"  {field.upper()}   asc ") == by_value


def test_default_sort_is_id_desc(live: LiveServer) -> None:
    project_id, values = _sort_fixture(live)
    assert listed_ids(live, project_id) == sorted(values["Id"], reverse=True)


def _nulls_fixture(live: LiveServer) -> tuple[int, dict[str, int]]:
    p = project(live.store)
    base = SHANGHAI_DAY_MS + DAY_MS
    made = {
        "a": instance(p.id, status=Status.NOT_RUN, started_time=None, finished_time=None),
        "b": instance(p.id, status=Status.RUNNING, started_time=base + 5, finished_time=None),
        "c": instance(p.id, started_time=base + 3, finished_time=base + 9),
        "d": instance(p.id, status=Status.WAIT_TIME, started_time=None, finished_time=None),
        "e": instance(p.id, started_time=base + 7, finished_time=base + 8),
    }
    put(live.store, list(made.values()))
    return p.id, {k: v.id for k, v in made.items()}


@pytest.mark.parametrize(
    ("sort_by", "expected"),
    [
        ("StartedTime Asc", "cbead"),  # nulls last, tie-broken by Id Asc
        ("StartedTime Desc", "ebcda"),  # nulls last too, tie-broken by Id Desc
        ("FinishedTime Asc", "ecabd"),
        ("FinishedTime Desc", "cedba"),
    ],
)
def test_rows_without_a_value_come_last_in_both_directions(
    live: LiveServer, sort_by: str, expected: str
) -> None:
    project_id, ids = _nulls_fixture(live)
    want = [ids[k] for k in expected]
    assert listed_ids(live, project_id, sort_by=sort_by) == want
    for size in (2, 4):  # pages that straddle the boundary between values and nulls
        pages = [
            list_instances(live, project_id, sort_by=sort_by, page_size=size, page_number=n)
            for n in range(1, 5 // size + 2)
        ]
        assert all(pg.total_count == 5 for pg in pages)
        assert [i.id for pg in pages for i in pg.workflow_instances] == want, size
    last = list_instances(live, project_id, sort_by=sort_by, page_size=1, page_number=5)
    assert [i.id for i in last.workflow_instances] == want[4:]


def _ties_fixture(live: LiveServer) -> tuple[int, dict[str, int]]:
    p = project(live.store)
    t0, t1 = SHANGHAI_DAY_MS + DAY_MS, SHANGHAI_DAY_MS + DAY_MS + HOUR
    made = {
        "a": instance(p.id, trigger_time=t1, started_time=t1 + 5, create_time=t0),
        "b": instance(
            p.id, trigger_time=t1, started_time=None, finished_time=None, status=Status.NOT_RUN
        ),
        "c": instance(p.id, trigger_time=t1, started_time=t1 + 9, create_time=t0),
        "d": instance(p.id, trigger_time=t0, started_time=t1 + 1, create_time=t0),
        "e": instance(p.id, trigger_time=t1, started_time=t1 + 5, create_time=t0),
    }
    put(live.store, list(made.values()))
    return p.id, {k: v.id for k, v in made.items()}


@pytest.mark.parametrize(
    ("sort_by", "expected"),
    [
        ("TriggerTime Asc", "dabce"),  # ties by Id Asc
        ("TriggerTime Desc", "ecbad"),  # ties by Id Desc
        ("CreateTime Desc", "edcba"),
        ("CreateTime", "abcde"),
        ("TriggerTime Asc, StartedTime Desc", "dcaeb"),  # a/e tie on both: Id Asc
        ("TriggerTime Desc,StartedTime Asc", "eacbd"),  # a/e tie on both: Id Desc
        ("StartedTime Desc, TriggerTime Asc", "ceadb"),  # null StartedTime last
        ("StartedTime Asc, TriggerTime Desc", "daecb"),
        ("TriggerTime Desc, Id Asc", "abced"),  # an explicit Id key decides
        ("triggertime desc , startedtime desc , createtime asc", "ceabd"),
    ],
)
def test_several_keys_and_the_id_tie_break_follow_the_first_key(
    live: LiveServer, sort_by: str, expected: str
) -> None:
    project_id, ids = _ties_fixture(live)
    want = [ids[k] for k in expected]
    assert listed_ids(live, project_id, sort_by=sort_by) == want
    pages = [
        list_instances(live, project_id, sort_by=sort_by, page_size=2, page_number=n)
        for n in (1, 2, 3)
    ]
    assert [i.id for pg in pages for i in pg.workflow_instances] == want


# Paging


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_paging_defaults_and_a_page_past_the_end(live: LiveServer, algorithm: str) -> None:
    p = project(live.store)
    made = [instance(p.id) for _ in range(15)]
    put(live.store, made)
    newest_first = sorted((i.id for i in made), reverse=True)

    first = list_instances(live, p.id, algorithm=algorithm)
    assert (first.page_number, first.page_size, first.total_count) == (1, 10, 15)
    assert [i.id for i in first.workflow_instances] == newest_first[:10]
    second = list_instances(live, p.id, algorithm=algorithm, page_number=2)
    assert (second.page_number, second.page_size, second.total_count) == (2, 10, 15)
    assert [i.id for i in second.workflow_instances] == newest_first[10:]
    past = list_instances(live, p.id, algorithm=algorithm, page_number=3)
    assert (past.page_number, past.page_size, past.total_count) == (3, 10, 15)
    assert past.workflow_instances == []
    far = list_instances(live, p.id, algorithm=algorithm, page_number=9999, page_size=500)
    assert (far.total_count, far.workflow_instances) == (15, [])

    pages = [list_instances(live, p.id, page_size=4, page_number=n) for n in range(1, 5)]
    assert [len(pg.workflow_instances) for pg in pages] == [4, 4, 4, 3]
    assert [i.id for pg in pages for i in pg.workflow_instances] == newest_first
    everything = list_instances(live, p.id, page_size=500)
    assert (everything.page_size, len(everything.workflow_instances)) == (500, 15)
    one = list_instances(live, p.id, page_size=1, page_number=15)
    assert [i.id for i in one.workflow_instances] == [newest_first[-1]]


def test_an_empty_partition_is_an_empty_page(live: LiveServer) -> None:
    p = project(live.store)
    paging = list_instances(live, p.id)
    assert (paging.page_number, paging.page_size, paging.total_count) == (1, 10, 0)
    assert paging.workflow_instances == []


# Items


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_item_field_is_present_with_sdk_types(live: LiveServer, algorithm: str) -> None:
    p = project(live.store, tz="America/New_York")
    done = instance(
        p.id,
        biz_day=date(2025, 3, 31),
        tags=tags("team:data", "empty:"),
        workflow_parameters='{"a":1}',
        type=InstanceType.SUPPLEMENT_DATA,
        owner="20001",
        create_user="20002",
        modify_user="20003",
    )
    fresh = instance(
        p.id,
        biz_day=date(2025, 3, 31),
        status=Status.NOT_RUN,
        started_time=None,
        finished_time=None,
    )
    put(live.store, [done, fresh])
    biz = ny_midnight_mar31()
    found = list_instances(live, p.id, biz + 7 * HOUR, algorithm).workflow_instances
    by_id = {i.id: item_fields(i) for i in found}
    assert by_id == {done.id: expected_item(done, biz), fresh.id: expected_item(fresh, biz)}
    types = {
        "BizDate": int,
        "CreateTime": int,
        "CreateUser": str,
        "EnvType": str,
        "FinishedTime": int,
        "Id": int,
        "ModifyTime": int,
        "ModifyUser": str,
        "Name": str,
        "Owner": str,
        "ProjectId": int,
        "StartedTime": int,
        "Status": str,
        "Tags": list,
        "Type": str,
        "UnifiedWorkflowInstanceId": int,
        "WorkflowId": int,
        "WorkflowParameters": str,
        "WorkflowTaskInstanceId": int,
    }
    for name, kind in types.items():
        assert type(by_id[done.id][name]) is kind, name
    assert by_id[fresh.id]["StartedTime"] is None
    assert by_id[fresh.id]["FinishedTime"] is None

    # On the wire every field is present, the unknown times as null.
    raw = acs3(live, "ListWorkflowInstances", form={"ProjectId": p.id, "BizDate": biz}).send()
    items = {i["Id"]: i for i in ok_json(raw)["PagingInfo"]["WorkflowInstances"]}
    for item in items.values():
        # The SDK's fields, and dwsched's one extension (which the SDK ignores).
        assert set(item) == set(ITEM_FIELDS) | {"TriggerTime"}
    assert items[fresh.id]["StartedTime"] is None
    assert items[fresh.id]["FinishedTime"] is None
    assert items[done.id]["Tags"] == [
        {"Key": "team", "Value": "data"},
        {"Key": "empty", "Value": ""},
    ]


# GetWorkflowInstance


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_get_workflow_instance(live: LiveServer, algorithm: str) -> None:
    p = project(live.store, tz="Pacific/Kiritimati")
    made = instance(p.id, biz_day=date(2025, 3, 31), tags=tags("k:v"), workflow_parameters="x=1")
    fresh = instance(p.id, status=Status.NOT_RUN, started_time=None, finished_time=None)
    put(live.store, [made, fresh])
    sdk = live.sdk(algorithm)

    body = sdk.get_workflow_instance(models.GetWorkflowInstanceRequest(id=made.id)).body
    assert body.request_id
    assert item_fields(body.workflow_instance) == expected_item(made, ms(2025, 3, 30, 10))
    got = sdk.get_workflow_instance(models.GetWorkflowInstanceRequest(id=fresh.id)).body
    assert got.workflow_instance.started_time is None
    assert got.workflow_instance.finished_time is None

    missing = 9_000_000_000 + made.id
    error = sdk_error(
        lambda: sdk.get_workflow_instance(models.GetWorkflowInstanceRequest(id=missing))
    )
    assert_sdk_error(error, 404, "Invalid.WorkflowInstance.NotExist", str(missing))
