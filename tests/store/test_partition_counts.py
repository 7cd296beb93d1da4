"""The unfiltered TotalCount comes from a per-partition counter: it must follow every write."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from dwsched.domain.models import EnvType
from dwsched.domain.queries import InstanceQuery, parse_sort
from dwsched.store import Store
from tests.support.factories import DAY, SHANGHAI_DAY_MS, instance, project, put

NEXT_DAY_MS = SHANGHAI_DAY_MS + 86_400_000


def totals(store: Store, project_id: int, day_ms: int) -> tuple[int, int]:
    """(counter-based total, total counted by a scan through a filter that matches all)."""
    plain = InstanceQuery(project_id=project_id, env_type=EnvType.PROD, biz_date_ms=day_ms)
    scanned = replace(plain, sort=parse_sort("StartedTime Desc"), owner="1000")
    return store.list_instances(plain)[1].total, store.list_instances(scanned)[1].total


def test_counter_follows_imports_replacements_and_moves(store: Store) -> None:
    p = project(store)
    first = [instance(p.id) for _ in range(7)]
    put(store, first)
    assert totals(store, p.id, SHANGHAI_DAY_MS) == (7, 7)
    moved = [replace(i, biz_day=DAY + timedelta(days=1)) for i in first[:3]]
    store.import_instances(moved, [], replace=True, now_ms=0)
    assert totals(store, p.id, SHANGHAI_DAY_MS) == (4, 4)
    assert totals(store, p.id, NEXT_DAY_MS) == (3, 3)
    store.import_instances(first[3:5], [], replace=True, now_ms=0)  # same partition, replaced
    assert totals(store, p.id, SHANGHAI_DAY_MS) == (4, 4)
    put(store, [instance(p.id, env_type=EnvType.DEV)])
    assert totals(store, p.id, SHANGHAI_DAY_MS) == (4, 4)
