"""Import and export of workflow instances as JSON Lines (see dwsched.api.records).

Import is all or nothing: one transaction, rolled back on the first error, while the rest
of the input is still validated so that every bad line is reported. Unknown workspaces are
created with the default time zone.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing
import pickle
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import msgspec

from dwsched.api import records
from dwsched.domain.calendar import day_key, day_of
from dwsched.domain.errors import DwschedError, InstancesExist, InvalidArgument
from dwsched.domain.models import EnvType, NewProject
from dwsched.store import VALUES, EncodedBatch, RowBuilder, Store

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


CHUNK = 5000  # lines decoded, and written, at a time
PARALLEL_FROM = 20_000  # inputs this long are decoded in a second process
AHEAD = 4  # chunks decoded ahead of the writer


@dataclass(slots=True)
class _Decoded:
    """One chunk of input: its rows (empty once the input has had an error), the line of
    each row's id, and the errors found in it."""

    batch: EncodedBatch
    lines: list[int]
    errors: list[str]
    error_count: int
    new_projects: list[int]


class _Decoder:
    """Lines → rows, chunk after chunk in input order; it keeps what spans chunks: the ids
    seen and the line that had each, the workspaces' zones (unknown workspaces get the
    default zone), whether any line failed."""

    def __init__(self, zones: dict[int, str], default_timezone: str) -> None:
        self.zones = dict(zones)
        self.default_timezone = default_timezone
        self.seen: dict[int, int] = {}
        self.failed = False

    def decode(self, lines: list[bytes], first: int) -> _Decoded:
        builder = RowBuilder()
        numbers: list[int] = []
        errors: list[str] = []
        new: list[int] = []
        count = 0
        for number, line in enumerate(lines, start=first):
            try:
                record = self.record(number, line)
                if record is None:
                    continue
                tz = self.zones.get(record.ProjectId)
                if tz is None:
                    tz = self.zones[record.ProjectId] = self.default_timezone
                    new.append(record.ProjectId)
                day = day_key(day_of(record.BizDate, tz, "$.BizDate"))
            except (_LineError, InvalidArgument) as exc:
                count += 1
                if len(errors) < MAX_REPORTED:
                    text = (
                        f"`{exc.param}`: {exc.message}" if isinstance(exc, InvalidArgument) else exc
                    )
                    errors.append(f"line {number}: {text}")
                self.failed = True
                continue
            if self.failed:
                continue  # nothing will be written: only look for more errors
            r = record
            builder.add(
                r.Id,
                r.ProjectId,
                VALUES[r.EnvType],
                day,
                VALUES[r.Type],
                VALUES[r.Status],
                r.WorkflowId,
                r.WorkflowTaskInstanceId,
                r.UnifiedWorkflowInstanceId,
                r.Name,
                r.Owner,
                r.CreateUser,
                r.ModifyUser,
                r.TriggerTime,
                r.StartedTime,
                r.FinishedTime,
                r.CreateTime,
                r.ModifyTime,
                r.WorkflowParameters,
                [(t.Key, t.Value) for t in r.Tags],
            )
            numbers.append(number)
        return _Decoded(builder.take(), numbers, errors, count, new)

    def record(self, number: int, line: bytes) -> records.InstanceRecord | None:
        if not line.strip():
            return None
        try:
            record = records.decoder.decode(line)
        except msgspec.ValidationError as exc:
            raise _LineError(str(exc)) from exc
        except msgspec.DecodeError as exc:
            raise _LineError(f"not a JSON object ({exc})") from exc
        if record.Id in self.seen:
            raise _LineError(f"`$.Id` {record.Id} repeats line {self.seen[record.Id]}")
        self.seen[record.Id] = number
        nul = _field_with_nul(record) if b"\\u0000" in line else None
        if nul is not None:
            raise _LineError(f"`{nul}` contains the NUL character")
        if record.StartedTime is None and record.FinishedTime is not None:
            raise _LineError("`$.FinishedTime` is set but `$.StartedTime` is null")
        return record


class _LineError(Exception):
    pass


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


# The decoder of a worker process (one per import, so chunks are decoded in order).
_worker: _Decoder | None = None


def _start_worker(zones: dict[int, str], default_timezone: str) -> None:
    global _worker
    gc.disable()  # see import_lines
    _worker = _Decoder(zones, default_timezone)


def _decode_in_worker(lines: list[bytes], first: int) -> bytes:
    """The decoded chunk, pickled here: unpickled by the executor's result thread it would
    hold the GIL while the writer waits for it between SQLite steps."""
    if _worker is None:
        raise RuntimeError("the import worker was not started")
    return pickle.dumps(_worker.decode(lines, first), protocol=pickle.HIGHEST_PROTOCOL)


def _chunks(lines: Iterable[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    chunk: list[bytes] = []
    first = 1
    for line in lines:
        chunk.append(line)
        if len(chunk) == CHUNK:
            yield first, chunk
            first += CHUNK
            chunk = []
    if chunk:
        yield first, chunk


def _decoded(
    lines: Iterable[bytes], decoder: _Decoder, parallel_from: int
) -> Generator[_Decoded, None, None]:
    """Decoded chunks in input order. A short input is decoded here; a long one in a second
    process, AHEAD chunks in advance, while this one writes (decoding costs as much as
    SQLite's own work, and two cores do both at once)."""
    chunks = _chunks(lines)
    head: list[tuple[int, list[bytes]]] = []
    for chunk in chunks:
        head.append(chunk)
        if len(head) * CHUNK >= parallel_from:
            break
    else:
        for first, part in head:
            yield decoder.decode(part, first)
        return
    pool = ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(decoder.zones, decoder.default_timezone),
    )
    try:
        pending: deque[Future[bytes]] = deque()
        for first, part in itertools.chain(head, chunks):
            pending.append(pool.submit(_decode_in_worker, part, first))
            if len(pending) > AHEAD:
                yield pickle.loads(pending.popleft().result())
        while pending:
            yield pickle.loads(pending.popleft().result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def import_lines(
    store: Store,
    lines: Iterable[bytes],
    replace: bool,
    default_timezone: str,
    now_ms: int,
    on_progress: Callable[[int], None] = lambda n: None,
    parallel_from: int = PARALLEL_FROM,
) -> ImportResult:
    """Validate and write every line in one transaction: all of them, or nothing.

    Chunks of lines are decoded into rows (in a second process for a long input) while
    the store writes the chunks before them; the first error stops the writing, the rest of
    the input is still checked so that the report names every bad line (up to 20), and
    everything is rolled back.
    """
    with store.read() as tx:
        known = tx.projects.all()
    taken = {p.name for p in known}
    decoder = _Decoder({p.id: p.timezone for p in known}, default_timezone)
    created: list[int] = []
    errors: list[str] = []
    error_count = 0
    last: _Decoded | None = None

    def batches() -> Generator[EncodedBatch, None, None]:
        nonlocal error_count, last
        with contextlib.closing(_decoded(lines, decoder, parallel_from)) as chunks:
            for chunk in chunks:
                errors.extend(chunk.errors[: MAX_REPORTED - len(errors)])
                error_count += chunk.error_count
                if error_count:
                    continue  # nothing will be written: only look for more errors
                for project_id in chunk.new_projects:
                    chunk.batch.new_projects.append(
                        _new_project(project_id, taken, default_timezone)
                    )
                    created.append(project_id)
                last = chunk
                yield chunk.batch
        if error_count:
            raise ImportRejected(errors, error_count)

    # A bulk load allocates millions of objects that all stay alive: the cyclic collector
    # would traverse them again and again for nothing (it halves the throughput).
    collecting = gc.isenabled()
    gc.disable()
    try:
        # Closed here, not when the garbage collector finds it: that ends the decoding
        # process while this one is still whole (at exit its pipes may be gone).
        with contextlib.closing(batches()) as source:
            written = store.import_encoded(source, replace, now_ms, on_progress)
    except InstancesExist as exc:
        line_of = dict(zip(last.batch.ids, last.lines, strict=True)) if last else {}
        found = [
            f"line {line_of.get(i, 0)}: `$.Id` {i} exists already (use --replace)" for i in exc.ids
        ]
        raise ImportRejected(found[:MAX_REPORTED], len(found)) from exc
    finally:
        if collecting:
            gc.enable()
    return ImportResult(written, created)


def _new_project(project_id: int, taken: set[str], timezone: str) -> NewProject:
    candidates = (f"project_{project_id}", *(f"project_{project_id}_{k}" for k in range(2, 999)))
    name = next(n for n in candidates if n not in taken)
    taken.add(name)
    return NewProject(id=project_id, name=name, timezone=timezone)


def export_lines(
    store: Store, project_id: int, env_type: EnvType | None, biz_day_key: int | None
) -> Iterator[bytes]:
    with store.read() as tx:
        tz = tx.projects.get(project_id).timezone
        for instance in tx.instances.iter(project_id, env_type, biz_day_key):
            yield records.encoder.encode(records.from_instance(instance, tz)) + b"\n"
