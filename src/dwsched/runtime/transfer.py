"""Import and export of workflow instances as JSON Lines (see dwsched.api.records).

Import reads and validates the whole input before it writes anything; then writes it in one
transaction. Unknown workspaces are created with the default time zone.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import msgspec

from dwsched.api import records
from dwsched.domain.errors import DwschedError, InvalidArgument
from dwsched.domain.models import EnvType, NewProject, WorkflowInstance
from dwsched.store import Store

MAX_REPORTED = 20


class ImportRejected(DwschedError):
    """The input has errors; nothing was written."""

    def __init__(self, errors: list[str], total: int) -> None:
        more = f"\n... and {total - len(errors)} more" if total > len(errors) else ""
        super().__init__(f"{total} error(s), nothing imported:\n" + "\n".join(errors) + more)
        self.errors = errors


@dataclass(frozen=True)
class ImportResult:
    instances: int
    projects_created: list[int]


def read_records(lines: Iterable[bytes]) -> list[tuple[int, records.InstanceRecord]]:
    found: list[tuple[int, records.InstanceRecord]] = []
    errors: list[str] = []
    count = 0
    seen: dict[int, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = records.decoder.decode(line)
        except msgspec.ValidationError as exc:
            count += 1
            if len(errors) < MAX_REPORTED:
                errors.append(f"line {number}: {exc}")
            continue
        except msgspec.DecodeError as exc:
            count += 1
            if len(errors) < MAX_REPORTED:
                errors.append(f"line {number}: not a JSON object ({exc})")
            continue
        if record.Id in seen:
            count += 1
            if len(errors) < MAX_REPORTED:
                errors.append(f"line {number}: `$.Id` {record.Id} repeats line {seen[record.Id]}")
            continue
        nul = _field_with_nul(record) if b"\\u0000" in line else None
        if nul is not None:
            count += 1
            if len(errors) < MAX_REPORTED:
                errors.append(f"line {number}: `{nul}` contains the NUL character")
            continue
        if record.StartedTime is None and record.FinishedTime is not None:
            count += 1
            if len(errors) < MAX_REPORTED:
                errors.append(f"line {number}: `$.FinishedTime` is set but `$.StartedTime` is null")
            continue
        seen[record.Id] = number
        found.append((number, record))
    if count:
        raise ImportRejected(errors, count)
    return found


def _field_with_nul(r: records.InstanceRecord) -> str | None:
    texts = [
        ("$.Name", r.Name),
        ("$.Owner", r.Owner),
        ("$.CreateUser", r.CreateUser),
        ("$.ModifyUser", r.ModifyUser),
        ("$.WorkflowParameters", r.WorkflowParameters),
    ]
    for n, tag in enumerate(r.Tags):
        texts += [(f"$.Tags[{n}].Key", tag.Key), (f"$.Tags[{n}].Value", tag.Value)]
    return next((path for path, text in texts if "\x00" in text), None)


def import_lines(
    store: Store,
    lines: Iterable[bytes],
    replace: bool,
    default_timezone: str,
    now_ms: int,
    on_progress: Callable[[int], None] = lambda n: None,
) -> ImportResult:
    """Validate every line, then write them all in one transaction (or nothing)."""
    # A bulk load allocates millions of objects that all stay alive: the cyclic collector
    # would traverse them again and again for nothing (it halves the throughput).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _import(store, lines, replace, default_timezone, now_ms, on_progress)
    finally:
        if collecting:
            gc.enable()


def _import(
    store: Store,
    lines: Iterable[bytes],
    replace: bool,
    default_timezone: str,
    now_ms: int,
    on_progress: Callable[[int], None],
) -> ImportResult:
    parsed = read_records(lines)
    known = store.all_projects()
    zones = {p.id: p.timezone for p in known}
    taken = {p.name for p in known}
    created: list[NewProject] = []
    for project_id in sorted({r.ProjectId for _, r in parsed} - set(zones)):
        zones[project_id] = default_timezone
        name = next(
            n
            for n in (
                f"project_{project_id}",
                *(f"project_{project_id}_{k}" for k in range(2, 999)),
            )
            if n not in taken
        )
        taken.add(name)
        created.append(NewProject(id=project_id, name=name, timezone=default_timezone))
    items: list[WorkflowInstance] = []
    errors: list[str] = []
    for number, record in parsed:
        try:
            items.append(records.to_instance(record, zones[record.ProjectId]))
        except InvalidArgument as exc:
            errors.append(f"line {number}: `{exc.param}`: {exc.message}")
    if errors:
        raise ImportRejected(errors[:MAX_REPORTED], len(errors))
    store.import_instances(items, created, replace, now_ms, on_progress)
    return ImportResult(len(items), [p.id for p in created if p.id is not None])


def export_lines(
    store: Store, project_id: int, env_type: EnvType | None, biz_day_key: int | None
) -> Iterator[bytes]:
    tz = store.get_project(project_id).timezone
    for instance in store.iter_instances(project_id, env_type, biz_day_key):
        yield records.encoder.encode(records.from_instance(instance, tz)) + b"\n"


def instances_to_lines(items: Iterable[WorkflowInstance], tz: str) -> Iterator[bytes]:
    for instance in items:
        yield records.encoder.encode(records.from_instance(instance, tz)) + b"\n"
