"""Import and export of workflow instances as JSON Lines (see dwsched.api.records).

Import reads and validates the whole input before it writes anything; then writes it in one
transaction. Unknown workspaces are created with the default time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import msgspec

from dwsched.api import records
from dwsched.domain.errors import DwschedError
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


def import_lines(
    store: Store,
    lines: Iterable[bytes],
    replace: bool,
    default_timezone: str,
    now_ms: int,
    on_progress: Callable[[int], None] = lambda n: None,
) -> ImportResult:
    parsed = read_records(lines)
    zones = {p.id: p.timezone for p in store.all_projects()}
    created = sorted({r.ProjectId for _, r in parsed} - set(zones))
    for project_id in created:
        zones[project_id] = default_timezone
    items = [records.to_instance(r, zones[r.ProjectId]) for _, r in parsed]
    store.import_instances(
        items,
        [NewProject(id=p, name=f"project_{p}", timezone=default_timezone) for p in created],
        replace,
        now_ms,
        on_progress,
    )
    return ImportResult(len(items), created)


def export_lines(
    store: Store, project_id: int, env_type: EnvType | None, biz_day_key: int | None
) -> Iterator[bytes]:
    tz = store.get_project(project_id).timezone
    for instance in store.iter_instances(project_id, env_type, biz_day_key):
        yield records.encoder.encode(records.from_instance(instance, tz)) + b"\n"


def instances_to_lines(items: Iterable[WorkflowInstance], tz: str) -> Iterator[bytes]:
    for instance in items:
        yield records.encoder.encode(records.from_instance(instance, tz)) + b"\n"
