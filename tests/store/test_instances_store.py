"""The store facade on SQLite and PostgreSQL: listing, lookups, import, export, workspaces,
replay nonces. Every test runs on both backends through the `store` fixture; listings are
checked against the brute-force reference in `tests.reference`.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dwsched.domain.calendar import day_key
from dwsched.domain.errors import (
    Conflict,
    InstanceNotFound,
    InstancesExist,
    ProjectNotEmpty,
    ProjectNotFound,
)
from dwsched.domain.models import (
    EnvType,
    InstanceType,
    NewProject,
    ProjectChanges,
    ProjectStatus,
    Status,
    Tag,
    WorkflowInstance,
)
from dwsched.domain.queries import (
    MAX_PAGE_NUMBER,
    InstanceQuery,
    page,
    parse_sort,
    parse_tag_match,
)
from dwsched.store import ImportBatch, Store
from dwsched.store.schema import request_nonces
from tests import reference
from tests.support.factories import DAY, SHANGHAI_DAY_MS, instance, project, put, tags

HOUR = 3_600_000
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def got(store: Store, instance_id: int) -> tuple[str, WorkflowInstance]:
    """The instance and its workspace's time zone."""
    with store.read() as tx:
        found = tx.instances.get(instance_id)
        return tx.projects.timezone(found.project_id), found


def every(
    store: Store, project_id: int, env: EnvType | None, biz_day_key: int | None
) -> list[WorkflowInstance]:
    """Every instance of an existing workspace (ProjectNotFound), as an export reads them."""
    with store.read() as tx:
        tx.projects.get(project_id)
        return list(tx.instances.iter(project_id, env, biz_day_key))


def query(project_id: int, biz_date_ms: int = SHANGHAI_DAY_MS, **kw: Any) -> InstanceQuery:
    """An InstanceQuery in the request's own terms (SortBy text, tag texts, page numbers)."""
    sort = parse_sort(kw.pop("sort", ""))
    tag_texts = kw.pop("tags", ())
    number, size = kw.pop("page_number", None), kw.pop("page_size", None)
    return InstanceQuery(
        project_id=project_id,
        env_type=kw.pop("env_type", EnvType.PROD),
        biz_date_ms=biz_date_ms,
        tags=tuple(parse_tag_match(t) for t in tag_texts),
        sort=sort,
        page=page(number, size),
        **kw,
    )


def listed(store: Store, q: InstanceQuery) -> tuple[int, list[int]]:
    _tz, found = store.list_instances(q)
    return found.total, [i.id for i in found.items]


def expected(items: list[WorkflowInstance], tzs: dict[int, str], q: reference.Query) -> Any:
    answer = reference.list_instances(items, tzs, q)
    return answer.total, answer.ids


def as_store_query(q: reference.Query) -> InstanceQuery:
    status = (q.status,) if isinstance(q.status, str) else q.status or ()
    return InstanceQuery(
        project_id=q.project_id,
        env_type=EnvType(q.env_type or "Prod"),
        biz_date_ms=q.biz_date,
        type=None if q.type is None else InstanceType(q.type),
        workflow_id=q.workflow_id,
        unified_workflow_instance_id=q.unified_workflow_instance_id,
        name=q.name,
        ids=q.ids,
        owner=q.owner,
        tags=tuple(parse_tag_match(t) for t in q.tags or ()),
        statuses=tuple(Status(s) for s in status),
        execution_date_ms=None if q.execution_date is None else int(q.execution_date),
        sort=parse_sort(q.sort_by or ""),
        page=page(q.page_number, q.page_size),
    )


def snapshot(store: Store) -> dict[str, Any]:
    """Everything the facade shows: workspaces and every instance of each."""
    with store.read() as tx:
        shown: dict[str, Any] = {"projects": tx.projects.all()}
    for p in shown["projects"]:
        shown[p.name] = every(store, p.id, None, None)
    return shown


# Listing: order


def sort_fixture(store: Store) -> tuple[int, list[WorkflowInstance]]:
    """Ten instances with many equal sort values and missing Started/FinishedTime."""
    p = project(store)
    base = SHANGHAI_DAY_MS + 86_400_000
    started = [None, base + 5, base + 5, None, base + 1, base + 9, None, base + 5, base + 1, None]
    items = []
    for n, s in enumerate(started):
        items.append(
            instance(
                p.id,
                id=1000 + (n * 7) % 10,  # ids not in insertion order
                trigger_time=base + (n % 3) * HOUR,
                started_time=s,
                finished_time=None if s is None or n % 4 == 0 else s + (n % 2) * 1000,
                create_time=base - (n % 2),
                status=Status.SUCCESS if s is not None else Status.NOT_RUN,
            )
        )
    put(store, items)
    return p.id, items


SORTS = [
    "",
    "Id",
    "Id Desc",
    "TriggerTime",
    "TriggerTime Desc",
    "CreateTime",
    "CreateTime Desc",
    "StartedTime",
    "StartedTime Desc",
    "FinishedTime",
    "FinishedTime Desc",
    "CreateTime Desc, TriggerTime Asc",
    "TriggerTime Desc, Id Asc",
    "StartedTime Desc, FinishedTime Asc",
    "FinishedTime, StartedTime Desc",
    "CreateTime, StartedTime",
    "TriggerTime, FinishedTime Desc",
]


def test_every_page_of_every_order_matches_reference(store: Store) -> None:
    """All page sizes and numbers, so that pages meet the valued/missing boundary anywhere."""
    pid, items = sort_fixture(store)
    tzs = {pid: "Asia/Shanghai"}
    for sort, size in itertools.product(SORTS, (1, 2, 3, 4, 10)):
        for number in range(1, 12 // size + 2):
            got = listed(store, query(pid, sort=sort, page_number=number, page_size=size))
            want = reference.Query(
                pid, SHANGHAI_DAY_MS, sort_by=sort or None, page_number=number, page_size=size
            )
            assert got == expected(items, tzs, want), (sort, size, number)


def test_missing_started_time_comes_last_in_both_directions(store: Store) -> None:
    pid, items = sort_fixture(store)
    by_id = {i.id: i for i in items}
    for descending in (False, True):
        direction = "Desc" if descending else "Asc"
        _total, ids = listed(store, query(pid, sort=f"StartedTime {direction}", page_size=100))
        values = [by_id[i].started_time for i in ids]
        present = [v for v in values if v is not None]
        assert values == present + [None] * (len(values) - len(present)), direction
        assert present == sorted(present, reverse=descending)
        missing = [i for i in ids if by_id[i].started_time is None]
        assert missing == sorted(missing, reverse=descending)  # Id in the first key's direction


TIES = [
    ("CreateTime Asc", False),
    ("CreateTime Desc", True),
    ("CreateTime Asc, TriggerTime Desc", False),
    ("CreateTime Desc, TriggerTime Asc", True),
    ("StartedTime Desc, CreateTime Asc", True),
    ("FinishedTime, TriggerTime Desc", False),
]


def test_ties_follow_the_first_keys_direction(store: Store) -> None:
    p = project(store)
    same = {"trigger_time": SHANGHAI_DAY_MS + HOUR, "create_time": SHANGHAI_DAY_MS}
    items = [instance(p.id, id=i, started_time=None, finished_time=None, **same) for i in (5, 3, 9)]
    put(store, items)
    for sort, ids_descending in TIES:
        got = listed(store, query(p.id, sort=sort))
        assert got == (3, sorted([3, 5, 9], reverse=ids_descending)), sort


def test_default_order_is_id_descending(store: Store) -> None:
    p = project(store)
    put(store, [instance(p.id, id=i) for i in (20, 40, 10, 30)])
    assert listed(store, query(p.id)) == (4, [40, 30, 20, 10])


def test_page_past_the_end_is_empty_with_the_true_total(store: Store) -> None:
    p = project(store)
    put(store, [instance(p.id, id=i) for i in range(1, 8)])
    assert listed(store, query(p.id, page_size=3, page_number=3)) == (7, [1])
    assert listed(store, query(p.id, page_size=3, page_number=4)) == (7, [])
    assert listed(store, query(p.id, page_size=500, page_number=10_000)) == (7, [])
    deepest = query(p.id, sort="FinishedTime Desc", page_size=500, page_number=MAX_PAGE_NUMBER)
    assert listed(store, deepest) == (7, [])
    assert listed(store, query(p.id, sort="StartedTime", page_size=3, page_number=4)) == (7, [])


# Listing: the partition and the filters


def test_partition_is_project_env_and_day(store: Store) -> None:
    p, other = project(store), project(store)
    mine = instance(p.id, id=1)
    put(
        store,
        [
            mine,
            instance(p.id, id=2, env_type=EnvType.DEV),
            instance(p.id, id=3, biz_day=DAY + timedelta(days=1)),
            instance(p.id, id=4, biz_day=DAY - timedelta(days=1)),
            instance(other.id, id=5),
        ],
    )
    assert listed(store, query(p.id)) == (1, [1])
    assert listed(store, query(p.id, env_type=EnvType.DEV)) == (1, [2])
    assert listed(store, query(p.id, SHANGHAI_DAY_MS + 86_400_000)) == (1, [3])
    assert listed(store, query(other.id)) == (1, [5])
    assert listed(store, query(p.id, SHANGHAI_DAY_MS + 10 * 86_400_000)) == (0, [])
    with pytest.raises(ProjectNotFound):
        store.list_instances(query(987_654))


def test_biz_date_is_any_instant_of_the_day_in_the_projects_zone(store: Store) -> None:
    sh = project(store)  # Asia/Shanghai, UTC+8
    put(store, [instance(sh.id, id=1)])
    end = SHANGHAI_DAY_MS + 86_400_000 - 1
    for instant in (SHANGHAI_DAY_MS, SHANGHAI_DAY_MS + 12 * HOUR, end):
        assert listed(store, query(sh.id, instant)) == (1, [1])
    # 2025-03-31T00:00Z is 08:00 in Shanghai (the day) but 2025-03-30 in New York.
    utc_midnight = SHANGHAI_DAY_MS + 8 * HOUR
    assert listed(store, query(sh.id, utc_midnight)) == (1, [1])
    assert listed(store, query(sh.id, SHANGHAI_DAY_MS - 1)) == (0, [])
    assert listed(store, query(sh.id, end + 1)) == (0, [])
    ny = project(store, tz="America/New_York")
    put(store, [instance(ny.id, id=2)])
    assert listed(store, query(ny.id, utc_midnight)) == (0, [])  # 2025-03-30 20:00 EDT
    ny_day = reference.first_instant(DAY, "America/New_York")
    assert listed(store, query(ny.id, ny_day)) == (1, [2])
    assert store.list_instances(query(ny.id, ny_day))[0] == "America/New_York"


def test_changing_the_zone_changes_which_day_an_instant_selects(store: Store) -> None:
    p = project(store)
    put(store, [instance(p.id, id=1)])
    instant = SHANGHAI_DAY_MS + 2 * HOUR  # 2025-03-31 02:00 Shanghai = 2025-03-30 in London
    assert listed(store, query(p.id, instant)) == (1, [1])
    with store.write() as tx:
        tx.projects.update(p.id, ProjectChanges(timezone="Europe/London"), NOW)
    assert listed(store, query(p.id, instant)) == (0, [])
    assert listed(store, query(p.id, instant + 86_400_000)) == (1, [1])


def test_name_is_a_case_insensitive_substring_with_literal_wildcards(store: Store) -> None:
    p = project(store)
    names = {
        1: "ODS_Orders_daily",
        2: "odsXorders",
        3: "report 100%",
        4: "report 1000",
        5: "Straße",
        6: "ΣΊΣΥΦΟΣ",
        7: "a/b_c",
        8: "a//b",
        9: "数据_日报",
    }
    put(store, [instance(p.id, id=i, name=n) for i, n in names.items()])

    def found(text: str) -> list[int]:
        return sorted(listed(store, query(p.id, name=text, page_size=100))[1])

    assert found("ods_orders") == [1]  # `_` is not "any character"
    assert found("ORDERS") == [1, 2]
    assert found("100%") == [3]  # `%` is not "anything"
    assert found("%") == [3]
    assert found("STRASSE") == [5]  # Unicode case folding, not only ASCII
    assert found("straße") == [5]
    assert found("σίσυφος") == [6]
    assert found("/b") == [7, 8]
    assert found("a/b") == [7]
    assert found("//") == [8]
    assert found("_") == [1, 7, 9]
    assert found("据_日") == [9]
    assert found("zzz") == []


def test_a_long_name_whose_folding_is_longer_is_stored_and_found(store: Store) -> None:
    p = project(store)
    long_name = "ß" * 511 + "X"  # 512 characters; casefold() gives 1023
    put(store, [instance(p.id, id=1, name=long_name)])
    assert listed(store, query(p.id, name="SSx")) == (1, [1])
    assert got(store, 1)[1].name == long_name


def test_owner_workflow_and_unified_ids_match_exactly(store: Store) -> None:
    p = project(store)
    put(
        store,
        [
            instance(p.id, id=1, owner="owner_x", workflow_id=7, unified_workflow_instance_id=70),
            instance(p.id, id=2, owner="Owner_X", workflow_id=77, unified_workflow_instance_id=7),
            instance(p.id, id=3, owner="owner_x ", workflow_id=7, unified_workflow_instance_id=7),
        ],
    )
    assert listed(store, query(p.id, owner="owner_x")) == (1, [1])
    assert listed(store, query(p.id, owner="owner")) == (0, [])
    assert listed(store, query(p.id, workflow_id=7)) == (2, [3, 1])
    assert listed(store, query(p.id, unified_workflow_instance_id=7)) == (2, [3, 2])
    assert listed(store, query(p.id, workflow_id=7, unified_workflow_instance_id=7)) == (1, [3])


def test_ids_are_and_combined_with_other_filters(store: Store) -> None:
    p, other = project(store), project(store)
    put(
        store,
        [
            instance(p.id, id=1, status=Status.FAILURE),
            instance(p.id, id=2, status=Status.SUCCESS),
            instance(p.id, id=3, status=Status.FAILURE, env_type=EnvType.DEV),
            instance(other.id, id=4, status=Status.FAILURE),
        ],
    )
    assert listed(store, query(p.id, ids=(1, 2, 3, 4, 99))) == (2, [2, 1])
    assert listed(store, query(p.id, ids=(1, 2, 3, 4), statuses=(Status.FAILURE,))) == (1, [1])
    assert listed(store, query(p.id, ids=(2, 2, 2))) == (1, [2])


def test_tags_match_key_value_empty_value_or_any_value(store: Store) -> None:
    p = project(store)
    put(
        store,
        [
            instance(p.id, id=1, tags=tags("team:a", "layer:ods")),
            instance(p.id, id=2, tags=tags("team:", "layer:dwd")),
            instance(p.id, id=3, tags=tags("team:a:b")),
            instance(p.id, id=4, tags=tags("Team:a")),
            instance(p.id, id=5, tags=tags("team:a", "team:a", "team:b")),  # repeated tag
            instance(p.id, id=6),
        ],
    )

    def found(*texts: str) -> tuple[int, list[int]]:
        return listed(store, query(p.id, tags=texts, sort="Id"))

    assert found("team:a") == (2, [1, 5])
    assert found("team:") == (1, [2])
    assert found("team") == (4, [1, 2, 3, 5])
    assert found("team:a:b") == (1, [3])
    assert found("Team") == (1, [4])
    assert found("team:a", "layer:dwd") == (3, [1, 2, 5])  # any listed tag
    assert found("team:a", "team:b", "team") == (4, [1, 2, 3, 5])  # counted once each
    assert found("nothing") == (0, [])


def test_status_one_or_several(store: Store) -> None:
    p = project(store)
    put(store, [instance(p.id, id=n + 1, status=s) for n, s in enumerate(Status)])
    assert listed(store, query(p.id, statuses=(Status.RUNNING,))) == (1, [5])
    got = listed(store, query(p.id, statuses=(Status.NOT_RUN, Status.FAILURE), sort="Id"))
    assert got == (2, [1, 8])


EXECUTION_DAYS = [
    ("Asia/Shanghai", date(2025, 4, 1)),
    ("America/Santiago", date(2024, 9, 8)),  # midnight does not exist
    ("Asia/Beirut", date(2024, 3, 31)),  # midnight does not exist
    ("America/Santiago", date(2024, 4, 6)),  # 25 hours long
    ("America/New_York", date(2024, 3, 10)),  # 23 hours long
]


def test_execution_date_is_trigger_time_on_that_day(store: Store) -> None:
    for n, (tz, trigger_day) in enumerate(EXECUTION_DAYS):
        p = project(store, tz=tz)
        biz_day = trigger_day - timedelta(days=1)
        start = reference.first_instant(trigger_day, tz)
        end = reference.first_instant(trigger_day + timedelta(days=1), tz)
        edges = [start - 1, start, start + 1, end - 1, end, (start + end) // 2]
        base = 100 * n
        put(
            store,
            [
                instance(p.id, id=base + k, biz_day=biz_day, trigger_time=t)
                for k, t in enumerate(edges, start=1)
            ],
        )
        biz_date = reference.first_instant(biz_day, tz)
        inside = [base + k for k in (2, 3, 4, 6)]
        for when in (start, end - 1, (start + end) // 2):
            got = listed(store, query(p.id, biz_date, execution_date_ms=when, sort="Id"))
            assert got == (4, inside), (tz, trigger_day, when)
        got = listed(store, query(p.id, biz_date, execution_date_ms=end, sort="Id"))
        assert got == (1, [base + 5]), (tz, trigger_day)


def test_seeded_queries_match_reference(store: Store) -> None:
    """A few hundred mixed queries with single-key and id-only orders, against the reference."""
    rng = random.Random(7)
    zones = ["Asia/Shanghai", "America/Santiago"]
    days = [date(2024, 9, 7), date(2024, 9, 8)]
    tzs: dict[int, str] = {}
    items: list[WorkflowInstance] = []
    next_id = iter(rng.sample(range(1, 100_000), 400))
    for tz in zones:
        p = project(store, tz=tz)
        tzs[p.id] = tz
        for _ in range(120):
            day = rng.choice(days)
            trigger = reference.first_instant(day + timedelta(days=1), tz) + rng.choice(
                [-1, 0, 1, HOUR, 23 * HOUR - 1]
            )
            started = rng.choice([None, trigger, trigger + 1000])
            items.append(
                instance(
                    p.id,
                    id=next(next_id),
                    biz_day=day,
                    env_type=rng.choice(list(EnvType)),
                    type=rng.choice(list(InstanceType)),
                    status=rng.choice(list(Status)),
                    name=rng.choice(["ab_C", "AB%c", "x", "Straße", "ab"]),
                    owner=rng.choice(["1", "2"]),
                    workflow_id=rng.choice([1, 2]),
                    unified_workflow_instance_id=rng.choice([1, 2]),
                    trigger_time=trigger,
                    started_time=started,
                    finished_time=None if started is None else rng.choice([None, started + 1]),
                    create_time=rng.choice([1, 2]),
                    tags=tuple(
                        Tag(rng.choice("kK"), rng.choice(["", "v", "v:w"]))
                        for _ in range(rng.randrange(3))
                    ),
                )
            )
    put(store, items)
    sorts = [None, "Id", "TriggerTime Desc", "StartedTime", "FinishedTime Desc", "CreateTime"]
    for _ in range(300):
        pid = rng.choice(sorted(tzs))
        tz = tzs[pid]
        day = rng.choice(days)
        trigger_day = day + timedelta(days=1)
        q = reference.Query(
            project_id=pid,
            biz_date=reference.first_instant(day, tz) + rng.randrange(reference.MS_PER_DAY - HOUR),
            env_type=rng.choice([None, "Prod", "Dev"]),
            type=rng.choice([None, None, None, "Normal", "Manual"]),
            name=rng.choice([None, None, "AB", "_c", "%", "SS"]),
            owner=rng.choice([None, None, "1"]),
            workflow_id=rng.choice([None, None, 1]),
            unified_workflow_instance_id=rng.choice([None, None, 2]),
            ids=rng.choice([None, None, tuple(rng.sample([i.id for i in items], 60))]),
            tags=rng.choice([None, None, ("k",), ("K:v:w", "k:")]),
            status=rng.choice([None, None, "Success", ("Running", "NotRun", "Failure")]),
            execution_date=rng.choice(
                [None, None, reference.first_instant(trigger_day, tz) + rng.randrange(HOUR)]
            ),
            sort_by=rng.choice(sorts),
            page_number=rng.choice([None, 1, 2, 3]),
            page_size=rng.choice([None, 1, 5, 500]),
        )
        assert listed(store, as_store_query(q)) == expected(items, tzs, q), q


# Lookups


def test_get_instance_returns_every_field_as_stored(store: Store) -> None:
    p = project(store, tz="America/Santiago")
    big = 2**62 + 3
    stored = [
        instance(
            p.id,
            id=big,
            workflow_id=big - 1,
            workflow_task_instance_id=big - 2,
            unified_workflow_instance_id=big - 3,
            name="Ünïcødé \U0001d518 名前 %_/",
            owner="o",
            create_user="c",
            modify_user="m",
            type=InstanceType.SUPPLEMENT_DATA,
            status=Status.WAIT_RESOURCE,
            env_type=EnvType.DEV,
            biz_day=date(2024, 9, 8),
            started_time=None,
            finished_time=None,
            workflow_parameters='{"a": "ü", "b": [1, 2]}',
            tags=(Tag("z", "1"), Tag("a", ""), Tag("z", "1"), Tag("é", "v:w")),
        ),
        instance(p.id, id=5),
    ]
    put(store, stored)
    for item in stored:
        assert got(store, item.id) == ("America/Santiago", item)
    with pytest.raises(InstanceNotFound):
        got(store, 6)


# Import


def test_import_conflict_changes_nothing(store: Store) -> None:
    p = project(store)
    put(store, [instance(p.id, id=1, name="old", tags=tags("k:v"))])
    before = snapshot(store)
    new_project = NewProject(name="created_by_import", timezone="UTC", id=4242)
    with pytest.raises(Conflict):
        store.import_instances(
            [instance(p.id, id=2), instance(p.id, id=1, name="new"), instance(p.id, id=3)],
            [new_project],
            replace=False,
            now_ms=NOW,
        )
    assert snapshot(store) == before
    with pytest.raises(ProjectNotFound):
        with store.read() as tx:
            tx.projects.get(4242)
    assert listed(store, query(p.id, tags=("k:v",))) == (1, [1])
    assert listed(store, query(p.id, name="new")) == (0, [])


def test_import_failing_halfway_changes_nothing(store: Store) -> None:
    p = project(store)
    put(store, [instance(p.id, id=1)])
    before = snapshot(store)
    many = [instance(p.id, id=100 + n) for n in range(20)]
    with pytest.raises(Exception):  # noqa: B017 - the store leaves validation to its callers
        store.import_instances([*many, many[3]], [], replace=False, now_ms=NOW)
    with pytest.raises(Exception):  # noqa: B017 - an instance of a workspace that is not there
        store.import_instances([*many, instance(31_337, id=99)], [], replace=False, now_ms=NOW)
    assert snapshot(store) == before
    with pytest.raises(InstanceNotFound):
        got(store, 100)


def test_import_with_replace_replaces(store: Store) -> None:
    p = project(store)
    old = instance(p.id, id=1, name="old", status=Status.RUNNING, tags=tags("k:old", "x:1"))
    keep = instance(p.id, id=2)
    put(store, [old, keep])
    new = replace(
        old,
        name="new",
        status=Status.SUCCESS,
        env_type=EnvType.DEV,
        biz_day=DAY + timedelta(days=1),
        tags=tags("k:new"),
    )
    progress: list[int] = []
    store.import_instances(
        [new, instance(p.id, id=3)], [], replace=True, now_ms=NOW, on_progress=progress.append
    )
    assert sum(progress) == 2
    assert got(store, 1)[1] == new
    assert got(store, 2)[1] == keep
    assert listed(store, query(p.id)) == (2, [3, 2])  # 1 moved out of its old partition
    assert listed(store, query(p.id, tags=("k:old",))) == (0, [])
    assert listed(store, query(p.id, tags=("x",))) == (0, [])
    moved = query(p.id, SHANGHAI_DAY_MS + 86_400_000, env_type=EnvType.DEV, tags=("k:new",))
    assert listed(store, moved) == (1, [1])


def test_import_creates_workspaces_with_their_ids(store: Store) -> None:
    items = [instance(777, id=1), instance(778, id=2)]
    store.import_instances(
        items,
        [NewProject(name="imp_a", timezone="UTC", id=777), NewProject("imp_b", "UTC", id=778)],
        replace=False,
        now_ms=NOW,
    )
    with store.read() as tx:
        assert [(p.id, p.name, p.timezone) for p in tx.projects.all()] == [
            (777, "imp_a", "UTC"),
            (778, "imp_b", "UTC"),
        ]
    fresh = project(store)
    assert fresh.id not in (777, 778)
    assert got(store, 2) == ("UTC", items[1])


def test_import_batches_write_everything_in_one_transaction(store: Store) -> None:
    p = project(store)
    put(store, [instance(p.id, id=1)])
    before = snapshot(store)
    first = ImportBatch([instance(900, id=10)], [NewProject("batch_ws", "UTC", id=900)])

    def failing() -> Iterator[ImportBatch]:
        yield first
        yield ImportBatch([instance(p.id, id=11)])
        raise RuntimeError("the input broke off")

    with pytest.raises(RuntimeError):
        store.import_batches(failing(), replace=False, now_ms=NOW)
    assert snapshot(store) == before
    with pytest.raises(InstancesExist) as raised:
        store.import_batches(
            [first, ImportBatch([instance(p.id, id=12), instance(p.id, id=1)])],
            replace=False,
            now_ms=NOW,
        )
    assert raised.value.ids == [1]
    assert snapshot(store) == before
    progress: list[int] = []
    second = ImportBatch([instance(p.id, id=12), instance(p.id, id=13)])
    written = store.import_batches(
        iter([first, second]), replace=False, now_ms=NOW, on_progress=progress.append
    )
    assert (written, sum(progress)) == (3, 3)
    with store.read() as tx:
        assert tx.projects.get(900).name == "batch_ws"
    assert listed(store, query(p.id)) == (3, [13, 12, 1])
    assert listed(store, query(900, reference.first_instant(DAY, "UTC"))) == (1, [10])


# Export order


def test_iteration_is_by_day_then_env_then_id(store: Store) -> None:
    p, other = project(store), project(store)
    rng = random.Random(3)
    items = [
        instance(
            p.id,
            id=i,
            biz_day=DAY + timedelta(days=rng.choice([-3, 0, 0, 4])),
            env_type=rng.choice(list(EnvType)),
        )
        for i in rng.sample(range(1, 10_000), 60)
    ]
    put(store, [*items, instance(other.id, id=20_000)])
    order = sorted(items, key=lambda i: (i.biz_day, i.env_type.value, i.id))
    assert every(store, p.id, None, None) == order
    dev = [i for i in order if i.env_type is EnvType.DEV]
    assert every(store, p.id, EnvType.DEV, None) == dev
    day = [i for i in order if i.biz_day == DAY]
    assert every(store, p.id, None, day_key(DAY)) == day
    assert every(store, p.id, EnvType.PROD, day_key(DAY - timedelta(1))) == []
    with pytest.raises(ProjectNotFound):
        every(store, 123_456, None, None)


def test_iteration_crosses_batch_boundaries(store: Store) -> None:
    p = project(store)
    n = 5003  # more than one batch of the store's keyset iteration
    items = [instance(p.id, id=3 * k + 1, tags=()) for k in range(n)]
    random.Random(1).shuffle(items)
    put(store, items)
    ids = [i.id for i in every(store, p.id, EnvType.PROD, day_key(DAY))]
    assert ids == [3 * k + 1 for k in range(n)]


# Workspaces


def test_create_with_explicit_id_then_without(store: Store) -> None:
    first = project(store)
    with store.write() as tx:
        chosen = tx.projects.create(NewProject("explicit_id", "Europe/Berlin", id=5000), NOW)
    assert (chosen.id, chosen.name, chosen.timezone) == (5000, "explicit_id", "Europe/Berlin")
    assert chosen.display_name == "explicit_id"
    assert (chosen.create_time, chosen.modify_time) == (NOW, NOW)
    assert chosen.status is ProjectStatus.AVAILABLE
    later = project(store)
    assert later.id not in (first.id, 5000)
    with store.read() as tx:
        assert tx.projects.get(5000) == chosen
    with pytest.raises(Conflict):
        with store.write() as tx:
            tx.projects.create(NewProject("explicit_id", "UTC"), NOW)
    with pytest.raises(Conflict):
        with store.write() as tx:
            tx.projects.create(NewProject("another_name", "UTC", id=5000), NOW)


def test_explicit_ids_keep_new_ids_ahead_and_never_move_them_back(store: Store) -> None:
    """The first workspace of a fresh database given id 1, then one ahead that is deleted,
    then one behind it: the ids handed out afterwards are taken by none of them."""
    with store.write() as tx:
        tx.projects.create(NewProject("first_explicit", "UTC", id=1), NOW)
    with store.write() as tx:
        assert tx.projects.create(NewProject("after_first", "UTC"), NOW).id == 2
    with store.write() as tx:
        tx.projects.create(NewProject("far_ahead", "UTC", id=6000), NOW)
    with store.write() as tx:
        tx.projects.delete(6000)
    with store.write() as tx:
        tx.projects.create(NewProject("behind", "UTC", id=10), NOW)
    with store.write() as tx:
        assert tx.projects.create(NewProject("after_all", "UTC"), NOW).id > 6000


def test_update_changes_only_what_is_given(store: Store) -> None:
    with store.write() as tx:
        created = tx.projects.create(
            NewProject("upd", "Asia/Shanghai", display_name="D", description="d", owner="o"), NOW
        )
        changed = tx.projects.update(
            created.id, ProjectChanges(description="new", dev_environment_enabled=False), NOW + 5
        )
    assert changed == replace(
        created, description="new", dev_environment_enabled=False, modify_time=NOW + 5
    )
    with store.write() as tx:
        again = tx.projects.update(
            created.id,
            ProjectChanges(display_name="E", status=ProjectStatus.FORBIDDEN, timezone="UTC"),
            NOW + 9,
        )
    assert again == replace(
        changed,
        display_name="E",
        status=ProjectStatus.FORBIDDEN,
        timezone="UTC",
        modify_time=NOW + 9,
    )
    with store.read() as tx:
        assert tx.projects.get(created.id) == again
    with pytest.raises(ProjectNotFound):
        with store.write() as tx:
            tx.projects.update(created.id + 1000, ProjectChanges(description="x"), NOW)


def test_list_projects_by_ids_names_status_and_page(store: Store) -> None:
    made = [project(store, name=f"lp_{n}") for n in range(5)]
    with store.write() as tx:
        tx.projects.update(made[1].id, ProjectChanges(status=ProjectStatus.FORBIDDEN), NOW)
        total, found = tx.projects.page(ids=[made[0].id, made[1].id, made[4].id])
    assert (total, [p.id for p in found]) == (3, [made[0].id, made[1].id, made[4].id])
    with store.read() as tx:
        total, found = tx.projects.page(names=["lp_2", "lp_3", "nope"])
    assert (total, [p.name for p in found]) == (2, ["lp_2", "lp_3"])
    with store.read() as tx:
        total, found = tx.projects.page(status=ProjectStatus.FORBIDDEN)
    assert (total, [p.id for p in found]) == (1, [made[1].id])
    with store.read() as tx:
        total, found = tx.projects.page(offset=1, limit=2)
    assert (total, [p.id for p in found]) == (5, [made[1].id, made[2].id])


def test_delete_refuses_a_workspace_with_instances_until_disabled(store: Store) -> None:
    p, other = project(store), project(store)
    put(store, [instance(p.id, id=1, tags=tags("k:v")), instance(other.id, id=2)])
    with pytest.raises(ProjectNotEmpty):
        with store.write() as tx:
            tx.projects.delete(p.id)
    assert got(store, 1)[1].project_id == p.id
    with store.write() as tx:
        tx.projects.update(p.id, ProjectChanges(status=ProjectStatus.FORBIDDEN), NOW)
        tx.projects.delete(p.id)
    with pytest.raises(ProjectNotFound):
        with store.read() as tx:
            tx.projects.get(p.id)
    with pytest.raises(InstanceNotFound):
        got(store, 1)
    assert got(store, 2)[1].project_id == other.id
    # Nothing of the deleted workspace remains: its instance id and tag can be used again.
    again = instance(other.id, id=1, tags=tags("k:v"))
    put(store, [again])
    assert listed(store, query(other.id, tags=("k",), sort="Id")) == (1, [1])


def test_a_deleted_workspaces_id_is_not_given_to_a_new_one(store: Store) -> None:
    """Workspace ids name workspaces in every request: a client still holding the id of a
    deleted workspace must not silently reach a different one (and both backends agree)."""
    first, last = project(store), project(store)
    with store.write() as tx:
        tx.projects.delete(last.id)
    fresh = project(store)
    assert fresh.id not in (first.id, last.id)


def test_delete_an_empty_workspace_and_a_missing_one(store: Store) -> None:
    p = project(store)
    with store.write() as tx:
        tx.projects.delete(p.id)
        assert all(q.id != p.id for q in tx.projects.all())
    with pytest.raises(ProjectNotFound):
        with store.write() as tx:
            tx.projects.delete(p.id)


# Replay nonces


def test_nonce_is_accepted_once_per_key(store: Store) -> None:
    assert store.remember_nonce("AK1", "n-1", NOW + 900_000, NOW) is True
    assert store.remember_nonce("AK1", "n-1", NOW + 900_000, NOW + 1) is False
    assert store.remember_nonce("AK2", "n-1", NOW + 900_000, NOW + 2) is True
    assert store.remember_nonce("AK1", "n-2", NOW + 900_000, NOW + 3) is True
    assert store.remember_nonce("AK2", "n-1", NOW + 900_000, NOW + 4) is False


def test_nonces_are_shared_by_stores_on_one_database(store: Store, db_url: str) -> None:
    with Store.open(db_url) as second:
        assert store.remember_nonce("AK", "shared", NOW + 900_000, NOW) is True
        assert second.remember_nonce("AK", "shared", NOW + 900_000, NOW + 1) is False
        assert second.remember_nonce("AK", "other", NOW + 900_000, NOW + 1) is True
        assert store.remember_nonce("AK", "other", NOW + 900_000, NOW + 2) is False


def test_concurrent_replays_let_exactly_one_through(store: Store, db_url: str) -> None:
    with Store.open(db_url) as second:
        barrier = threading.Barrier(8)
        results: list[bool] = []

        def attempt(s: Store) -> None:
            barrier.wait()
            results.append(s.remember_nonce("AK", "race", NOW + 900_000, NOW))

        threads = [threading.Thread(target=attempt, args=(s,)) for s in [store, second] * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert sorted(results) == [False] * 7 + [True]


def test_expired_nonces_are_swept(store: Store) -> None:
    assert store.remember_nonce("AK", "a", NOW + 1_000, NOW) is True
    assert store.remember_nonce("AK", "b", NOW + 1_000, NOW) is True
    later = NOW + 10 * 60_000  # past the expiry and the store's sweep interval
    assert store.remember_nonce("AK", "c", later + 900_000, later) is True
    with store.read() as tx:
        left = tx.conn.execute(sa.select(request_nonces.c.nonce).order_by("nonce")).scalars().all()
    assert left == ["c"]
    assert store.remember_nonce("AK", "a", later + 900_000, later + 1) is True


def test_an_expired_nonce_is_accepted_again_before_any_sweep(store: Store) -> None:
    """A nonce is refused only within its window; after `expires_at` it is new again."""
    assert store.remember_nonce("AK", "n", NOW + 1_000, NOW) is True
    assert store.remember_nonce("AK", "n", NOW + 901_000, NOW + 1_001) is True
    assert store.remember_nonce("AK", "n", NOW + 901_000, NOW + 1_002) is False


def test_tag_union_counted_and_paged_near_the_start_and_deep(store: Store) -> None:
    """Exact tags are counted in SQL and early pages cut from each tag's top; deep pages and
    key-only tags unite the whole ranges. Both agree with the reference on every page."""
    p = project(store)
    items = [
        instance(
            p.id,
            id=50_000 + n,
            tags=tags(f"a:{n % 3}", f"b:{n % 5}", f"b:{n % 2}", "c:x" if n % 11 == 0 else "c:y"),
        )
        for n in range(2_600)
    ]
    put(store, items)
    tzs = {p.id: "Asia/Shanghai"}
    for tag_texts in (["a:1", "b:2"], ["b:1", "b:0", "a:0"], ["c:x", "c:x"], ["b", "c:x"]):
        for number, sort in (
            (1, ""),
            (20, "Id Desc"),
            (21, "Id Desc"),
            (26, "Id Asc"),
            (3, "Id Asc"),
        ):
            q = query(p.id, tags=tag_texts, sort=sort, page_number=number, page_size=100)
            ref = reference.Query(
                project_id=p.id,
                biz_date=SHANGHAI_DAY_MS,
                tags=tuple(tag_texts),
                sort_by=sort or None,
                page_number=number,
                page_size=100,
            )
            assert listed(store, q) == expected(items, tzs, ref), (tag_texts, number, sort)
