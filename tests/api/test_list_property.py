"""ListWorkflowInstances over real HTTP with the official SDK, against the brute-force reference.

Two data sets: one built once per backend by a seeded generator (several workspaces, zones
with and without daylight saving, several BizDates, both environments, every type and
status), queried with hypothesis-drawn requests; and small data sets that hypothesis draws
itself, one fresh workspace per example. Each answer must equal `tests.reference`: the ids in
order, TotalCount, the echoed paging and the canonical BizDate of every item.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models as sdk_models
from hypothesis import HealthCheck, Phase, event, given, settings, strategies as st

from dwsched.domain.models import EnvType, InstanceType, Status, Tag, WorkflowInstance
from tests import reference
from tests.support.factories import project, put
from tests.support.server import LiveServer

ZONE_DAYS: dict[str, list[date]] = {
    "Asia/Shanghai": [date(2025, 3, 30), date(2025, 3, 31), date(2025, 4, 1)],
    "Asia/Kolkata": [date(2025, 3, 30), date(2025, 3, 31)],
    # Spring forward at 02:00 on 2024-03-10, fall back on 2024-11-03.
    "America/New_York": [date(2024, 3, 9), date(2024, 3, 10), date(2024, 11, 3)],
    # Midnight skipped on 2024-09-08; 23:00-24:00 repeated on 2024-04-06.
    "America/Santiago": [date(2024, 9, 7), date(2024, 9, 8), date(2024, 4, 6)],
    # Midnight skipped on 2024-03-31; 23:00-24:00 repeated on 2024-10-26.
    "Asia/Beirut": [date(2024, 3, 30), date(2024, 3, 31), date(2024, 10, 26)],
}
NAME_PARTS = [
    "ods_Orders",
    "DWD_user_100%",
    "Straße",
    "STRASSE",
    "ΣΊΣΥΦΟΣ",
    "σίσυφος",
    "数据_日报",
    "a_b",
    "A%B",
    "ﬁnance",
    "İstanbul",
    "path/to\\x",
    "MiXeD cAsE",
    "_%_",
    "Ünïcødé",
    "Maß_\ufb01x",
]
# Texts whose folding differs from lower() (ß/SS, sigma, the fi ligature, dotted I) or that
# LIKE would read as patterns or escapes.
NAME_LITERALS = ["ss", "SS", "ß", "STRASSE", "FI", "fi", "\ufb01", "\u03c3", "\u03a3", "i\u0307"]
NAME_LITERALS += ["%", "_", "/", "\\", "zz"]
OWNERS = ["1000", "1001", "owner_x", "Owner_X", "204%"]
TAG_KEYS = ["team", "Team", "layer", "é", "k:"]
TAG_VALUES = ["", "a", "A", "a:b", "ODS", "数据"]
SORT_SPECS = [
    None,
    "Id Desc",
    "Id",
    "TriggerTime Asc",
    "triggertime desc",
    "StartedTime",
    "STARTEDTIME DESC",
    "FinishedTime Asc",
    "finishedTime Desc",
    "CreateTime desc",
    "CreateTime",
    "StartedTime Desc, FinishedTime Asc",
    "FinishedTime, StartedTime Desc",
    "CreateTime Desc,TriggerTime Asc",
    "TriggerTime, CreateTime Desc, Id Asc",
    "CreateTime, StartedTime",
    "StartedTime Asc, Id Desc",
]
STATUSES = [s.value for s in Status]
TYPES = [t.value for t in InstanceType]


def sdk_request(q: reference.Query) -> sdk_models.ListWorkflowInstancesRequest:
    """`q` as the official SDK's request."""
    return sdk_models.ListWorkflowInstancesRequest(
        project_id=q.project_id,
        biz_date=q.biz_date,
        env_type=q.env_type,
        type=q.type,
        name=q.name,
        owner=q.owner,
        workflow_id=q.workflow_id,
        unified_workflow_instance_id=q.unified_workflow_instance_id,
        ids=list(q.ids) if q.ids is not None else None,
        tags=list(q.tags) if q.tags is not None else None,
        filter=q.filter_json(),
        sort_by=q.sort_by,
        page_number=q.page_number,
        page_size=q.page_size,
    )


def key_instants(day: date, tz: str) -> list[int]:
    """Instants around the edges of `day` and inside it (both folds of a repeated hour)."""
    start = reference.first_instant(day, tz)
    end = reference.first_instant(day + timedelta(days=1), tz)
    hour = 3_600_000
    inside = [start, start + 1, end - 1, (start + end) // 2, end - hour - 1, end - hour]
    return [start - 1, end, *inside]


@dataclass
class DataSet:
    instances: list[WorkflowInstance]
    timezones: dict[int, str]
    days: dict[int, list[date]]  # per project: its BizDates (with data)


def tag_specs() -> list[str]:
    specs = {k for k in TAG_KEYS} | {f"{k}:" for k in TAG_KEYS}
    specs |= {f"{k}:{v}" for k in TAG_KEYS for v in TAG_VALUES}
    return sorted(specs | {"absent", "absent:a"})


def generate(
    rng: random.Random, project_id: int, tz: str, days: list[date], ids: Iterator[int]
) -> list[WorkflowInstance]:
    """Instances of one workspace: every env, type and status; many equal sort values."""
    out: list[WorkflowInstance] = []
    create_times = [rng.randrange(1_700_000_000_000, 1_800_000_000_000) for _ in range(3)]
    for day in days:
        triggers = [t for d in (day, day + timedelta(days=1)) for t in key_instants(d, tz)]
        for env in EnvType:
            for _ in range(rng.randrange(8, 16)):
                trigger = rng.choice(triggers)
                started = rng.choice([None, None, trigger, trigger + 1000, trigger + 60_000])
                if started is None:  # an instance that has not started has not finished
                    finished = None
                else:
                    finished = rng.choice([None, started, started + 1000, started + 7_000])
                name = rng.choice(NAME_PARTS)
                if rng.random() < 0.6:
                    name += rng.choice(["_", "%", " ", ""]) + rng.choice(NAME_PARTS)
                out.append(
                    WorkflowInstance(
                        id=next(ids),
                        project_id=project_id,
                        env_type=env,
                        biz_day=day,
                        type=rng.choice(list(InstanceType)),
                        status=rng.choice(list(Status)),
                        workflow_id=rng.choice([11, 12, 13, 14]),
                        workflow_task_instance_id=rng.randrange(1, 10**12),
                        unified_workflow_instance_id=rng.choice([501, 502, 503, 504, 505]),
                        name=name,
                        owner=rng.choice(OWNERS),
                        create_user="1000",
                        modify_user="1000",
                        trigger_time=trigger,
                        started_time=started,
                        finished_time=finished,
                        create_time=rng.choice(create_times),
                        modify_time=rng.choice(create_times) + 1,
                        workflow_parameters="",
                        tags=tuple(
                            Tag(rng.choice(TAG_KEYS), rng.choice(TAG_VALUES))
                            for _ in range(rng.choice([0, 0, 1, 1, 2, 3]))
                        ),
                    )
                )
    return out


@pytest.fixture(scope="module")
def dataset(live: LiveServer) -> DataSet:
    rng = random.Random(20240518)
    id_pool = rng.sample(range(1_000_000, 1_100_000), 2000)  # ids not in insertion order
    ids = iter(id_pool)
    instances: list[WorkflowInstance] = []
    timezones: dict[int, str] = {}
    days: dict[int, list[date]] = {}
    for tz, zone_days in ZONE_DAYS.items():
        p = project(live.store, tz=tz)
        timezones[p.id] = tz
        days[p.id] = zone_days
        instances += generate(rng, p.id, tz, zone_days, ids)
    put(live.store, instances)
    return DataSet(
        instances=instances,
        timezones=timezones,
        days=days,
    )


# Drawing requests


def maybe(data: st.DataObject, strategy: st.SearchStrategy[Any], one_in: int = 4) -> Any:
    """A value from `strategy` one time in `one_in`, otherwise None (parameter not sent)."""
    if data.draw(st.integers(0, one_in - 1)) != 0:
        return None
    return data.draw(strategy)


def name_fragment(names: list[str]) -> st.SearchStrategy[str]:
    cases = st.sampled_from([str, str.upper, str.lower, str.swapcase, str.casefold])

    @st.composite
    def fragment(draw: st.DrawFn) -> str:
        name = draw(st.sampled_from(names))
        i = draw(st.integers(0, len(name) - 1))
        j = draw(st.integers(i + 1, len(name)))
        return draw(cases)(name[i:j])

    literal = st.sampled_from(NAME_LITERALS)
    return st.one_of(fragment(), literal) if names else literal


def sort_spec() -> st.SearchStrategy[str]:
    @st.composite
    def spec(draw: st.DrawFn) -> str:
        fields = draw(
            st.lists(st.sampled_from(reference.SORT_FIELDS), min_size=1, max_size=3, unique=True)
        )
        parts = []
        for f in fields:
            f = draw(st.sampled_from([f, f.lower(), f.upper()]))
            direction = draw(st.sampled_from(["", " Asc", " Desc", " asc", " DESC", "  desc"]))
            parts.append(f + direction)
        return draw(st.sampled_from([",", ", ", " , "])).join(parts)

    return st.one_of(st.sampled_from([s for s in SORT_SPECS if s]), spec())


def biz_date_of(data: st.DataObject, day: date, tz: str) -> int:
    start = reference.first_instant(day, tz)
    length = reference.day_length_ms(day, tz)
    offset = data.draw(st.sampled_from([0, length - 1, None]))
    return start + (data.draw(st.integers(0, length - 1)) if offset is None else offset)


def tag_specs_of(instances: list[WorkflowInstance]) -> list[str]:
    tags = {t for i in instances for t in i.tags}
    return sorted({f"{t.key}:{t.value}" for t in tags} | {t.key for t in tags})


FILTERS = ["type", "name", "owner", "workflow", "unified", "ids", "tags", "status", "execution"]
FILTERS += ["name", "tags", "execution"]  # the subtle ones, twice as often


def draw_query(
    data: st.DataObject, project_id: int, tz: str, days: list[date], instances: list[Any]
) -> reference.Query:
    """A valid request for the workspace: up to three filters, with values mostly taken from
    the partition asked for, so that answers are often not empty."""
    day = data.draw(st.sampled_from([*days, days[0] - timedelta(days=5)]))
    env = data.draw(st.sampled_from([None, None, "Prod", "Dev"]))
    mine = [i for i in instances if i.project_id == project_id]
    members = [i for i in mine if i.biz_day == day and i.env_type.value == (env or "Prod")]
    chosen = set(data.draw(st.lists(st.sampled_from(FILTERS), max_size=3, unique=True)))
    q: dict[str, Any] = {}
    if "type" in chosen:
        q["type"] = data.draw(st.sampled_from(TYPES))
    if "name" in chosen:
        q["name"] = data.draw(name_fragment(sorted({i.name for i in members if i.name})))
    if "owner" in chosen:
        q["owner"] = data.draw(st.sampled_from([*OWNERS, "nobody"]))
    if "workflow" in chosen:
        q["workflow_id"] = data.draw(st.sampled_from(sorted({i.workflow_id for i in mine} | {99})))
    if "unified" in chosen:
        unified = sorted({i.unified_workflow_instance_id for i in mine} | {999})
        q["unified_workflow_instance_id"] = data.draw(st.sampled_from(unified))
    if "ids" in chosen:
        ids = st.sampled_from([i.id for i in members] or [1])
        other = st.sampled_from([i.id for i in mine] or [1]) | st.integers(1, 2**40)
        q["ids"] = tuple(data.draw(st.lists(ids | ids | other, min_size=1, max_size=30)))
    if "tags" in chosen:
        specs = st.sampled_from(tag_specs_of(members) or tag_specs())
        pool = specs | specs | st.sampled_from(tag_specs())
        q["tags"] = tuple(data.draw(st.lists(pool, min_size=1, max_size=4)))
    if "status" in chosen:
        many = st.lists(st.sampled_from(STATUSES), min_size=1, max_size=3, unique=True)
        q["status"] = data.draw(st.sampled_from(STATUSES) | many.map(tuple))
    if "execution" in chosen:
        trigger_days = sorted({reference.local_day(i.trigger_time, tz) for i in members}) or days
        execution_day = data.draw(st.sampled_from(trigger_days))
        length = reference.day_length_ms(execution_day, tz)
        offset = data.draw(st.sampled_from([0, 1, length // 2, length - 1]))
        execution = reference.first_instant(execution_day, tz) + offset
        q["execution_date"] = str(execution) if data.draw(st.booleans()) else execution
    return reference.Query(
        project_id=project_id,
        biz_date=biz_date_of(data, day, tz),
        env_type=env,
        send_empty_filter=data.draw(st.booleans()),
        sort_by=maybe(data, sort_spec(), 2),
        page_number=maybe(data, st.integers(1, 4), 3),
        page_size=maybe(data, st.sampled_from([1, 2, 3, 5, 7, 500]), 2),
        **q,
    )


def check(live: LiveServer, instances: list[WorkflowInstance], tzs: dict[int, str], q: Any) -> int:
    """Send `q` with the SDK; assert the answer equals the reference. Returns the page size."""
    expected = reference.list_instances(instances, tzs, q)
    try:
        body = live.sdk().list_workflow_instances(sdk_request(q)).body
    except Exception as exc:  # the SDK's error alone would not show the request
        raise AssertionError(f"{q} failed: {exc}") from exc
    paging = body.paging_info
    got = [i.id for i in paging.workflow_instances]
    assert (paging.total_count, got) == (expected.total, expected.ids), q
    assert (paging.page_number, paging.page_size) == (expected.page_number, expected.page_size)
    assert all(i.biz_date == expected.biz_date for i in paging.workflow_instances), q
    assert all(i.project_id == q.project_id for i in paging.workflow_instances)
    return len(got)


# Deterministic; no shrinking (every example is an HTTP round trip, and the failure message
# names the whole request anyway).
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(data=st.data())
def test_random_queries_match_reference(live: LiveServer, dataset: DataSet, data: Any) -> None:
    project_id = data.draw(st.sampled_from(sorted(dataset.timezones)))
    tz = dataset.timezones[project_id]
    q = draw_query(data, project_id, tz, dataset.days[project_id], dataset.instances)
    n = check(live, dataset.instances, dataset.timezones, q)
    event(f"page not empty: {n > 0}")


def test_every_partition_and_sort_matches_reference(live: LiveServer, dataset: DataSet) -> None:
    """No filter: every (workspace, BizDate, env) partition in every order, one page each."""
    nonempty = 0
    for project_id, tz in sorted(dataset.timezones.items()):
        for day, env, sort_by in itertools.product(
            dataset.days[project_id], ["Prod", "Dev"], SORT_SPECS
        ):
            biz_date = reference.first_instant(day, tz) + 3_600_000
            q = reference.Query(project_id, biz_date, env_type=env, sort_by=sort_by, page_size=500)
            nonempty += check(live, dataset.instances, dataset.timezones, q) > 0
    assert nonempty == sum(len(d) for d in dataset.days.values()) * 2 * len(SORT_SPECS)


@pytest.mark.parametrize("sort_by", ["StartedTime Desc", "FinishedTime", "CreateTime, Id"])
def test_walking_pages_covers_the_partition_once(
    live: LiveServer, dataset: DataSet, sort_by: str
) -> None:
    """Pages of 4, read in turn, give the reference order exactly; the page past it is empty."""
    project_id, tz = next(
        (p, tz) for p, tz in dataset.timezones.items() if tz == "America/Santiago"
    )
    day = dataset.days[project_id][1]
    biz_date = reference.first_instant(day, tz)
    full = reference.list_instances(
        dataset.instances,
        dataset.timezones,
        reference.Query(project_id, biz_date, sort_by=sort_by, page_size=500),
    )
    seen: list[int] = []
    for number in itertools.count(1):
        q = reference.Query(project_id, biz_date, sort_by=sort_by, page_number=number, page_size=4)
        if check(live, dataset.instances, dataset.timezones, q) == 0:
            break
        seen += reference.list_instances(dataset.instances, dataset.timezones, q).ids
    assert seen == full.ids and len(full.ids) > 8


# Data sets drawn by hypothesis

_fresh_ids = itertools.count(50_000_000, 1000)


@st.composite
def small_dataset(draw: st.DrawFn) -> tuple[str, list[date], list[dict[str, Any]]]:
    tz = draw(st.sampled_from(sorted(ZONE_DAYS)))
    days = ZONE_DAYS[tz][:2]
    times = [t for d in days for t in key_instants(d + timedelta(days=1), tz)]
    nullable = st.none() | st.sampled_from([10, 20, 20, 30])
    text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)
    row = st.fixed_dictionaries(
        {
            "day": st.sampled_from(days),
            "env": st.sampled_from(list(EnvType)),
            "type": st.sampled_from(list(InstanceType)),
            "status": st.sampled_from(list(Status)),
            "name": st.sampled_from(NAME_PARTS) | text,
            "owner": st.sampled_from(OWNERS[:3]),
            "workflow_id": st.sampled_from([1, 2]),
            "unified": st.sampled_from([7, 8]),
            "trigger": st.sampled_from(times),
            "started": nullable,
            "finished": nullable,
            "create": st.sampled_from([1, 2]),
            "tags": st.lists(
                st.tuples(st.sampled_from(TAG_KEYS[:3]), st.sampled_from(TAG_VALUES[:4])),
                max_size=2,
            ),
        }
    )
    rows = draw(st.lists(row, min_size=0, max_size=14))
    # Local ids in a random order, so that the id order differs from the insertion order.
    local_ids = draw(st.permutations(range(1, len(rows) + 1)))
    for r, n in zip(rows, local_ids, strict=True):
        r["id"] = n
    return tz, days, rows


def build(project_id: int, base: int, rows: list[dict[str, Any]]) -> list[WorkflowInstance]:
    base_time = 1_750_000_000_000
    return [
        WorkflowInstance(
            id=base + r["id"],
            project_id=project_id,
            env_type=r["env"],
            biz_day=r["day"],
            type=r["type"],
            status=r["status"],
            workflow_id=r["workflow_id"],
            workflow_task_instance_id=base + r["id"],
            unified_workflow_instance_id=r["unified"],
            name=r["name"],
            owner=r["owner"],
            create_user="1",
            modify_user="1",
            trigger_time=r["trigger"],
            started_time=None if r["started"] is None else base_time + r["started"],
            finished_time=(
                None if r["finished"] is None or r["started"] is None else base_time + r["finished"]
            ),
            create_time=base_time + r["create"],
            modify_time=base_time,
            tags=tuple(Tag(k, v) for k, v in r["tags"]),
        )
        for r in rows
    ]


@settings(SETTINGS, max_examples=50)
@given(drawn=small_dataset(), data=st.data())
def test_drawn_data_sets_match_reference(live: LiveServer, drawn: Any, data: Any) -> None:
    tz, days, rows = drawn
    p = project(live.store, tz=tz)
    base = next(_fresh_ids)
    instances = build(p.id, base, rows)
    put(live.store, instances)
    for _ in range(3):
        q = draw_query(data, p.id, tz, days, instances)
        n = check(live, instances, {p.id: tz}, q)
        event(f"page not empty: {n > 0}")
