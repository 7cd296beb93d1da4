"""Workflow instances: the partitioned listing of DESIGN.md §3, lookups, bulk writes.

Listing runs two statements, each inside one (project, env, day) slice of an index: the count,
and the page (ids chosen on the index first, so that a deep page skips index entries, not
table rows; then the rows for those ids, put in order in Python). A single nullable sort key
(StartedTime, FinishedTime) splits the order into "has a value" then "has none", which costs
two more statements on the page where the two meet. Statements are compiled once per query
shape (`plan`) and run on the DBAPI cursor: this is the hottest path of the service.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain.calendar import day_from_key, day_key
from dwsched.domain.errors import InstanceNotFound
from dwsched.domain.models import EnvType, InstanceType, Status, Tag, WorkflowInstance
from dwsched.domain.queries import InstancePage, InstanceQuery, SortField, SortKey
from dwsched.store.bulk import EncodedBatch
from dwsched.store.dialect import is_sqlite, one_of
from dwsched.store.schema import instance_tags, partitions, workflow_instances as wi
from dwsched.store.statements import Compiled, run

SORT_COLUMNS: dict[SortField, sa.Column[int]] = {
    SortField.ID: wi.c.id,
    SortField.TRIGGER_TIME: wi.c.trigger_time,
    SortField.STARTED_TIME: wi.c.started_time,
    SortField.FINISHED_TIME: wi.c.finished_time,
    SortField.CREATE_TIME: wi.c.create_time,
}
SORT_ATTRIBUTES = {
    SortField.ID: "id",
    SortField.TRIGGER_TIME: "trigger_time",
    SortField.STARTED_TIME: "started_time",
    SortField.FINISHED_TIME: "finished_time",
    SortField.CREATE_TIME: "create_time",
}
IN_CHUNK = 500
bp = sa.bindparam


@dataclass(frozen=True, slots=True)
class Shape:
    """What a query's SQL depends on (not its values): one compiled plan per shape."""

    type: bool
    workflow: bool
    unified: bool
    owner: bool
    ids: int
    statuses: int
    window: bool
    name: bool
    tags: tuple[bool, ...]  # per tag: is the value matched too?
    sort: tuple[SortKey, ...]


def _only_partition(shape: Shape) -> bool:
    """No filter at all: the partition's counter is the TotalCount."""
    return shape == Shape(False, False, False, False, -1, 0, False, False, (), shape.sort)


def _only_tags(shape: Shape) -> bool:
    """Tags are the only filter: count on the tag index alone."""
    return bool(shape.tags) and shape == Shape(
        False, False, False, False, -1, 0, False, False, shape.tags, shape.sort
    )


@dataclass(frozen=True, slots=True)
class Plan:
    count: Compiled
    page: Compiled
    valued_count: Compiled | None = None  # single nullable sort key: rows with a value
    null_page: Compiled | None = None  # ... and the page of rows without one


def shape_of(q: InstanceQuery) -> Shape:
    return Shape(
        type=q.type is not None,
        workflow=q.workflow_id is not None,
        unified=q.unified_workflow_instance_id is not None,
        owner=q.owner is not None,
        ids=-1 if q.ids is None else len(q.ids),
        statuses=len(q.statuses),
        window=q.execution_date_ms is not None,
        name=bool(q.name),
        tags=tuple(m.value is not None for m in q.tags),
        sort=q.sort,
    )


def escape_like(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def values_of(q: InstanceQuery, tz: str, partition_id: int) -> dict[str, Any]:
    """The bound values of the query's plan; the window is taken in zone `tz`."""
    values: dict[str, Any] = {
        "partition_id": partition_id,
        "type": None if q.type is None else q.type.value,
        "workflow_id": q.workflow_id,
        "unified_id": q.unified_workflow_instance_id,
        "owner": q.owner,
        "name_pattern": f"%{escape_like(q.name.casefold())}%" if q.name else None,
        "limit": q.page.size,
        "offset": q.page.offset,
    }
    for n, instance_id in enumerate(q.ids or ()):
        values[f"id_{n}"] = instance_id
    for n, status in enumerate(q.statuses):
        values[f"status_{n}"] = status.value
    window = q.trigger_window(tz)
    if window is not None:
        values["window_start"], values["window_end"] = window
    for n, match in enumerate(q.tags):
        values[f"tag_key_{n}"] = match.key
        values[f"tag_value_{n}"] = match.value
    return values


def _conditions(shape: Shape) -> list[sa.ColumnElement[bool]]:
    where = [wi.c.partition_id == bp("partition_id")]
    if shape.type:
        where.append(wi.c.type == bp("type"))
    if shape.workflow:
        where.append(wi.c.workflow_id == bp("workflow_id"))
    if shape.unified:
        where.append(wi.c.unified_workflow_instance_id == bp("unified_id"))
    if shape.owner:
        where.append(wi.c.owner == bp("owner"))
    if shape.ids >= 0:
        where.append(wi.c.id.in_([bp(f"id_{n}") for n in range(shape.ids)]))
    if shape.statuses == 1:
        where.append(wi.c.status == bp("status_0"))
    elif shape.statuses:
        where.append(wi.c.status.in_([bp(f"status_{n}") for n in range(shape.statuses)]))
    if shape.window:
        where.extend(
            [wi.c.trigger_time >= bp("window_start"), wi.c.trigger_time < bp("window_end")]
        )
    if shape.name:
        where.append(wi.c.name_folded.like(bp("name_pattern"), escape="/"))
    if shape.tags:
        t = instance_tags.c
        matches = [
            sa.and_(t.key == bp(f"tag_key_{n}"), t.value == bp(f"tag_value_{n}"))
            if with_value
            else t.key == bp(f"tag_key_{n}")
            for n, with_value in enumerate(shape.tags)
        ]
        where.append(
            wi.c.id.in_(
                sa.select(t.instance_id).where(
                    t.partition_id == bp("partition_id"), sa.or_(*matches)
                )
            )
        )
    return where


def _ordered(column: sa.ColumnElement[int], descending: bool) -> sa.UnaryExpression[int]:
    return column.desc() if descending else column.asc()


def _count_of(where: Sequence[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(wi).where(*where)


@lru_cache(maxsize=64)
def _tagged(dialect: sa.Dialect, with_value: bool) -> Compiled:
    """The ids of a partition's instances carrying one tag (one range of instance_tags)."""
    t = instance_tags.c
    where = [t.partition_id == bp("partition_id"), t.key == bp("key")]
    if with_value:
        where.append(t.value == bp("value"))
    return Compiled(sa.select(t.instance_id).where(*where), dialect)


def _tagged_ids(cursor: Any, dialect: sa.Dialect, q: InstanceQuery, partition_id: int) -> set[int]:
    """Ids carrying any of the query's tags: one index range per tag, united here (SQLite
    would unite them through a temporary B-tree, several times slower)."""
    found: set[int] = set()
    for match in q.tags:
        values = {"partition_id": partition_id, "key": match.key, "value": match.value}
        found.update(r[0] for r in run(cursor, _tagged(dialect, match.value is not None), values))
    return found


@lru_cache(maxsize=8)
def _rows_by_ids(dialect: sa.Dialect, n: int) -> Compiled:
    return Compiled(sa.select(wi).where(wi.c.id.in_([bp(f"id_{k}") for k in range(n)])), dialect)


def _page_of(
    where: Sequence[sa.ColumnElement[bool]],
    order: Sequence[sa.ColumnElement[Any]],
    limit: str = "limit",
    offset: str = "offset",
) -> sa.Select[Any]:
    """The rows of one page: ids chosen on the index first, then the rows for those ids."""
    ids = sa.select(wi.c.id).where(*where).order_by(*order).limit(bp(limit)).offset(bp(offset))
    return sa.select(wi).where(wi.c.id.in_(ids))


# A Name filter that matches few rows is answered from the name index and the matches
# sorted; SQLite's planner would rather walk the partition in id order to avoid the sort,
# reading every row. Ordering by `column + 0` keeps it off the ordering indexes.
# PostgreSQL's planner weighs this from its statistics by itself.
FEW_NAME_MATCHES = 5000


def _unindexed(column: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    return column + sa.literal_column("0", sa.BigInteger())


@lru_cache(maxsize=2048)
def plan(shape: Shape, dialect: sa.Dialect, by_name: bool = False) -> Plan:
    """The statements of a query shape. `by_name`: sort the page's matches rather than read
    the partition in an index's order."""
    where = _conditions(shape)
    first = shape.sort[0]
    key = _unindexed if by_name else (lambda c: c)
    tie = _ordered(key(wi.c.id), first.descending)
    column = key(SORT_COLUMNS[first.field])
    count = Compiled(_count_of(where), dialect)
    if len(shape.sort) > 1:
        order = _multi_key_order(shape.sort, tie)
        return Plan(count, Compiled(_page_of(where, order), dialect))
    if not first.field.nullable:
        order = [tie] if first.field is SortField.ID else [_ordered(column, first.descending), tie]
        return Plan(count, Compiled(_page_of(where, order), dialect))
    # Rows with a value, in the key's order, then rows without one (nulls last both ways).
    nullable = SORT_COLUMNS[first.field]
    valued, unvalued = [*where, nullable.is_not(None)], [*where, nullable.is_(None)]
    return Plan(
        count,
        Compiled(_page_of(valued, [_ordered(column, first.descending), tie]), dialect),
        Compiled(_count_of(valued), dialect),
        Compiled(_page_of(unvalued, [tie], "null_limit", "null_offset"), dialect),
    )


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


def order_key(sort: Sequence[SortKey]) -> Callable[[WorkflowInstance], tuple[Any, ...]]:
    """The listing order in Python (the SQL's, for re-ordering a page's rows)."""
    fields = [(SORT_ATTRIBUTES[k.field], k.descending) for k in sort]
    tie_descending = sort[0].descending

    def key(i: WorkflowInstance) -> tuple[Any, ...]:
        parts: list[Any] = []
        for attribute, descending in fields:
            v = getattr(i, attribute)
            parts.append((v is None, 0 if v is None else -v if descending else v))
        parts.append(-i.id if tie_descending else i.id)
        return tuple(parts)

    return key


@lru_cache(maxsize=8)
def _partition_statement(dialect: sa.Dialect) -> Compiled:
    statement = sa.select(partitions.c.id, partitions.c.instance_count).where(
        partitions.c.project_id == bp("project_id"),
        partitions.c.env_type == bp("env_type"),
        partitions.c.biz_day == bp("biz_day"),
    )
    return Compiled(statement, dialect)


def list_instances(cursor: Any, dialect: sa.Dialect, q: InstanceQuery, tz: str) -> InstancePage:
    """One page of the query's partition; `tz` is the project's zone, which fixes the day."""
    key = {
        "project_id": q.project_id,
        "env_type": q.env_type.value,
        "biz_day": day_key(q.biz_day(tz)),
    }
    found_partition = run(cursor, _partition_statement(dialect), key)
    if not found_partition:
        return InstancePage(0, ())
    shape = shape_of(q)
    p = plan(shape, dialect)
    partition_id, held = found_partition[0]
    values = values_of(q, tz, partition_id)
    if _only_tags(shape) and q.sort[0].field is SortField.ID and len(q.sort) == 1:
        return _tagged_page(cursor, dialect, q, partition_id)
    total = int(held) if _only_partition(shape) else int(run(cursor, p.count, values)[0][0])
    if total <= q.page.offset:
        return InstancePage(total, ())
    if q.name and is_sqlite(dialect) and total <= FEW_NAME_MATCHES:
        p = plan(shape, dialect, by_name=True)
    rows = run(cursor, p.page, values)
    if p.valued_count is not None and p.null_page is not None and len(rows) < q.page.size:
        valued = int(run(cursor, p.valued_count, values)[0][0])
        values["null_offset"] = max(0, q.page.offset - valued)
        values["null_limit"] = q.page.size - len(rows)
        rows += run(cursor, p.null_page, values)
    found = [_instance_of(r) for r in rows]
    found.sort(key=order_key(q.sort))
    return InstancePage(total, tuple(found))


# Pages that end within this many ids are cut from the top of each tag's range; deeper
# ones unite the ranges whole.
TOP_OF_RANGES = 2000
# Up to this many exact tags are counted in SQL (each range minus those before it).
COUNTED_TAGS = 4


def _tagged_page(
    cursor: Any, dialect: sa.Dialect, q: InstanceQuery, partition_id: int
) -> InstancePage:
    """Tags as the only filter, sorted by Id: count and page from the matching ids alone.

    Exact tags (key and value) each name one range of instance_tags whose instance ids are
    distinct and in order: the union is counted in SQL (every range, minus the ids of the
    ranges before it), and a page near the start is cut from the top of each range. A key
    alone may match an instance several times (one row per value), and a deep page needs the
    whole union: both unite the ranges here.
    """
    descending = q.sort[0].descending
    start, end = q.page.offset, q.page.offset + q.page.size
    exact = all(m.value is not None for m in q.tags) and len(q.tags) <= COUNTED_TAGS
    if exact and end <= TOP_OF_RANGES:
        values: dict[str, Any] = {"partition_id": partition_id}
        for n, match in enumerate(q.tags):
            values[f"tag_key_{n}"], values[f"tag_value_{n}"] = match.key, match.value
        total = int(run(cursor, _union_count(dialect, len(q.tags)), values)[0][0])
        top: set[int] = set()
        if start < total:
            for match in q.tags:
                ranged = {"partition_id": partition_id, "key": match.key, "value": match.value}
                rows = run(cursor, _tagged_top(dialect, descending), {**ranged, "limit": end})
                top.update(r[0] for r in rows)
        chosen = sorted(top, reverse=descending)[start:end]
    else:
        ids = sorted(_tagged_ids(cursor, dialect, q, partition_id), reverse=descending)
        total, chosen = len(ids), ids[start:end]
    if not chosen:
        return InstancePage(total, ())
    by_id = {f"id_{k}": i for k, i in enumerate(chosen)}
    found = [_instance_of(r) for r in run(cursor, _rows_by_ids(dialect, len(chosen)), by_id)]
    found.sort(key=order_key(q.sort))
    return InstancePage(total, tuple(found))


@lru_cache(maxsize=16)
def _union_count(dialect: sa.Dialect, tags: int) -> Compiled:
    """How many distinct instances carry any of `tags` exact tags: Σ over the ranges of the
    entries whose instance is in no range before it (probes of the primary key, in SQL)."""
    t = instance_tags
    counts: list[sa.ScalarSelect[Any]] = []
    for i in range(tags):
        b = t.alias(f"b{i}")
        where: list[sa.ColumnElement[bool]] = [
            b.c.partition_id == bp("partition_id"),
            b.c.key == bp(f"tag_key_{i}"),
            b.c.value == bp(f"tag_value_{i}"),
        ]
        for j in range(i):
            a = t.alias(f"a{i}_{j}")
            where.append(
                ~sa.exists().where(
                    a.c.partition_id == bp("partition_id"),
                    a.c.key == bp(f"tag_key_{j}"),
                    a.c.value == bp(f"tag_value_{j}"),
                    a.c.instance_id == b.c.instance_id,
                )
            )
        counts.append(sa.select(sa.func.count()).select_from(b).where(*where).scalar_subquery())
    total: sa.ColumnElement[Any] = counts[0]
    for count in counts[1:]:
        total = total + count
    return Compiled(sa.select(total), dialect)


@lru_cache(maxsize=8)
def _tagged_top(dialect: sa.Dialect, descending: bool) -> Compiled:
    """The first `limit` ids of one exact tag's range, in Id order."""
    t = instance_tags.c
    return Compiled(
        sa.select(t.instance_id)
        .where(t.partition_id == bp("partition_id"), t.key == bp("key"), t.value == bp("value"))
        .order_by(_ordered(t.instance_id, descending))
        .limit(bp("limit")),
        dialect,
    )


_COLUMNS = [c.name for c in wi.columns]


_ENV = {e.value: e for e in EnvType}
_TYPE = {t.value: t for t in InstanceType}
_STATUS = {s.value: s for s in Status}
_day = lru_cache(maxsize=4096)(day_from_key)
_decode_tags = msgspec.json.Decoder(list[tuple[str, str]]).decode


_ROW_ORDER = (
    "id partition_id project_id env_type biz_day type status workflow_id "
    "workflow_task_instance_id unified_workflow_instance_id name name_folded owner create_user "
    "modify_user trigger_time started_time finished_time create_time modify_time "
    "workflow_parameters tags"
).split()
if _COLUMNS != _ROW_ORDER:
    raise RuntimeError("_instance_of unpacks the workflow_instances columns in another order")


@lru_cache(maxsize=16384)
def _tags(text: str) -> tuple[Tag, ...]:
    """Decoded tags: the same few tag sets recur across a day's instances."""
    return tuple(Tag(k, v) for k, v in _decode_tags(text))


def _instance_of(r: Sequence[Any]) -> WorkflowInstance:
    """A row of every workflow_instances column, in table order (every listing reads
    rows this way, so it unpacks them positionally)."""
    (
        id_, _, project_id, env, day, kind, status, workflow_id, task_instance_id, unified_id,
        name, _, owner, create_user, modify_user, trigger_time, started_time, finished_time,
        create_time, modify_time, parameters, tags,
    ) = r  # fmt: skip
    return WorkflowInstance(
        id_,
        project_id,
        _ENV[env],
        _day(day),
        _TYPE[kind],
        _STATUS[status],
        workflow_id,
        task_instance_id,
        unified_id,
        name,
        owner,
        create_user,
        modify_user,
        trigger_time,
        started_time,
        finished_time,
        create_time,
        modify_time,
        parameters,
        _tags(tags),
    )


def instances_by_ids(conn: sa.Connection, ids: Sequence[int]) -> dict[int, WorkflowInstance]:
    found: dict[int, WorkflowInstance] = {}
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        for row in conn.execute(sa.select(wi).where(wi.c.id.in_(chunk))):
            found[row.id] = _instance_of(row)
    return found


def existing_instance_ids(conn: sa.Connection, ids: Sequence[int]) -> set[int]:
    """Which of `ids` exist: one statement for the lot (an import asks this of every id)."""
    if not ids:
        return set()
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        where, values = one_of(conn.dialect, "id", ids)
        cursor.execute(f"SELECT id FROM workflow_instances WHERE {where}", values)
        return {int(i) for (i,) in cursor.fetchall()}
    finally:
        cursor.close()


def partition_ids(
    conn: sa.Connection, keys: set[tuple[int, str, int]]
) -> dict[tuple[int, str, int], int]:
    """The ids of (project_id, env_type, biz_day) partitions, created when missing."""
    p = partitions.c
    found: dict[tuple[int, str, int], int] = {}
    for project_id in {k[0] for k in keys}:
        rows = conn.execute(
            sa.select(p.id, p.env_type, p.biz_day).where(p.project_id == project_id)
        ).all()
        found.update({(project_id, env, day): pid for pid, env, day in rows})
    missing = sorted(keys - set(found))
    for project_id, env, day in missing:
        found[(project_id, env, day)] = conn.execute(
            sa.insert(partitions).values(project_id=project_id, env_type=env, biz_day=day)
        ).inserted_primary_key[0]  # type: ignore[index]
    return found


def _insert_sql(dialect: sa.Dialect, table: sa.Table) -> str:
    """INSERT of every column of `table`, the partition id as a literal placeholder `{}`
    (bound once per partition, not once per row), the rest as positional parameters."""
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    values = ", ".join("{}" if c.name == "partition_id" else mark for c in table.columns)
    names = ", ".join(c.name for c in table.columns)
    return f"INSERT INTO {table.name} ({names}) VALUES ({values})"


def insert_encoded(conn: sa.Connection, batch: EncodedBatch) -> None:
    """Insert new instances with their tags (ids must not exist yet), in `conn`'s transaction.

    Bulk loads run on the DBAPI cursor: building SQLAlchemy parameters per row would cost
    more than the database's own work.
    """
    if not batch.rows:
        return
    parts = partition_ids(conn, set(batch.rows))
    _add_to_counts(conn, Counter({parts[k]: len(rows) for k, rows in batch.rows.items()}))
    row_sql = _insert_sql(conn.dialect, wi)
    tag_sql = _insert_sql(conn.dialect, instance_tags)
    if wi.columns.keys()[1] != "partition_id" or instance_tags.columns.keys()[0] != "partition_id":
        raise RuntimeError("bulk rows expect partition_id second in instances, first in tags")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for key, rows in batch.rows.items():
            partition_id = int(parts[key])
            cursor.executemany(row_sql.format(partition_id), rows)
            if batch.tags.get(key):
                cursor.executemany(tag_sql.format(partition_id), batch.tags[key])
    finally:
        cursor.close()


def _add_to_counts(conn: sa.Connection, changes: Counter[int]) -> None:
    for partition_id, change in changes.items():
        conn.execute(
            sa.update(partitions)
            .where(partitions.c.id == partition_id)
            .values(instance_count=partitions.c.instance_count + change)
        )


def delete_instances(conn: sa.Connection, ids: Sequence[int]) -> None:
    t = instance_tags.c
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        rows = conn.execute(sa.select(wi.c.partition_id, wi.c.id).where(wi.c.id.in_(chunk))).all()
        by_partition: dict[int, list[int]] = {}
        for partition_id, instance_id in rows:
            by_partition.setdefault(partition_id, []).append(instance_id)
        for partition_id, members in by_partition.items():
            conn.execute(
                sa.delete(instance_tags).where(
                    t.partition_id == partition_id, t.instance_id.in_(members)
                )
            )
        conn.execute(sa.delete(wi).where(wi.c.id.in_(chunk)))
        _add_to_counts(conn, Counter({p: -len(members) for p, members in by_partition.items()}))


def _project_partitions(project_id: int) -> sa.Select[Any]:
    return sa.select(partitions.c.id).where(partitions.c.project_id == project_id)


def delete_project_instances(conn: sa.Connection, project_id: int) -> None:
    ids = _project_partitions(project_id)
    conn.execute(sa.delete(instance_tags).where(instance_tags.c.partition_id.in_(ids)))
    conn.execute(sa.delete(wi).where(wi.c.partition_id.in_(ids)))
    conn.execute(sa.delete(partitions).where(partitions.c.project_id == project_id))


def count_project_instances(conn: sa.Connection, project_id: int) -> int:
    count = sa.select(sa.func.count()).where(wi.c.partition_id.in_(_project_partitions(project_id)))
    return int(conn.execute(count).scalar() or 0)


class Instances:
    """Workflow instances (`Tx.instances`; the listing runs on the raw cursor:
    Store.list_instances)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def get(self, instance_id: int) -> WorkflowInstance:
        """InstanceNotFound when there is none."""
        found = instances_by_ids(self.conn, [instance_id]).get(instance_id)
        if found is None:
            raise InstanceNotFound(instance_id)
        return found

    def iter(
        self,
        project_id: int,
        env_type: EnvType | None,
        biz_day_key: int | None,
        batch: int = 5000,
    ) -> Iterator[WorkflowInstance]:
        """Every instance of a project (optionally one env, one day), by day, env, then id,
        read in batches as the caller consumes them."""
        p = partitions.c
        where: list[sa.ColumnElement[bool]] = [p.project_id == project_id]
        if env_type is not None:
            where.append(p.env_type == env_type.value)
        if biz_day_key is not None:
            where.append(p.biz_day == biz_day_key)
        chosen = self.conn.execute(
            sa.select(p.id).where(*where).order_by(p.biz_day, p.env_type)
        ).all()
        for (partition_id,) in chosen:
            after = 0
            while True:
                rows = self.conn.execute(
                    sa.select(wi)
                    .where(wi.c.partition_id == partition_id, wi.c.id > after)
                    .order_by(wi.c.id)
                    .limit(batch)
                ).all()
                if not rows:
                    break
                yield from (_instance_of(r) for r in rows)
                after = rows[-1].id
