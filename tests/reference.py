"""A brute-force reference for ListWorkflowInstances (DESIGN.md §3), for tests only.

It works on a plain list of `WorkflowInstance` and the workspaces' time zones, and uses none
of dwsched's query or calendar code: days come from `zoneinfo` here, filters are Python
predicates, the order is one comparison function, pages are list slices. Tests compare what
dwsched answers (through the store or the SDK over HTTP) with what this module computes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dwsched.domain.models import WorkflowInstance

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS_PER_DAY = 86_400_000
SORT_FIELDS = ("TriggerTime", "StartedTime", "FinishedTime", "CreateTime", "Id")
_ATTRIBUTE = {
    "triggertime": "trigger_time",
    "startedtime": "started_time",
    "finishedtime": "finished_time",
    "createtime": "create_time",
    "id": "id",
}


# Calendar, from zoneinfo and integer arithmetic only


def local_day(instant_ms: int, tz: str) -> date:
    """The calendar day in `tz` containing the instant."""
    return (EPOCH + timedelta(milliseconds=instant_ms)).astimezone(ZoneInfo(tz)).date()


def first_instant(day: date, tz: str) -> int:
    """The smallest epoch ms whose local day in `tz` is `day` (or later, if `day` is skipped).

    A binary search over milliseconds on "local day >= day", which is monotone for the zones
    the tests use; it never assumes that local midnight exists.
    """
    utc_midnight = int((datetime(day.year, day.month, day.day, tzinfo=UTC) - EPOCH).total_seconds())
    lo = utc_midnight * 1000 - 2 * MS_PER_DAY  # local day certainly earlier
    hi = utc_midnight * 1000 + 2 * MS_PER_DAY  # local day certainly not earlier
    assert local_day(lo, tz) < day <= local_day(hi, tz)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if local_day(mid, tz) >= day:
            hi = mid
        else:
            lo = mid
    return hi


def day_length_ms(day: date, tz: str) -> int:
    return first_instant(day + timedelta(days=1), tz) - first_instant(day, tz)


# The query, in the request's own terms


@dataclass(frozen=True)
class Query:
    """One ListWorkflowInstances request; None means the parameter is not sent."""

    project_id: int
    biz_date: int
    env_type: str | None = None
    type: str | None = None
    name: str | None = None
    owner: str | None = None
    workflow_id: int | None = None
    unified_workflow_instance_id: int | None = None
    ids: tuple[int, ...] | None = None
    tags: tuple[str, ...] | None = None
    status: str | tuple[str, ...] | None = None  # Filter.status: one status or a list
    execution_date: int | str | None = None  # Filter.executionDate: number or text
    send_empty_filter: bool = False  # send Filter={} when neither key is set
    sort_by: str | None = None
    page_number: int | None = None
    page_size: int | None = None

    def filter_json(self) -> str | None:
        value: dict[str, Any] = {}
        if self.status is not None:
            value["status"] = list(self.status) if isinstance(self.status, tuple) else self.status
        if self.execution_date is not None:
            value["executionDate"] = self.execution_date
        if not value and not self.send_empty_filter:
            return None
        return json.dumps(value, ensure_ascii=False)


# Filtering


def tag_matches(spec: str, instance: WorkflowInstance) -> bool:
    """`k:v` that exact tag (split at the first colon), `k:` an empty value, `k` any value."""
    if ":" in spec:
        key, value = spec.split(":", 1)
        return any(t.key == key and t.value == value for t in instance.tags)
    return any(t.key == spec for t in instance.tags)


def selected(instance: WorkflowInstance, q: Query, tz: str) -> bool:
    if instance.project_id != q.project_id:
        return False
    if instance.env_type.value != (q.env_type or "Prod"):
        return False
    if instance.biz_day != local_day(q.biz_date, tz):
        return False
    if q.type is not None and instance.type.value != q.type:
        return False
    if q.name and q.name.casefold() not in instance.name.casefold():
        return False
    if q.owner and instance.owner != q.owner:
        return False
    if q.workflow_id is not None and instance.workflow_id != q.workflow_id:
        return False
    if (
        q.unified_workflow_instance_id is not None
        and instance.unified_workflow_instance_id != q.unified_workflow_instance_id
    ):
        return False
    if q.ids and instance.id not in q.ids:
        return False
    if q.tags and not any(tag_matches(spec, instance) for spec in q.tags):
        return False
    if q.status is not None:
        wanted = (q.status,) if isinstance(q.status, str) else q.status
        if wanted and instance.status.value not in wanted:
            return False
    if q.execution_date is not None:
        day = local_day(int(q.execution_date), tz)
        if local_day(instance.trigger_time, tz) != day:
            return False
    return True


# Ordering


def sort_keys(sort_by: str | None) -> list[tuple[str, bool]]:
    """[(attribute, descending)]; the default is Id Desc."""
    if sort_by is None or not sort_by.strip():
        return [("id", True)]
    keys = []
    for part in sort_by.split(","):
        words = part.split()
        attribute = _ATTRIBUTE[words[0].lower()]
        descending = len(words) == 2 and words[1].lower() == "desc"
        keys.append((attribute, descending))
    return keys


def _compare(keys: Sequence[tuple[str, bool]], a: WorkflowInstance, b: WorkflowInstance) -> int:
    for attribute, descending in keys:
        x, y = getattr(a, attribute), getattr(b, attribute)
        if x is None and y is None:
            continue
        if x is None:  # no value: last, whatever the direction
            return 1
        if y is None:
            return -1
        if x != y:
            smaller = -1 if x < y else 1
            return -smaller if descending else smaller
    first_descending = keys[0][1]
    if a.id == b.id:
        return 0
    smaller = -1 if a.id < b.id else 1
    return -smaller if first_descending else smaller


def ordered(items: Iterable[WorkflowInstance], sort_by: str | None) -> list[WorkflowInstance]:
    keys = sort_keys(sort_by)
    return sorted(items, key=functools.cmp_to_key(functools.partial(_compare, keys)))


# The answer


@dataclass(frozen=True)
class Answer:
    total: int
    ids: list[int]
    biz_date: int  # the canonical BizDate every returned item carries
    page_number: int
    page_size: int


def list_instances(
    instances: Iterable[WorkflowInstance], timezones: dict[int, str], q: Query
) -> Answer:
    """What ListWorkflowInstances must answer for `q` over `instances`."""
    tz = timezones[q.project_id]
    matching = ordered((i for i in instances if selected(i, q, tz)), q.sort_by)
    number = q.page_number or 1
    size = q.page_size or 10
    start = (number - 1) * size
    return Answer(
        total=len(matching),
        ids=[i.id for i in matching[start : start + size]],
        biz_date=first_instant(local_day(q.biz_date, tz), tz),
        page_number=number,
        page_size=size,
    )
