"""The one storage interface: a facade owning the engine and its transactions.

Reads run in a plain transaction (a consistent snapshot for a count and its page); writes
in a write transaction (`BEGIN IMMEDIATE` on SQLite). Each method is one unit of work.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import msgspec
import sqlalchemy as sa

from dwsched.domain import execution, runs
from dwsched.domain.attempts import Claimed
from dwsched.domain.calendar import day_key
from dwsched.domain.errors import (
    DefinitionNotFound,
    DwschedError,
    InstanceNotFound,
    InstancesExist,
    InstancesMoved,
    InvalidArgument,
    NotFound,
    StoreUnavailable,
)
from dwsched.domain.flowspec import TriggerType, WorkflowSpec
from dwsched.domain.generation import GenerationPlan, ScheduledWorkflow
from dwsched.domain.models import (
    AccessKey,
    EnvType,
    InstanceType,
    KeyStatus,
    NewProject,
    Project,
    ProjectChanges,
    ProjectStatus,
    Status,
    WorkflowDefinition,
    WorkflowInstance,
)
from dwsched.domain.operations import CREATE_KIND, RERUN_KIND, Operation, Result, TaskFilter
from dwsched.domain.queries import InstancePage, InstanceQuery
from dwsched.domain.runs import PlannedInstance, RunRequest
from dwsched.domain.schedule import Cycle
from dwsched.domain.task_instances import TaskInstance, TaskInstancePage, TaskInstanceQuery
from dwsched.domain.transitions import Cause, StatusEvent
from dwsched.domain.workflows import DeployedWorkflow
from dwsched.store import (
    access,
    actions as operator_actions,
    attempts,
    audit,
    claims,
    creation,
    definitions,
    generation,
    instances,
    keys,
    nonces,
    planning,
    projects,
    release,
    sessions,
    signins,
    summaries,
    task_instances,
    transitions,
    workflows,
)
from dwsched.store.bulk import EncodedBatch, ImportBatch, encode
from dwsched.store.connect import WRITE, create_engine
from dwsched.store.ids import advance_ids
from dwsched.store.migrate import current_revision, upgrade
from dwsched.store.secrets import SecretBox
from dwsched.store.statements import HotConnections, raw_transaction

IMPORT_BATCH = 5000
log = logging.getLogger("dwsched.store")


class _TakenOver(Exception):
    """The attempt is no longer this worker's: roll back what was written."""


NONCE_SWEEP_EVERY_MS = 60_000


class Store:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(**{WRITE: True})
        self._last_sweep = 0
        self._last_event_sweep = 0
        self._sweep_lock = threading.Lock()
        self._hot = HotConnections(engine)
        # One backfill planned at a time per process: planning is pure CPU (bounded by
        # domain.runs' caps, tens of ms at worst), and planners queued on this lock leave the
        # interpreter to the event loop, so a burst of them cannot stall /healthz.
        self._planning = threading.Lock()

    @classmethod
    def open(cls, url: str, migrate: bool = True) -> Store:
        """Connect (and migrate to head); StoreUnavailable when the database is unusable."""
        engine = create_engine(url)
        try:
            if migrate:
                upgrade(engine)
            else:
                with engine.connect():
                    pass
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            shown = engine.url.render_as_string(hide_password=True)
            raise StoreUnavailable(f"cannot use the database {shown}: {reason}") from exc
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self._hot.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        with self._writer.begin() as conn:
            yield conn

    def revision(self) -> str | None:
        """The Alembic revision the database is at."""
        return current_revision(self.engine)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    # Workspaces

    def create_project(self, new: NewProject, now_ms: int) -> Project:
        with self.write() as conn:
            return projects.insert_project(conn, new, now_ms)

    def get_project(self, project_id: int) -> Project:
        with self.read() as conn:
            return projects.project_by_id(conn, project_id)

    def list_projects(
        self,
        ids: Sequence[int] | None = None,
        names: Sequence[str] | None = None,
        status: ProjectStatus | None = None,
        offset: int = 0,
        limit: int = 1000,
        name_contains: str | None = None,
    ) -> tuple[int, list[Project]]:
        with self.read() as conn:
            return projects.projects_page(conn, ids, names, status, offset, limit, name_contains)

    def all_projects(self) -> list[Project]:
        with self.read() as conn:
            return projects.all_projects(conn)

    def update_project(self, project_id: int, changes: ProjectChanges, now_ms: int) -> Project:
        with self.write() as conn:
            return projects.update_project(conn, project_id, changes, now_ms)

    def delete_project(self, project_id: int) -> None:
        with self.write() as conn:
            projects.delete_project(conn, project_id)

    # Workflow instances

    def list_instances(self, query: InstanceQuery) -> tuple[str, InstancePage]:
        """The project's time zone and one page of its instances (ProjectNotFound if none)."""
        with raw_transaction(self._hot, write=False) as cursor:
            tz = projects.timezone_on_cursor(cursor, self.engine.dialect, query.project_id)
            return tz, instances.list_instances(cursor, self.engine.dialect, query, tz)

    def get_instance(self, instance_id: int) -> tuple[str, WorkflowInstance]:
        with self.read() as conn:
            found = instances.instances_by_ids(conn, [instance_id]).get(instance_id)
            if found is None:
                raise InstanceNotFound(instance_id)
            return projects.project_timezone(conn, found.project_id), found

    def import_instances(
        self,
        items: Sequence[WorkflowInstance],
        new_projects: Sequence[NewProject],
        replace: bool,
        now_ms: int,
        on_progress: Callable[[int], None] = lambda n: None,
    ) -> None:
        """Write all of `items` (creating `new_projects` first) or nothing."""
        self.import_batches([ImportBatch(items, new_projects)], replace, now_ms, on_progress)

    def import_batches(
        self,
        batches: Iterable[ImportBatch],
        replace: bool,
        now_ms: int,
        on_progress: Callable[[int], None] = lambda n: None,
    ) -> int:
        """Write every batch in one transaction, or nothing (see import_encoded)."""

        def encoded() -> Iterator[EncodedBatch]:
            for batch in batches:
                for start in range(0, max(len(batch.items), 1), IMPORT_BATCH):
                    rows = encode(batch.items[start : start + IMPORT_BATCH])
                    rows.new_projects = list(batch.new_projects) if start == 0 else []
                    yield rows

        return self.import_encoded(encoded(), replace, now_ms, on_progress)

    def import_encoded(
        self,
        batches: Iterable[EncodedBatch],
        replace: bool,
        now_ms: int,
        on_progress: Callable[[int], None] = lambda n: None,
    ) -> int:
        """Write every batch in one transaction, or nothing.

        `batches` is consumed as it is written (a bulk load needs memory for a few batches,
        not for the whole input); an error it raises, or InstancesExist for ids present
        already (unless `replace`), rolls back everything. The engine's id counters are
        moved past the imported ids in the same transaction.
        """
        written = 0
        top_instance_id = top_task_instance_id = 0
        with self.write() as conn:
            for batch in batches:
                top_instance_id = max(top_instance_id, batch.top_instance_id)
                top_task_instance_id = max(top_task_instance_id, batch.top_task_instance_id)
                for new in batch.new_projects:
                    projects.insert_project(conn, new, now_ms)
                existing = instances.existing_instance_ids(conn, batch.ids)
                if existing and not replace:
                    raise InstancesExist(sorted(existing))
                if existing:
                    _keep_workspaces(conn, batch, sorted(existing))
                instances.delete_instances(conn, sorted(existing))
                workflows.ensure_workflows(
                    conn, ((w, *rest) for w, rest in batch.workflows.items()), now_ms
                )
                instances.insert_encoded(conn, batch)
                written += len(batch.ids)
                on_progress(len(batch.ids))
            # The engine's later ids never collide with the imported ones.
            advance_ids(conn, top_instance_id, top_task_instance_id)
        return written

    def iter_instances(
        self, project_id: int, env_type: EnvType | None, biz_day_key: int | None
    ) -> Iterator[WorkflowInstance]:
        with self.read() as conn:
            projects.project_by_id(conn, project_id)
            yield from instances.iter_instances(conn, project_id, env_type, biz_day_key)

    # Workflow definitions and deployed workflows

    def create_definition(
        self, project_id: int, text: str, spec: WorkflowSpec, user: str, now_ms: int, nodes: bool
    ) -> tuple[WorkflowDefinition, DeployedWorkflow]:
        """Store a definition and deploy it (with its nodes, or none as DataWorks'
        CreateWorkflowDefinition does)."""
        with self.write() as conn:
            projects.project_by_id(conn, project_id)
            found = definitions.insert_definition(conn, project_id, text, spec, now_ms)
            deployed = definitions.deploy(conn, found, spec, user, now_ms, with_nodes=nodes)
            return definitions.definition_by_id(conn, found.id), deployed

    def import_definition(
        self, project_id: int, text: str, spec: WorkflowSpec, user: str, now_ms: int
    ) -> tuple[WorkflowDefinition, DeployedWorkflow]:
        """Create the definition with its nodes, or overwrite the one it names: by its spec
        id when that is a definition id of the workspace, else by its name."""
        with self.write() as conn:
            projects.project_by_id(conn, project_id)
            found: WorkflowDefinition | None = None
            if spec.client_id.isdigit():
                try:
                    found = definitions.definition_by_id(conn, int(spec.client_id), project_id)
                except DefinitionNotFound:
                    found = None
            found = found or definitions.definition_by_name(conn, project_id, spec.name)
            if found is None:
                found = definitions.insert_definition(conn, project_id, text, spec, now_ms)
            else:
                found = definitions.update_definition(
                    conn, found.id, project_id, text, spec, now_ms
                )
            deployed = definitions.deploy(conn, found, spec, user, now_ms, with_nodes=True)
            return definitions.definition_by_id(conn, found.id), deployed

    def update_definition(
        self,
        definition_id: int,
        project_id: int,
        text: str,
        spec: WorkflowSpec,
        user: str,
        now_ms: int,
    ) -> DeployedWorkflow:
        """Change the definition's own fields and deploy them as the next version (its nodes
        stay as deployed)."""
        with self.write() as conn:
            found = definitions.update_definition(
                conn, definition_id, project_id, text, spec, now_ms
            )
            return definitions.deploy(conn, found, spec, user, now_ms, with_nodes=False)

    def delete_definition(self, definition_id: int, project_id: int) -> None:
        with self.write() as conn:
            definitions.delete_definition(conn, definition_id, project_id)

    def get_definition(self, definition_id: int, project_id: int | None) -> WorkflowDefinition:
        with self.read() as conn:
            return definitions.definition_by_id(conn, definition_id, project_id)

    def list_definitions(
        self,
        project_id: int,
        kind: str | None,
        name: str | None,
        owner: str | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[WorkflowDefinition]]:
        with self.read() as conn:
            projects.project_by_id(conn, project_id)
            return definitions.definitions_page(conn, project_id, kind, name, owner, offset, limit)

    def get_workflow(self, workflow_id: int) -> DeployedWorkflow:
        with self.read() as conn:
            return definitions.workflow_by_id(conn, workflow_id)

    def list_workflows(
        self,
        project_id: int,
        env_type: EnvType,
        ids: Sequence[int] | None,
        name: str | None,
        owner: str | None,
        trigger_type: TriggerType | None,
        order: tuple[str, bool],
        offset: int,
        limit: int,
    ) -> tuple[int, list[DeployedWorkflow]]:
        with self.read() as conn:
            projects.project_by_id(conn, project_id)
            return definitions.workflows_page(
                conn, project_id, env_type, ids, name, owner, trigger_type, order, offset, limit
            )

    # The engine

    def scheduled_workflows(self) -> list[ScheduledWorkflow]:
        with self.read() as conn:
            return generation.scheduled_workflows(conn)

    def generate(
        self,
        workflow: DeployedWorkflow,
        run_days: Sequence[tuple[date, Sequence[Cycle]]],
        first_run_day: date | None,
        now_ms: int,
    ) -> int:
        """Make the Normal instances of each run date's cycles (idempotent), and remember
        the last date made; the number of instances made."""
        made = 0
        with self.write() as conn:
            if first_run_day is not None:
                generation.set_first_run_day(conn, workflow.id, first_run_day)
            for day, cycles in run_days:
                made += len(
                    generation.make_instances(conn, workflow, cycles, InstanceType.NORMAL, now_ms)
                )
                generation.mark_generated(conn, workflow.id, day)
        return made

    def generate_many(self, plans: Sequence[GenerationPlan], now_ms: int) -> int:
        """`generate` for many workflows in one transaction."""
        with self.write() as conn:
            for p in plans:
                if p.first_run_day is not None:
                    generation.set_first_run_day(conn, p.workflow.id, p.first_run_day)
            days = sorted({day for p in plans for day, _ in p.run_days})
            made = 0
            for day in days:
                items = [(p.workflow, c) for p in plans for d, c in p.run_days if d == day]
                made += sum(
                    len(ids)
                    for ids in generation.make_instances_many(
                        conn, items, InstanceType.NORMAL, now_ms
                    ).values()
                )
            for p in plans:
                if p.run_days:
                    generation.mark_generated(conn, p.workflow.id, p.run_days[-1][0])
        return made

    def plan(self, now_ms: int, limit: int = 500) -> int:
        """Apply the moves that time and upstreams allow (domain.execution.plan) to the
        unfinished instances; the number of task instances moved. Old status events are
        swept from here too, now and then."""
        self._sweep_events(now_ms)
        with self.read() as conn:  # most ticks have nothing to move: no write lock for them
            found = planning.unfinished_instances(conn, limit)
        if not any(execution.plan(states, now_ms) for states in found.values()):
            return 0
        with self.write() as conn:
            ids = planning.unfinished_instance_ids(conn, limit)
            planning.lock_instances(conn, ids)
            made = planning.plan_instances(conn, ids, now_ms)
            for instance_id, started in sorted(transitions.earliest_starts(made).items()):
                transitions.derive(conn, instance_id, now_ms, Cause.PLAN, started)
        return len(made)

    def claim_tasks(
        self,
        worker: str,
        group_slots: Mapping[str, int],
        default_slots: int,
        limit: int,
        now_ms: int,
    ) -> tuple[list[Claimed], int]:
        """Up to `limit` task instances for `worker`, each in a resource group with a free
        slot (counted over every worker), in one transaction; VIRTUAL ones end as they are
        claimed ((the claims, how many VIRTUAL ended))."""
        with self.read() as conn:  # an idle tick takes no write lock
            if not claims.has_waiting(conn, now_ms):
                return [], 0
        with self.write() as conn:
            claims.lock_claims(conn)  # slots are counted over every worker: one at a time
            running = claims.running_by_group(conn)

            def free(group: str) -> int:
                return group_slots.get(group, default_slots) - running.get(group, 0)

            full = {g for g in set(running) | set(group_slots) if free(g) <= 0}
            return claims.claim_many(conn, worker, free, full, limit, now_ms)

    def record_process(self, task_instance_id: int, pid: int, identity: str | None) -> None:
        with self.write() as conn:
            attempts.record_process(conn, task_instance_id, pid, identity)

    def set_checking(self, claimed: Claimed, log: str, now_ms: int) -> None:
        with self.write() as conn:
            attempts.set_checking(conn, claimed, log, now_ms)

    def finish_task(
        self,
        claimed: Claimed,
        status: Status,
        exit_code: int | None,
        log: str,
        now_ms: int,
        retry_at: int | None = None,
        unchosen_outputs: Sequence[str] = (),
    ) -> bool:
        """End the attempt; False (nothing written) when it was no longer this worker's."""
        try:
            with self.write() as conn:
                if unchosen_outputs:
                    attempts.unchoose(conn, claimed, unchosen_outputs, now_ms)
                if not attempts.finish(conn, claimed, status, exit_code, log, now_ms, retry_at):
                    raise _TakenOver
        except _TakenOver:
            return False
        return True

    def heartbeat(self, worker: str, task_instance_ids: Sequence[int], now_ms: int) -> set[int]:
        """Beat for the attempts; the ids that are still this worker's."""
        with self.write() as conn:
            return attempts.heartbeat(conn, worker, task_instance_ids, now_ms)

    def attempts_of(self, worker: str, task_instance_ids: Sequence[int]) -> set[int]:
        """Which of these attempts in progress are still `worker`'s (read only)."""
        with self.read() as conn:
            return attempts.attempts_of(conn, worker, task_instance_ids)

    def stale_attempts(self, heartbeat_before: int) -> list[Claimed]:
        with self.read() as conn:
            return attempts.stale_attempts(conn, heartbeat_before)

    def attempt_process(self, task_instance_id: int) -> tuple[int | None, str | None, str | None]:
        with self.read() as conn:
            return attempts.process_of(conn, task_instance_id)

    def attempt_heartbeat(self, task_instance_id: int) -> int | None:
        with self.read() as conn:
            return attempts.heartbeat_of(conn, task_instance_id)

    def save_log(self, claimed: Claimed, log: str) -> None:
        with self.write() as conn:
            attempts.append_log(conn, claimed, log)

    # Status events: the stream alerts and metrics read (docs/events.md)

    def status_events(self, consumer: str, now_ms: int, limit: int = 1000) -> list[StatusEvent]:
        """The next status events for `consumer` (registered at the newest event on its
        first call), oldest first; they stay next until `advance_events`."""
        with self.write() as conn:
            transitions.register(conn, consumer, now_ms)
            return transitions.events_after(conn, consumer, limit)

    def advance_events(self, consumer: str, last_event_id: int, now_ms: int) -> None:
        """`consumer` has handled the events up to `last_event_id`."""
        with self.write() as conn:
            transitions.advance(conn, consumer, last_event_id, now_ms)

    def sweep_events(self, now_ms: int) -> int:
        """Delete the events past their retention (docs/events.md); how many."""
        with self.write() as conn:
            return transitions.sweep(conn, now_ms)

    def _sweep_events(self, now_ms: int) -> None:
        """sweep_events, at most every transitions.SWEEP_EVERY_MS (the planner calls it)."""
        if now_ms - self._last_event_sweep < transitions.SWEEP_EVERY_MS:
            return
        self._last_event_sweep = now_ms
        self.sweep_events(now_ms)

    # Access keys and replay protection

    secrets: SecretBox | None = None
    """Seals the AccessKeySecrets written and opens the sealed ones read (`use_secrets`);
    None (library use, tests): secrets are written as given, and only plaintext ones and
    those this process sealed or opened already can be read."""

    def use_secrets(self, box: SecretBox) -> None:
        """Seal and open AccessKeySecrets with `box` (the server key) from now on."""
        self.secrets = box

    def create_key(self, key: AccessKey) -> None:
        """Store a key, its secret sealed (`key.secret` is the plaintext)."""
        with self.write() as conn:
            keys.insert_key(conn, key, self.secrets)

    @contextmanager
    def key_session(self, access_key_id: str, wait: bool = True) -> Iterator[keys.KeySession]:
        """A request's credential check in one write transaction: its key (None if there is
        none), then its nonce (`KeySession.remember_nonce`), committed together at the end.

        `wait` false: StoreBusy at once, instead of queueing, while another writer holds
        the SQLite database.
        """
        with raw_transaction(self._hot, write=True, wait=wait) as cursor:
            session = keys.KeySession(cursor, self.engine.dialect, access_key_id, self.secrets)
            yield session
        if session.now_ms is not None:
            self._sweep_nonces(session.now_ms)

    def list_keys(self) -> list[AccessKey]:
        """Every key, its secret as stored (sealed)."""
        with self.read() as conn:
            return keys.all_keys(conn)

    def sealed_key_ids(self) -> set[str]:
        """The ids of the server keys the stored secrets are sealed with."""
        with self.read() as conn:
            return keys.sealed_key_ids(conn)

    def seal_plaintext_keys(self) -> int:
        """Seal the secrets stored in plaintext before sealing existed, in one transaction,
        with the server key of `use_secrets`; how many there were."""
        if self.secrets is None:
            raise RuntimeError("no server key to seal secrets with (Store.use_secrets)")
        with self.write() as conn:
            return keys.seal_plaintext(conn, self.secrets)

    def reseal_keys(self, new: SecretBox) -> int:
        """Seal every secret with `new` instead of the current server key, in one
        transaction, then use `new`; how many secrets were sealed anew."""
        if self.secrets is None:
            raise RuntimeError("no current server key to open secrets with (Store.use_secrets)")
        with self.write() as conn:
            done = keys.reseal(conn, new, self.secrets)
        self.secrets = new
        return done

    def set_key_status(self, access_key_id: str, status: KeyStatus) -> None:
        with self.write() as conn:
            keys.set_key_status(conn, access_key_id, status)

    def delete_key(self, access_key_id: str) -> None:
        with self.write() as conn:
            keys.delete_key(conn, access_key_id)

    def remember_nonce(
        self, access_key_id: str, nonce: str, expires_at: int, now_ms: int, wait: bool = True
    ) -> bool:
        """Record a nonce; False when this key used it already within the window."""
        with raw_transaction(self._hot, write=True, wait=wait) as cursor:
            fresh = nonces.remember_nonce(
                cursor, self.engine.dialect, access_key_id, nonce, expires_at, now_ms
            )
        self._sweep_nonces(now_ms)
        return fresh

    def _sweep_nonces(self, now_ms: int) -> None:
        if now_ms - self._last_sweep > NONCE_SWEEP_EVERY_MS and self._sweep_lock.acquire(
            blocking=False
        ):
            try:
                self._last_sweep = now_ms
                with self.write() as conn:
                    nonces.sweep_nonces(conn, now_ms)
            finally:
                self._sweep_lock.release()

    # Task instances

    def list_task_instances(self, query: TaskInstanceQuery) -> tuple[str, TaskInstancePage]:
        """The project's time zone and one page of its task instances of the query's
        BizDate, taken in that zone (ProjectNotFound if there is no such workspace)."""
        with self.read() as conn:
            tz = projects.project_timezone(conn, query.project_id)
            day = day_key(query.biz_day(tz))
            found = task_instances.partition_id(conn, query.project_id, query.env_type, day)
            if found is None:
                return tz, TaskInstancePage(0, ())
            return tz, task_instances.task_instances_page(conn, found, query)

    def get_task_instance(self, task_instance_id: int) -> tuple[str, TaskInstance]:
        """The task instance and its project's time zone (TaskInstanceNotFound if none)."""
        with self.read() as conn:
            found = task_instances.task_instance_by_id(conn, task_instance_id)
            return projects.project_timezone(conn, found.project_id), found

    def task_instance_log(self, task_instance_id: int, run_number: int | None) -> str:
        """The log of attempt `run_number`, by default the latest.

        An instance that has not run yet answers an empty log for its run 1 (the RunNumber
        it shows). TaskInstanceNotFound for no such instance; NotFound for a run it has not
        had.
        """
        with self.read() as conn:
            latest = task_instances.run_number_of(conn, task_instance_id)
            wanted = latest if run_number is None else run_number
            if latest == 0 and wanted <= 1:
                return ""
            log = attempts.attempt_log(conn, task_instance_id, wanted)
            if log is None:
                runs = f"its runs are 1 to {latest}" if latest else "it has not run yet"
                raise NotFound(f"The task instance {task_instance_id} has no run {wanted}: {runs}.")
            return log

    def neighbour_task_instances(
        self, task_instance_id: int, upstream: bool, offset: int, limit: int
    ) -> tuple[str, int, list[TaskInstance]]:
        """The project's time zone, how many direct upstreams (or downstreams) the task
        instance has in its workflow instance, and those from `offset`, by id ascending."""
        with self.read() as conn:
            found = task_instances.task_instance_by_id(conn, task_instance_id)
            tz = projects.project_timezone(conn, found.project_id)
            ids = list(found.upstream) if upstream else task_instances.downstream_ids(conn, found)
            chosen = ids[offset : offset + limit]
            by_id = task_instances.task_instances_by_ids(conn, chosen)
            return tz, len(ids), [by_id[i] for i in chosen if i in by_id]

    # Operations: CreateWorkflowInstances, and the operator's actions on instances

    def plan_run(self, request: RunRequest, now_ms: int) -> list[PlannedInstance]:
        """The instances `request` would make (InvalidArgument when it cannot be done)."""
        with self._planning, self.read() as conn:
            tz = projects.project_timezone(conn, request.project_id)
            found = _run_workflows(conn, request)
            runs.check_parameters(request, found.values())
            return runs.plan_run(request, found, tz, now_ms)

    def submit_run(self, operation_id: str, request: RunRequest, user: str, now_ms: int) -> int:
        """Validate `request` and record it as a Creating operation (the scheduler creates
        its instances: create_pending); how many instances it will make."""
        count = len(self.plan_run(request, now_ms))
        with self.write() as conn:
            creation.insert_operation(
                conn,
                operation_id,
                CREATE_KIND,
                request.project_id,
                creation.CREATING,
                msgspec.json.encode(request).decode(),
                user,
                now_ms,
            )
        return count

    def create_pending(self, now_ms: int) -> int:
        """Create the instances of every Creating operation, each in one transaction (a
        crash leaves it Creating: it is created again, whole, after restart); the number of
        instances made."""
        with self.read() as conn:
            pending = creation.creating(conn)
        made = 0
        for operation_id, request, created_ms, user in pending:
            try:
                with self.write() as conn:
                    if not creation.take_creation(conn, operation_id, now_ms):
                        continue
                    tz = projects.project_timezone(conn, request.project_id)
                    found = _run_workflows(conn, request)
                    # (plan_run holds the lock around a read, which never waits for this
                    # write: the two cannot deadlock)
                    with self._planning:
                        planned = runs.plan_run(request, found, tz, created_ms)
                    result = creation.create_instances(
                        conn, operation_id, request, planned, user, now_ms
                    )
                    made += len(result["WorkflowInstanceIds"])
            except DwschedError as exc:
                with self.write() as conn:
                    creation.fail_creation(conn, operation_id, exc.message, now_ms)
            except Exception:
                # Never let one operation stop the others: it fails, the cause is logged.
                log.exception("creating operation_id=%s failed", operation_id)
                with self.write() as conn:
                    creation.fail_creation(
                        conn,
                        operation_id,
                        "The instances could not be created (see the server log).",
                        now_ms,
                    )
        return made

    def release_queued(self, now_ms: int) -> int:
        """Let created instances run as their operation allows (Parallelism, RunPolicy);
        the number released."""
        with self.read() as conn:
            queued = release.queued_operations(conn)
        released = 0
        for operation_id, request in queued:
            try:
                with self.write() as conn:
                    tz = projects.project_timezone(conn, request.project_id)
                    allowed = runs.in_window(request.run_policy, now_ms, tz)
                    released += release.release(conn, operation_id, request, allowed)
            except Exception:
                log.exception("releasing operation_id=%s failed", operation_id)
        return released

    def operation(self, operation_id: str, kind: str) -> creation.OperationRecord:
        with self.read() as conn:
            return creation.operation_by_id(conn, operation_id, kind)

    def task_operation(
        self,
        op: Operation,
        ids: Sequence[int],
        user: str,
        comment: str,
        now_ms: int,
        latest_config: bool = False,
    ) -> dict[int, Result]:
        with self.write() as conn:
            claims.lock_claims(conn)
            return operator_actions.task_operation(
                conn, op, ids, user, comment, now_ms, latest_config
            )

    def start_instances(self, ids: Sequence[int], user: str, now_ms: int) -> dict[int, Result]:
        with self.write() as conn:
            return {i: operator_actions.start_instance(conn, i, user, now_ms) for i in ids}

    def stop_instances(
        self, ids: Sequence[int], user: str, comment: str, now_ms: int
    ) -> dict[int, Result]:
        with self.write() as conn:
            claims.lock_claims(conn)
            return {
                i: operator_actions.stop_instance(conn, i, user, comment, now_ms)
                for i in sorted(ids)
            }

    def rerun_instances(
        self,
        operation_id: str,
        project_id: int,
        match: Mapping[str, object],
        wanted: TaskFilter,
        user: str,
        now_ms: int,
    ) -> creation.OperationRecord:
        """RerunWorkflowInstances: rerun the matching instances' matching tasks, recorded
        as an operation (Success, or Failure with what could not be rerun)."""
        with self.write() as conn:
            claims.lock_claims(conn)
            projects.project_by_id(conn, project_id)
            ids = operator_actions.matching_instances(conn, project_id, **match)  # type: ignore[arg-type]
            results = {
                i: operator_actions.rerun_instance(conn, i, wanted, user, now_ms) for i in ids
            }
            failed = [f"{i}: {r.message}" for i, r in results.items() if not r.success]
            if not ids:
                failed = ["no workflow instance matches"]
            status = "Failure" if failed else "Success"
            creation.insert_operation(
                conn,
                operation_id,
                RERUN_KIND,
                project_id,
                status,
                json.dumps({k: v for k, v in match.items()}, default=str),
                user,
                now_ms,
                result={"WorkflowInstanceIds": [i for i, r in results.items() if r.success]},
                failure_message="; ".join(failed),
            )
            return creation.operation_by_id(conn, operation_id, RERUN_KIND)

    def trigger_task(
        self, task_id: int, trigger_time: int, env: EnvType, user: str, now_ms: int
    ) -> Result:
        """TriggerSchedulerTaskInstance: fire the HTTP trigger node's instance of that
        scheduled time (TaskInstanceNotFound when there is none)."""
        with self.write() as conn:
            claims.lock_claims(conn)
            found = operator_actions.scheduled_task_instance(conn, task_id, trigger_time, env)
            if found is None:
                raise NotFound(
                    f"The task {task_id} has no {env} instance scheduled at {trigger_time}."
                )
            return operator_actions.task_operation(
                conn, Operation.TRIGGER, [found], user, "", now_ms
            )[found]

    def operation_logs(
        self, task_instance_id: int, start_ms: int, end_ms: int, offset: int, limit: int
    ) -> tuple[int, list[sa.Row[Any]]]:
        with self.read() as conn:
            task_instances.task_instance_by_id(conn, task_instance_id)
            return operator_actions.operation_logs(
                conn, task_instance_id, start_ms, end_ms, offset, limit
            )

    # Access control: users, groups, policies, workspace members

    def create_user(self, name: str, display_name: str, now_ms: int) -> access.User:
        with self.write() as conn:
            return access.create_user(conn, name, display_name, now_ms)

    def user(self, name: str) -> access.User:
        with self.read() as conn:
            return access.user_by_name(conn, name)

    def users(self) -> list[access.User]:
        with self.read() as conn:
            return access.all_users(conn)

    def delete_user(self, name: str) -> None:
        with self.write() as conn:
            access.delete_user(conn, name)

    def create_group(self, name: str, now_ms: int) -> None:
        with self.write() as conn:
            access.create_group(conn, name, now_ms)

    def add_to_group(self, group: str, user: str) -> None:
        with self.write() as conn:
            access.add_to_group(conn, group, user)

    def groups(self) -> list[tuple[str, list[str]]]:
        with self.read() as conn:
            return access.groups(conn)

    def create_policy(self, name: str, document: str, description: str, now_ms: int) -> None:
        with self.write() as conn:
            access.create_policy(conn, name, document, description, now_ms)

    def custom_policies(self) -> list[tuple[str, str, str]]:
        with self.read() as conn:
            return access.custom_policies(conn)

    def policy_exists(self, name: str) -> bool:
        with self.read() as conn:
            return access.policy_exists(conn, name)

    def delete_policy(self, name: str) -> None:
        with self.write() as conn:
            access.delete_policy(conn, name)

    def attach_policy(self, policy: str, principal_type: str, name: str, attach: bool) -> None:
        with self.write() as conn:
            principal = access.principal_id(conn, principal_type, name)
            if attach:
                access.attach(conn, policy, principal_type, principal)
            else:
                access.detach(conn, policy, principal_type, principal)

    def attachments(self) -> list[tuple[str, str, str]]:
        with self.read() as conn:
            return access.attachments(conn)

    def set_key_user(self, access_key_id: str, user: str) -> None:
        with self.write() as conn:
            access.set_key_user(conn, access_key_id, user)

    def key_users(self) -> dict[str, str]:
        with self.read() as conn:
            return access.key_users(conn)

    def principal(self, access_key_id: str) -> access.Principal | None:
        with self.read() as conn:
            return access.principal_of_key(conn, access_key_id)

    def principal_of_user(self, user_id: int) -> access.Principal:
        with self.read() as conn:
            return access.principal_of_user(conn, user_id)

    def set_password(self, name: str, password_hash: str) -> None:
        """Set a user's password hash; the user's console sessions end."""
        with self.write() as conn:
            access.set_password(conn, name, password_hash)

    def end_sessions(self, name: str) -> int:
        """End every console session of a user, wherever it was opened; how many."""
        with self.write() as conn:
            return access.end_sessions(conn, name)

    def password_of(self, name: str) -> tuple[int, str] | None:
        with self.read() as conn:
            return access.password_of(conn, name)

    # Web console sessions (store.sessions); `digest` is the cookie's SHA-256.
    def create_session(
        self, digest: str, user_id: int, csrf_token: str, now_ms: int, expires_at: int
    ) -> None:
        with self.write() as conn:
            sessions.create(conn, digest, user_id, csrf_token, now_ms, expires_at)

    def session(self, digest: str, now_ms: int) -> sessions.Session | None:
        with self.read() as conn:
            return sessions.find(conn, digest, now_ms)

    def touch_session(self, digest: str, now_ms: int, expires_at: int) -> None:
        with self.write() as conn:
            sessions.touch(conn, digest, now_ms, expires_at)

    def end_session(self, digest: str) -> None:
        with self.write() as conn:
            sessions.end(conn, digest)

    # Console sign-in throttling (store.signins; the rules are web.signin's).
    def sign_in_trusted(self, user_name: str, source: str, now_ms: int) -> bool:
        with self.read() as conn:
            return signins.is_trusted(conn, user_name, source, now_ms)

    def claim_sign_in(
        self,
        counters: Sequence[signins.Counter],
        now_ms: int,
        hold_ms: Callable[[str, int], int],
        keep_ms: int,
    ) -> signins.Claim:
        """Admit a try unless one of `counters` refuses tries now (then `wait_ms`, nothing
        written). An admitted try is counted as failed at once, in one transaction with the
        check, so that concurrent tries on any process are counted before their passwords
        are checked; `hold_ms(kind, failures)` is how long a counter then refuses tries, and
        it lapses `keep_ms` after its last try. `settle_sign_in` takes the count back."""
        ordered = tuple(sorted(set(counters)))
        with self.write() as conn:
            found = signins.counts(conn, ordered, now_ms)
            until = max((held for _, held in found.values()), default=0)
            if until > now_ms:
                return signins.Claim(ordered, now_ms, {}, wait_ms=until - now_ms)
            blocked: dict[signins.Counter, int] = {}
            for counter in ordered:
                failures = found.get(counter, (0, 0))[0] + 1
                blocked[counter] = now_ms + hold_ms(counter.kind, failures)
                signins.count_failure(
                    conn, counter, failures, blocked[counter], now_ms, now_ms + keep_ms
                )
        return signins.Claim(ordered, now_ms, blocked)

    def settle_sign_in(
        self,
        claim: signins.Claim,
        forget: Sequence[str] = (),
        trust: tuple[str, str, int] | None = None,
    ) -> None:
        """Take back the failure `claim` counted: counters of the kinds in `forget` are
        deleted, the others lose one failure and open again (unless a later try holds
        them); `trust` (user name, address, until) remembers a successful sign-in."""
        with self.write() as conn:
            for counter in claim.counters:
                if counter.kind in forget:
                    signins.forget(conn, counter)
                else:
                    signins.refund(conn, counter, claim.blocked[counter], claim.at_ms)
                    signins.forget_if_clear(conn, counter, claim.at_ms)
            if trust is not None:
                signins.trust(conn, *trust)

    def sweep_sign_ins(self, now_ms: int) -> int:
        with self.write() as conn:
            return signins.sweep(conn, now_ms)

    def status_counts(
        self, project_id: int, env: EnvType, days: Sequence[date]
    ) -> dict[date, dict[str, int]]:
        with self.read() as conn:
            return summaries.status_counts(conn, project_id, env, days)

    def latest_by_workflow(
        self,
        project_id: int,
        env: EnvType,
        days: Sequence[date],
        workflow_ids: Sequence[int],
        per_workflow: int,
        before_ms: int,
    ) -> dict[int, list[tuple[int, date, str, int]]]:
        with self.read() as conn:
            return summaries.latest_by_workflow(
                conn, project_id, env, days, workflow_ids, per_workflow, before_ms
            )

    def member_roles(self, project_id: int, user_id: int) -> set[str] | None:
        with self.read() as conn:
            return access.member_roles_of(conn, project_id, user_id)

    def member_projects(self, user_id: int) -> set[int]:
        with self.read() as conn:
            return access.member_projects(conn, user_id)

    def projects_of(self, kind: str, ids: Sequence[Any]) -> dict[Any, int]:
        with self.read() as conn:
            return access.projects_of(conn, kind, ids)

    def add_member(self, project_id: int, user_id: int, roles: Sequence[str], now_ms: int) -> None:
        with self.write() as conn:
            projects.project_by_id(conn, project_id)
            _user_by_id(conn, user_id)
            access.add_member(conn, project_id, user_id, roles, now_ms)

    def change_roles(
        self, project_id: int, user_id: int, roles: Sequence[str], grant: bool
    ) -> None:
        with self.write() as conn:
            projects.project_by_id(conn, project_id)
            access.require_member(conn, project_id, user_id)
            if grant:
                access.grant(conn, project_id, user_id, roles)
            else:
                access.revoke(conn, project_id, user_id, roles)

    def remove_member(self, project_id: int, user_id: int) -> None:
        with self.write() as conn:
            projects.project_by_id(conn, project_id)
            access.require_member(conn, project_id, user_id)
            access.remove_member(conn, project_id, user_id)

    def members(
        self, project_id: int, user_ids: Sequence[int] | None, role_codes: Sequence[str] | None
    ) -> list[tuple[access.User, str, set[str]]]:
        with self.read() as conn:
            projects.project_by_id(conn, project_id)
            return access.members(conn, project_id, user_ids, role_codes)

    def record_audit(self, entry: audit.AuditEntry) -> None:
        with self.write() as conn:
            audit.record(conn, entry)

    def audit_entries(
        self,
        since_ms: int | None = None,
        user: str | None = None,
        actions: Sequence[str] | None = None,
        project_id: int | None = None,
        limit: int = 100,
    ) -> list[audit.AuditEntry]:
        with self.read() as conn:
            return audit.entries(conn, since_ms, user, actions, project_id, limit)


def _user_by_id(conn: sa.Connection, user_id: int) -> access.User:
    found = access.user_by_id(conn, user_id)
    if found is None:
        raise InvalidArgument("UserId", f"The parameter UserId {user_id} names no user.")
    return found


def _keep_workspaces(conn: sa.Connection, batch: EncodedBatch, ids: Sequence[int]) -> None:
    """InstancesMoved when a replaced instance would change workspace: ids stay in their
    workspace for ever, which authorisation relies on (docs/access.md)."""
    was = access.projects_of(conn, "WorkflowInstance", ids)
    wanted = set(ids)
    for (project_id, _, _), rows in batch.rows.items():
        for row in rows:
            if row[0] in wanted and was.get(row[0], project_id) != project_id:
                raise InstancesMoved(row[0], was[row[0]], project_id)


def _run_workflows(conn: sa.Connection, request: RunRequest) -> dict[int, DeployedWorkflow]:
    """The workflows a CreateWorkflowInstances request runs: its WorkflowId's, or (1) those
    holding the tasks it names, in its workspace; InvalidArgument WorkflowId when none."""
    if request.workflow_id != runs.DEFAULT_WORKFLOW:
        try:
            workflow = definitions.workflow_by_id(conn, request.workflow_id)
        except NotFound:
            workflow = None
        if workflow is None or workflow.project_id != request.project_id:
            raise InvalidArgument(
                "WorkflowId",
                f"The parameter WorkflowId {request.workflow_id} names no deployed workflow "
                f"of the workspace {request.project_id}.",
            )
        return {workflow.id: workflow}
    ids = creation.workflows_of_tasks(conn, request.project_id, request.task_ids)
    return {w.id: w for w, _, _ in definitions.workflows_by_ids(conn, ids)}
