"""Workflow instances: the partitioned listing of DESIGN.md §3, lookups, bulk writes.

Listing runs at most four statements, each inside one (project, env, day) slice of an index:
the count, the count of rows with a value for a nullable sort key (to split the order into
"has a value" then "has none"), and the page's ids, then the rows for those ids. The ids are
chosen first so that a deep page skips index entries, not table rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from dwsched.domain.calendar import day_from_key, day_key
from dwsched.domain.models import EnvType, InstanceType, Status, Tag, WorkflowInstance
from dwsched.domain.queries import InstancePage, InstanceQuery, SortField, SortKey
from dwsched.store.schema import instance_tags, workflow_instances as wi

SORT_COLUMNS: dict[SortField, sa.Column[int]] = {
    SortField.ID: wi.c.id,
    SortField.TRIGGER_TIME: wi.c.trigger_time,
    SortField.STARTED_TIME: wi.c.started_time,
    SortField.FINISHED_TIME: wi.c.finished_time,
    SortField.CREATE_TIME: wi.c.create_time,
}
IN_CHUNK = 500


def _conditions(q: InstanceQuery, tz: str) -> list[sa.ColumnElement[bool]]:
    day = day_key(q.biz_day(tz))
    where = [
        wi.c.project_id == q.project_id,
        wi.c.env_type == q.env_type.value,
        wi.c.biz_day == day,
    ]
    if q.type is not None:
        where.append(wi.c.type == q.type.value)
    if q.workflow_id is not None:
        where.append(wi.c.workflow_id == q.workflow_id)
    if q.unified_workflow_instance_id is not None:
        where.append(wi.c.unified_workflow_instance_id == q.unified_workflow_instance_id)
    if q.owner is not None:
        where.append(wi.c.owner == q.owner)
    if q.ids is not None:
        where.append(wi.c.id.in_(q.ids))
    if len(q.statuses) == 1:
        where.append(wi.c.status == q.statuses[0].value)
    elif q.statuses:
        where.append(wi.c.status.in_([s.value for s in q.statuses]))
    window = q.trigger_window(tz)
    if window is not None:
        start, end = window
        where.extend([wi.c.trigger_time >= start, wi.c.trigger_time < end])
    if q.name:
        where.append(wi.c.name_folded.contains(q.name.casefold(), autoescape=True))
    if q.tags:
        t = instance_tags.c
        matches = [
            sa.and_(t.key == m.key, t.value == m.value) if m.value is not None else t.key == m.key
            for m in q.tags
        ]
        where.append(
            wi.c.id.in_(
                sa.select(t.instance_id).where(
                    t.project_id == q.project_id,
                    t.env_type == q.env_type.value,
                    t.biz_day == day,
                    sa.or_(*matches),
                )
            )
        )
    return where


def _count(conn: sa.Connection, where: Sequence[sa.ColumnElement[bool]]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(wi).where(*where)).scalar() or 0)


def _ordered(column: sa.ColumnElement[int], descending: bool) -> sa.UnaryExpression[int]:
    return column.desc() if descending else column.asc()


def _ids(
    conn: sa.Connection,
    where: Sequence[sa.ColumnElement[bool]],
    order: Sequence[sa.ColumnElement[Any]],
    offset: int,
    limit: int,
) -> list[int]:
    stmt = sa.select(wi.c.id).where(*where).order_by(*order).offset(offset).limit(limit)
    return [int(i) for i in conn.execute(stmt).scalars()]


def _page_ids(
    conn: sa.Connection, q: InstanceQuery, where: list[sa.ColumnElement[bool]]
) -> list[int]:
    first = q.sort[0]
    tie = _ordered(wi.c.id, first.descending)
    offset, limit = q.page.offset, q.page.size
    if len(q.sort) > 1:
        return _ids(conn, where, _multi_key_order(q.sort, tie), offset, limit)
    column = SORT_COLUMNS[first.field]
    if not first.field.nullable:
        order = [tie] if first.field is SortField.ID else [_ordered(column, first.descending), tie]
        return _ids(conn, where, order, offset, limit)
    # Rows with a value, in the key's order, then rows without one (nulls last both ways).
    valued = _count(conn, [*where, column.is_not(None)])
    ids: list[int] = []
    if offset < valued:
        ids = _ids(
            conn,
            [*where, column.is_not(None)],
            [_ordered(column, first.descending), tie],
            offset,
            limit,
        )
    if len(ids) < limit:
        ids += _ids(
            conn, [*where, column.is_(None)], [tie], max(0, offset - valued), limit - len(ids)
        )
    return ids


def _multi_key_order(
    keys: Sequence[SortKey], tie: sa.UnaryExpression[int]
) -> list[sa.ColumnElement[Any]]:
    order: list[sa.ColumnElement[Any]] = []
    for key in keys:
        column = SORT_COLUMNS[key.field]
        if key.field.nullable:
            order.append(sa.case((column.is_(None), 1), else_=0).asc())
        order.append(_ordered(column, key.descending))
    if keys[-1].field is not SortField.ID:
        order.append(tie)
    return order


def list_instances(conn: sa.Connection, q: InstanceQuery, tz: str) -> InstancePage:
    """One page of the query's partition; `tz` is the project's zone, which fixes the day."""
    where = _conditions(q, tz)
    total = _count(conn, where)
    if total <= q.page.offset:
        return InstancePage(total, ())
    ids = _page_ids(conn, q, where)
    found = instances_by_ids(conn, ids)
    return InstancePage(total, tuple(found[i] for i in ids if i in found))


def _instance(row: sa.Row[tuple[object, ...]]) -> WorkflowInstance:
    m = row._mapping
    return WorkflowInstance(
        id=m["id"],
        project_id=m["project_id"],
        env_type=EnvType(m["env_type"]),
        biz_day=day_from_key(m["biz_day"]),
        type=InstanceType(m["type"]),
        status=Status(m["status"]),
        workflow_id=m["workflow_id"],
        workflow_task_instance_id=m["workflow_task_instance_id"],
        unified_workflow_instance_id=m["unified_workflow_instance_id"],
        name=m["name"],
        owner=m["owner"],
        create_user=m["create_user"],
        modify_user=m["modify_user"],
        trigger_time=m["trigger_time"],
        started_time=m["started_time"],
        finished_time=m["finished_time"],
        create_time=m["create_time"],
        modify_time=m["modify_time"],
        workflow_parameters=m["workflow_parameters"],
        tags=tuple(Tag(k, v) for k, v in json.loads(m["tags"])),
    )


def instances_by_ids(conn: sa.Connection, ids: Sequence[int]) -> dict[int, WorkflowInstance]:
    found: dict[int, WorkflowInstance] = {}
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        for row in conn.execute(sa.select(wi).where(wi.c.id.in_(chunk))):
            found[row.id] = _instance(row)
    return found


def existing_instance_ids(conn: sa.Connection, ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        found.update(
            int(i) for i in conn.execute(sa.select(wi.c.id).where(wi.c.id.in_(chunk))).scalars()
        )
    return found


def _row(i: WorkflowInstance) -> dict[str, object]:
    return {
        "id": i.id,
        "project_id": i.project_id,
        "env_type": i.env_type.value,
        "biz_day": day_key(i.biz_day),
        "type": i.type.value,
        "status": i.status.value,
        "workflow_id": i.workflow_id,
        "workflow_task_instance_id": i.workflow_task_instance_id,
        "unified_workflow_instance_id": i.unified_workflow_instance_id,
        "name": i.name,
        "name_folded": i.name.casefold(),
        "owner": i.owner,
        "create_user": i.create_user,
        "modify_user": i.modify_user,
        "trigger_time": i.trigger_time,
        "started_time": i.started_time,
        "finished_time": i.finished_time,
        "create_time": i.create_time,
        "modify_time": i.modify_time,
        "workflow_parameters": i.workflow_parameters,
        "tags": json.dumps([[t.key, t.value] for t in i.tags], ensure_ascii=False),
    }


def _tag_rows(i: WorkflowInstance) -> Iterator[dict[str, object]]:
    for position, tag in enumerate(i.tags):
        yield {
            "instance_id": i.id,
            "position": position,
            "key": tag.key,
            "value": tag.value,
            "project_id": i.project_id,
            "env_type": i.env_type.value,
            "biz_day": day_key(i.biz_day),
        }


def insert_instances(conn: sa.Connection, instances: Sequence[WorkflowInstance]) -> None:
    """Insert new instances with their tags (ids must not exist yet)."""
    if not instances:
        return
    conn.execute(sa.insert(wi), [_row(i) for i in instances])
    tags = [t for i in instances for t in _tag_rows(i)]
    if tags:
        conn.execute(sa.insert(instance_tags), tags)


def delete_instances(conn: sa.Connection, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        conn.execute(sa.delete(instance_tags).where(instance_tags.c.instance_id.in_(chunk)))
        conn.execute(sa.delete(wi).where(wi.c.id.in_(chunk)))


def delete_project_instances(conn: sa.Connection, project_id: int) -> None:
    conn.execute(sa.delete(instance_tags).where(instance_tags.c.project_id == project_id))
    conn.execute(sa.delete(wi).where(wi.c.project_id == project_id))


def iter_instances(
    conn: sa.Connection,
    project_id: int,
    env_type: EnvType | None,
    biz_day_key: int | None,
    batch: int = 5000,
) -> Iterable[WorkflowInstance]:
    """Every instance of a project (optionally one env, one day), by day then id."""
    where: list[sa.ColumnElement[bool]] = [wi.c.project_id == project_id]
    if env_type is not None:
        where.append(wi.c.env_type == env_type.value)
    if biz_day_key is not None:
        where.append(wi.c.biz_day == biz_day_key)
    after: tuple[int, int] | None = None
    while True:
        stmt = sa.select(wi).where(*where)
        if after is not None:
            stmt = stmt.where(sa.tuple_(wi.c.biz_day, wi.c.id) > sa.tuple_(*after))
        rows = conn.execute(stmt.order_by(wi.c.biz_day, wi.c.id).limit(batch)).all()
        if not rows:
            return
        yield from (_instance(r) for r in rows)
        after = (rows[-1].biz_day, rows[-1].id)
