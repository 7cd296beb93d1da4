"""Import and export of workflow instances as JSON Lines (see dwsched.api.records).

Import is all or nothing: one transaction, rolled back on the first error, while the rest
of the input is still validated so that every bad line is reported. Unknown workspaces are
created with the default time zone.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import msgspec

from dwsched.api import records
from dwsched.domain.errors import DwschedError, InstancesExist, InvalidArgument
from dwsched.domain.models import EnvType, NewProject, WorkflowInstance
from dwsched.store import ImportBatch, Store

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


BATCH = 5000


class _Reader:
    """Lines → validated batches of instances. Every error is recorded with its line; at the
    end of the input the reader raises ImportRejected if there was any (the store then rolls
    back whatever it wrote)."""

    def __init__(self, lines: Iterable[bytes], zones: dict[int, str], taken: set[str], tz: str):
        self.lines = lines
        self.zones = zones
        self.taken = taken
        self.default_timezone = tz
        self.errors: list[str] = []
        self.count = 0
        self.seen: dict[int, int] = {}
        self.created: list[int] = []

    def error(self, number: int, text: str) -> None:
        self.count += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(f"line {number}: {text}")

    def batches(self) -> Iterator[ImportBatch]:
        items: list[WorkflowInstance] = []
        new: list[NewProject] = []
        for number, line in enumerate(self.lines, start=1):
            record = self.record(number, line)
            if record is None:
                continue
            if record.ProjectId not in self.zones:
                new.append(self.new_project(record.ProjectId))
            try:
                instance = records.to_instance(record, self.zones[record.ProjectId])
            except InvalidArgument as exc:
                self.error(number, f"`{exc.param}`: {exc.message}")
                continue
            if self.count:
                continue  # nothing will be written: only look for more errors
            items.append(instance)
            if len(items) >= BATCH:
                yield ImportBatch(items, new)
                items, new = [], []
        if self.count:
            raise ImportRejected(self.errors, self.count)
        if items or new:
            yield ImportBatch(items, new)

    def record(self, number: int, line: bytes) -> records.InstanceRecord | None:
        if not line.strip():
            return None
        try:
            record = records.decoder.decode(line)
        except msgspec.ValidationError as exc:
            self.error(number, str(exc))
            return None
        except msgspec.DecodeError as exc:
            self.error(number, f"not a JSON object ({exc})")
            return None
        if record.Id in self.seen:
            self.error(number, f"`$.Id` {record.Id} repeats line {self.seen[record.Id]}")
            return None
        self.seen[record.Id] = number
        nul = _field_with_nul(record) if b"\\u0000" in line else None
        if nul is not None:
            self.error(number, f"`{nul}` contains the NUL character")
            return None
        if record.StartedTime is None and record.FinishedTime is not None:
            self.error(number, "`$.FinishedTime` is set but `$.StartedTime` is null")
            return None
        return record

    def new_project(self, project_id: int) -> NewProject:
        candidates = (
            f"project_{project_id}",
            *(f"project_{project_id}_{k}" for k in range(2, 999)),
        )
        name = next(n for n in candidates if n not in self.taken)
        self.taken.add(name)
        self.zones[project_id] = self.default_timezone
        self.created.append(project_id)
        return NewProject(id=project_id, name=name, timezone=self.default_timezone)


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
    """Validate and write every line in one transaction: all of them, or nothing.

    Lines are read and validated on one thread while the store writes the batches before
    them on another; the first error stops the writing, the rest of the input is still
    checked so that the report names every bad line (up to 20), and everything is rolled
    back.
    """
    known = store.all_projects()
    reader = _Reader(
        lines, {p.id: p.timezone for p in known}, {p.name for p in known}, default_timezone
    )
    # A bulk load allocates millions of objects that all stay alive: the cyclic collector
    # would traverse them again and again for nothing (it halves the throughput).
    collecting = gc.isenabled()
    gc.disable()
    try:
        written = store.import_batches(reader.batches(), replace, now_ms, on_progress)
    except InstancesExist as exc:
        lines_of = [(reader.seen.get(i, 0), i) for i in exc.ids]
        errors = [f"line {n}: `$.Id` {i} exists already (use --replace)" for n, i in lines_of]
        raise ImportRejected(errors[:MAX_REPORTED], len(errors)) from exc
    finally:
        if collecting:
            gc.enable()
    return ImportResult(written, reader.created)


def export_lines(
    store: Store, project_id: int, env_type: EnvType | None, biz_day_key: int | None
) -> Iterator[bytes]:
    tz = store.get_project(project_id).timezone
    for instance in store.iter_instances(project_id, env_type, biz_day_key):
        yield records.encoder.encode(records.from_instance(instance, tz)) + b"\n"
