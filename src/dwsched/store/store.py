"""The one storage interface: a facade owning the database and its transactions.

`read()` and `write()` are the unit of work: each yields a `Tx` (store/unit.py) whose
repositories (`tx.projects`, `tx.instances`, ...) run on one transaction. Reads run in a
plain transaction (a consistent snapshot for a count and its page); writes in a write
transaction (`BEGIN IMMEDIATE` on SQLite).

A Store method is a unit of work that spans nouns or has a transaction shape of its own (a
read before the write, a lock, a rollback, a transaction per item); a one-noun query is a
repository method (docs/store.md). So what stays here: the hot paths on raw cursors (the
instance listing, a request's key and nonce), imports in batches, and the units of the
engine (generation, planning, claiming, ending an attempt) and of the operations (planning
and creating runs, releasing them, the operator's actions), with the planning lock.

The server key that seals AccessKeySecrets is given at construction (`secrets`) and never
changes; `sealing_with` is the same database with another one.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date

import msgspec
import sqlalchemy as sa

from dwsched.domain import execution, runs
from dwsched.domain.alerting import Leased
from dwsched.domain.attempts import Claimed
from dwsched.domain.errors import (
    DwschedError,
    InstancesExist,
    InstancesMoved,
    InvalidArgument,
    NotFound,
    ScheduledInstanceNotFound,
    StoreUnavailable,
)
from dwsched.domain.gauges import StateGauges
from dwsched.domain.generation import GenerationPlan
from dwsched.domain.models import (
    EnvType,
    InstanceType,
    NewProject,
    Status,
    WorkflowInstance,
)
from dwsched.domain.operations import (
    CREATE_KIND,
    RERUN_KIND,
    InstanceMatch,
    Operation,
    OperationRecord,
    Result,
    TaskFilter,
)
from dwsched.domain.queries import InstancePage, InstanceQuery
from dwsched.domain.runs import PlannedInstance, RunRequest
from dwsched.domain.schedule import Cycle
from dwsched.domain.transitions import Cause
from dwsched.domain.workers import slot_limit
from dwsched.domain.workflows import DeployedWorkflow
from dwsched.store import (
    actions as operator_actions,
    alert_eval,
    attempts,
    claims,
    creation,
    definitions,
    dependencies,
    generation,
    instances,
    keys,
    nonces,
    planning,
    projects,
    release,
    resource_groups,
    summaries,
    task_instances,
    transitions,
    workflows,
)
from dwsched.store.bulk import EncodedBatch, ImportBatch, encode
from dwsched.store.connect import WRITE, create_engine
from dwsched.store.dialect import is_sqlite
from dwsched.store.ids import (
    TASK_INSTANCE_ID_BASE,
    advance_ids,
    task_instance_ids_among,
    workflow_numbering,
)
from dwsched.store.migrate import current_revision, head_revision, stored_revision, upgrade
from dwsched.store.outbox import Outbox
from dwsched.store.secrets import SecretBox
from dwsched.store.statements import HotConnections, raw_transaction
from dwsched.store.unit import Tx

IMPORT_BATCH = 5000
log = logging.getLogger("dwsched.store")


class _TakenOver(Exception):
    """The attempt is no longer this worker's: roll back what was written."""


NONCE_SWEEP_EVERY_MS = 60_000
# The planner's every-second round (Store.plan, not thorough) looks at the waiting tasks
# changed since its previous round began, less this margin (other processes' clocks), and
# at the status events after its cursor (PLANNER), at most EVENTS_PER_ROUND a round.
CHANGE_MARGIN_MS = 30_000
PLANNER = "planner"
EVENTS_PER_ROUND = 5_000


class Store:
    def __init__(self, database: sa.Engine, secrets: SecretBox | None = None) -> None:
        self.database = database
        self._secrets = secrets
        self._writer = database.execution_options(**{WRITE: True})
        self._last_sweep = 0
        self._last_event_sweep = 0
        self._quick_since: int | None = None  # the last planning round's start
        self._backlog = False  # it found more than it could take
        self._planner_registered = False
        self._sweep_lock = threading.Lock()
        self._hot = HotConnections(database)
        # One backfill planned at a time per process: planning is pure CPU (bounded by
        # domain.runs' caps, tens of ms at worst), and planners queued on this lock leave the
        # interpreter to the event loop, so a burst of them cannot stall /healthz.
        self._planning = threading.Lock()

    @classmethod
    def open(cls, url: str, migrate: bool = True, secrets: SecretBox | None = None) -> Store:
        """Connect (and migrate to head); StoreUnavailable when the database is unusable."""
        database = create_engine(url)
        try:
            if migrate:
                upgrade(database)
            else:
                with database.connect():
                    pass
        except sa.exc.DBAPIError as exc:
            database.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            shown = database.url.render_as_string(hide_password=True)
            raise StoreUnavailable(f"cannot use the database {shown}: {reason}") from exc
        return cls(database, secrets)

    @property
    def secrets(self) -> SecretBox | None:
        """The server key: it seals the AccessKeySecrets written and opens the sealed ones
        read. None (library use, tests): secrets are written as given, and only plaintext
        ones and those this process sealed or opened already can be read."""
        return self._secrets

    def sealing_with(self, box: SecretBox) -> Store:
        """This store (the same database, connections and locks; closing either closes
        both) with `box` as its server key."""
        other = copy.copy(self)
        other._secrets = box
        return other

    @property
    def is_sqlite(self) -> bool:
        """The database is SQLite (dialect.is_sqlite): in this process, one writer at a
        time, short statements without a network round trip."""
        return is_sqlite(self.database.dialect)

    def close(self) -> None:
        self._hot.close()
        self.database.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A unit of work that reads: one transaction, committed at the end."""
        with self.database.begin() as conn:
            yield Tx(conn, self._secrets)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A unit of work that writes: one write transaction, committed at the end (rolled
        back on an exception)."""
        with self._writer.begin() as conn:
            yield Tx(conn, self._secrets)

    # The connection of the units of work below (they call store modules' functions on it).

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        with self.database.begin() as conn:
            yield conn

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        with self._writer.begin() as conn:
            yield conn

    def revision(self) -> str | None:
        """The Alembic revision the database is at."""
        return current_revision(self.database)

    def ping(self) -> None:
        with self.database.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def at_head(self) -> bool:
        """Whether the database's schema is the newest this code knows (every migration
        applied); raises what the driver raises when the database cannot be reached."""
        return stored_revision(self.database) == head_revision()

    def state_gauges(self, first: date, last: date) -> StateGauges:
        """What a metrics scrape shows of the database, in one read: instances of the
        BizDates `first` to `last` by status, and per resource group the task instances
        waiting for a slot, running, and its slots (store.summaries)."""
        with self._reading() as conn:
            return summaries.state_gauges(conn, first, last)

    # Workflow instances: the listing (on the raw cursor) and imports

    def list_instances(self, query: InstanceQuery) -> tuple[str, InstancePage]:
        """The project's time zone and one page of its instances (ProjectNotFound if none)."""
        with raw_transaction(self._hot, write=False) as cursor:
            tz = projects.timezone_on_cursor(cursor, self.database.dialect, query.project_id)
            return tz, instances.list_instances(cursor, self.database.dialect, query, tz)

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
        top_instance_id = top_task_instance_id = top_high_id = 0
        with self.write() as tx:
            conn = tx.conn
            numbered = workflow_numbering(conn)
            for batch in batches:
                top_instance_id = max(top_instance_id, batch.top_instance_id)
                top_task_instance_id = max(top_task_instance_id, batch.top_task_instance_id)
                if batch.top_high_id:
                    top_high_id = max(top_high_id, batch.top_high_id)
                    taken = task_instance_ids_among(conn, batch.ids)
                    if taken:
                        raise InvalidArgument(
                            "Id",
                            f"The parameter Id {taken[0]} is a task instance's id on this "
                            "database: workflow instance ids at or above "
                            f"{TASK_INSTANCE_ID_BASE} must name no task instance.",
                        )
                for new in batch.new_projects:
                    tx.projects.create(new, now_ms)
                existing = instances.existing_instance_ids(conn, batch.ids)
                if existing and not replace:
                    raise InstancesExist(sorted(existing))
                if existing:
                    _keep_workspaces(tx, batch, sorted(existing))
                instances.delete_instances(conn, sorted(existing))
                workflows.ensure_workflows(
                    conn, ((w, *rest) for w, rest in batch.workflows.items()), now_ms
                )
                instances.insert_encoded(conn, batch)
                written += len(batch.ids)
                on_progress(len(batch.ids))
            # The engine's later ids never collide with the imported ones.
            advance_ids(conn, top_instance_id, top_task_instance_id, top_high_id, numbered)
        return written

    # The engine

    def generate(
        self,
        workflow: DeployedWorkflow,
        run_days: Sequence[tuple[date, Sequence[Cycle]]],
        first_run_day: date | None,
        now_ms: int,
    ) -> int:
        """Make the Normal instances of each run date's cycles (in date order; idempotent),
        and remember the last date made; the number of instances made."""
        return self.generate_many([GenerationPlan(workflow, run_days, first_run_day)], now_ms)

    def generate_many(self, plans: Sequence[GenerationPlan], now_ms: int) -> int:
        """`generate` for many workflows in one transaction."""
        with self._writing() as conn:
            generation.set_first_run_day(
                conn,
                {p.workflow.id: p.first_run_day for p in plans if p.first_run_day is not None},
            )
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
            generation.mark_generated(
                conn, {p.workflow.id: p.run_days[-1][0] for p in plans if p.run_days}
            )
        return made

    def plan(self, now_ms: int, limit: int = 500, thorough: bool = True) -> int:
        """Apply the moves that time and upstreams allow (domain.execution.plan) to the
        unfinished instances; the number of task instances moved. Old status events are
        swept from here too, now and then.

        Not `thorough` (the planner's every-second round): of the waiting tasks, only those
        changed since the previous round began (less CHANGE_MARGIN_MS, for the clocks of
        other processes), and the instances that the tasks which became Success since then
        may have made movable (read from the status events in commit order, from the
        planner's cursor); a thorough round (the planner's first, then one a minute, and
        any round after one that found more than `limit`) looks at every waiting task. The
        markers move only once a round's moves are committed.
        """
        self._sweep_events(now_ms)
        thorough = thorough or self._quick_since is None or self._backlog
        if not self._planner_registered:
            with self._writing() as conn:
                transitions.register(conn, PLANNER, now_ms)
            self._planner_registered = True
        since = None
        if not thorough and self._quick_since is not None:
            since = self._quick_since - CHANGE_MARGIN_MS
        with self._reading() as conn:  # most rounds have nothing to move: no write lock
            events = transitions.events_after(conn, PLANNER, EVENTS_PER_ROUND)
            ids = planning.unfinished_instance_ids(conn, limit, now_ms, since)
            backlog = len(ids) >= limit
            if not thorough:
                ids += planning.after_successes(conn, events)
            found = planning.movable_states_many(conn, ids)
        movable = [i for i, states in found.items() if execution.plan(states, now_ms)]
        moved = 0
        for start in range(0, len(movable), limit):
            moved += self._plan_ids(movable[start : start + limit], now_ms)
        if events:
            with self._writing() as conn:
                transitions.advance(conn, PLANNER, events[-1].id, now_ms)
        if not backlog:
            self._quick_since = now_ms
        self._backlog = backlog
        return moved

    def claim_tasks(
        self,
        worker: str,
        groups: Sequence[str] | None,
        limit: int,
        now_ms: int,
    ) -> tuple[list[Claimed], int]:
        """Up to `limit` task instances for `worker`, of `groups` (None: any), each in a
        resource group with a free slot (its `resource_groups` row's, counted over every
        worker), in one transaction; VIRTUAL ones end as they are
        claimed ((the claims, how many VIRTUAL ended))."""
        with self._reading() as conn:  # an idle tick takes no write lock
            if not claims.has_waiting(conn, now_ms, groups):
                return [], 0
        with self._writing() as conn:
            claims.lock_claims(conn)  # slots are counted over every worker: one at a time
            running = claims.running_by_group(conn)
            limits = resource_groups.slot_limits(conn)

            def free(group: str) -> int:
                return slot_limit(limits, group) - running.get(group, 0)

            full = {g for g in set(running) | set(limits) if free(g) <= 0}
            ended: list[int] = []
            found = claims.claim_many(conn, worker, free, full, limit, now_ms, groups, ended)
            waiting = planning.waiting_downstream(conn, ended)
        self._plan_downstreams(waiting, now_ms)
        return found

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
        waiting: list[int] = []
        try:
            with self._writing() as conn:
                if unchosen_outputs:
                    attempts.unchoose(conn, claimed, unchosen_outputs, now_ms)
                if not attempts.finish(conn, claimed, status, exit_code, log, now_ms, retry_at):
                    raise _TakenOver
                if status is Status.SUCCESS and retry_at is None:
                    waiting = planning.waiting_downstream(conn, [claimed.id])
        except _TakenOver:
            return False
        self._plan_downstreams(waiting, now_ms)
        return True

    def _plan_downstreams(self, waiting: Sequence[int], now_ms: int) -> None:
        """Plan the instances waiting elsewhere for tasks that just succeeded (an attempt,
        VIRTUAL nodes, an operator's SetSuccess), after that commit: their locks are taken
        in id order in a transaction of their own, never while holding the finished ones'.
        A failure is logged: the planner reads the same successes from the status events."""
        if not waiting:
            return
        try:
            self._plan_ids(waiting, now_ms)
        except Exception:
            log.exception("planning the downstreams of succeeded tasks, instances %s", waiting)

    def _plan_ids(self, ids: Sequence[int], now_ms: int) -> int:
        """Plan these workflow instances, locked in id order, and derive their status; how
        many task instances moved. An instance its operation still holds (a backfill's
        queue) waits there."""
        with self._writing() as conn:
            ids = sorted(set(ids) - release.held(conn, list(ids)))
            planning.lock_instances(conn, ids)
            made = planning.plan_instances(conn, ids, now_ms)
            for instance_id, started in sorted(transitions.earliest_starts(made).items()):
                transitions.derive(conn, instance_id, now_ms, Cause.PLAN, started)
        return len(made)

    def _sweep_events(self, now_ms: int) -> None:
        """Sweep the status events past their retention (`Tx.events.sweep`), at most every
        transitions.SWEEP_EVERY_MS (the planner calls it)."""
        if now_ms - self._last_event_sweep < transitions.SWEEP_EVERY_MS:
            return
        self._last_event_sweep = now_ms
        with self.write() as tx:
            tx.events.sweep(now_ms)

    # Alerts (docs/alerts.md): evaluation into the outbox, and its deliveries

    def consume_alerts(self, now_ms: int, console: str) -> list[str]:
        """Judge the status changes after the alerts cursor (alert_eval.consume); the
        trigger types of the alerts recorded, committed with the cursor's move. Nothing to
        judge is found in a read: no write lock is taken."""
        with self._reading() as conn:
            if not alert_eval.has_events(conn):
                return []
        with self._writing() as conn:
            return alert_eval.consume(conn, self._secrets, now_ms, console)

    def check_alerts(self, now_ms: int, console: str) -> list[str]:
        """Look at the conditions the tick rules watch (alert_eval.check)."""
        with self._writing() as conn:
            return alert_eval.check(conn, self._secrets, now_ms, console)

    def alert_targets(self, rule_id: int) -> list[tuple[str, str, str]]:
        """(channel, receiver as shown, target JSON) of each receiver the rule reaches (its
        task owners excepted), addresses opened: `dwsched alerts test`."""
        with self._reading() as conn:
            found = alert_eval.targets(conn, self._secrets, rule_id)
        return [(d.channel, d.receiver, d.address) for d in found]

    def lease_deliveries(self, owner: str, now_ms: int, limit: int, lease_ms: int) -> list[Leased]:
        """Deliveries due now, leased to `owner` (committed before they are sent); none due
        is found in a read, taking no write lock."""
        with self._reading() as conn:
            if not Outbox(conn, self._secrets).any_due(now_ms):
                return []
        with self._writing() as conn:
            return Outbox(conn, self._secrets).lease(owner, now_ms, limit, lease_ms)

    def finish_delivery(
        self,
        leased: Leased,
        owner: str,
        outcome: str,
        detail: str,
        started_ms: int,
        now_ms: int,
        retry_at: int | None,
    ) -> bool:
        """Record a try of a leased delivery (Outbox.finish)."""
        with self._writing() as conn:
            return Outbox(conn, self._secrets).finish(
                leased, owner, outcome, detail, started_ms, now_ms, retry_at
            )

    # A request's credential check and replay protection (on the raw cursor)

    @contextmanager
    def key_session(self, access_key_id: str, wait: bool = True) -> Iterator[keys.KeySession]:
        """A request's credential check in one write transaction: its key (None if there is
        none), then its nonce (`KeySession.remember_nonce`), committed together at the end.

        `wait` false: StoreBusy at once, instead of queueing, while another writer holds
        the SQLite database.
        """
        with raw_transaction(self._hot, write=True, wait=wait) as cursor:
            session = keys.KeySession(cursor, self.database.dialect, access_key_id, self._secrets)
            yield session
        if session.now_ms is not None:
            self._sweep_nonces(session.now_ms)

    def remember_nonce(
        self, access_key_id: str, nonce: str, expires_at: int, now_ms: int, wait: bool = True
    ) -> bool:
        """Record a nonce; False when this key used it already within the window."""
        with raw_transaction(self._hot, write=True, wait=wait) as cursor:
            fresh = nonces.remember_nonce(
                cursor, self.database.dialect, access_key_id, nonce, expires_at, now_ms
            )
        self._sweep_nonces(now_ms)
        return fresh

    def _sweep_nonces(self, now_ms: int) -> None:
        if now_ms - self._last_sweep > NONCE_SWEEP_EVERY_MS and self._sweep_lock.acquire(
            blocking=False
        ):
            try:
                self._last_sweep = now_ms
                with self.write() as tx:
                    tx.nonces.sweep(now_ms)
            finally:
                self._sweep_lock.release()

    # Operations: CreateWorkflowInstances, and the operator's actions on instances

    def plan_run(self, request: RunRequest, now_ms: int) -> list[PlannedInstance]:
        """The instances `request` would make (InvalidArgument when it cannot be done)."""
        with self._planning, self._reading() as conn:
            tz = projects.project_timezone(conn, request.project_id)
            found = _run_workflows(conn, request)
            runs.check_parameters(request, found.values())
            return runs.plan_run(request, found, tz, now_ms)

    def submit_run(self, operation_id: str, request: RunRequest, user: str, now_ms: int) -> int:
        """Validate `request` and record it as a Creating operation (the scheduler creates
        its instances: create_pending); how many instances it will make."""
        count = len(self.plan_run(request, now_ms))
        with self._writing() as conn:
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
        with self._reading() as conn:
            pending = creation.creating(conn)
        made = 0
        for operation_id, request, created_ms, user in pending:
            try:
                with self._writing() as conn:
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
                with self._writing() as conn:
                    creation.fail_creation(conn, operation_id, exc.message, now_ms)
            except Exception:
                # Never let one operation stop the others: it fails, the cause is logged.
                log.exception("creating operation_id=%s failed", operation_id)
                with self._writing() as conn:
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
        with self._reading() as conn:
            queued = release.queued_operations(conn)
        released: list[int] = []
        for operation_id, request in queued:
            try:
                with self._writing() as conn:
                    tz = projects.project_timezone(conn, request.project_id)
                    allowed = runs.in_window(request.run_policy, now_ms, tz)
                    released += release.release(conn, operation_id, request, allowed)
            except Exception:
                log.exception("releasing operation_id=%s failed", operation_id)
        # Planned now, not when the planner next looks at every waiting task; a few hundred
        # instances a transaction.
        for start in range(0, len(released), 500):
            try:
                self._plan_ids(released[start : start + 500], now_ms)
            except Exception:
                self._backlog = True  # the planner's next round looks at every waiting task
                log.exception("planning the instances released at %s failed", now_ms)
        return len(released)

    def task_operation(
        self,
        op: Operation,
        ids: Sequence[int],
        user: str,
        comment: str,
        now_ms: int,
        latest_config: bool = False,
    ) -> dict[int, Result]:
        with self._writing() as conn:
            claims.lock_claims(conn)
            done = operator_actions.task_operation(
                conn, op, ids, user, comment, now_ms, latest_config
            )
            waiting = planning.waiting_downstream(conn, sorted(ids))
        self._plan_downstreams(waiting, now_ms)
        return done

    def start_instances(self, ids: Sequence[int], user: str, now_ms: int) -> dict[int, Result]:
        with self._writing() as conn:
            return {i: operator_actions.start_instance(conn, i, user, now_ms) for i in ids}

    def stop_instances(
        self, ids: Sequence[int], user: str, comment: str, now_ms: int
    ) -> dict[int, Result]:
        with self._writing() as conn:
            claims.lock_claims(conn)
            return {
                i: operator_actions.stop_instance(conn, i, user, comment, now_ms)
                for i in sorted(ids)
            }

    def rerun_instances(
        self,
        operation_id: str,
        project_id: int,
        match: InstanceMatch,
        wanted: TaskFilter,
        user: str,
        now_ms: int,
    ) -> OperationRecord:
        """RerunWorkflowInstances: rerun the matching instances' matching tasks, recorded
        as an operation (Success, or Failure with what could not be rerun)."""
        with self._writing() as conn:
            claims.lock_claims(conn)
            projects.project_by_id(conn, project_id)
            ids = operator_actions.matching_instances(conn, project_id, match)
            results = {
                i: operator_actions.rerun_instance(conn, i, wanted, user, now_ms) for i in ids
            }
            failed = [f"{i}: {r.message}" for i, r in results.items() if not r.success]
            if not ids:
                failed = ["no workflow instance matches"]
            status = (Status.FAILURE if failed else Status.SUCCESS).value
            creation.insert_operation(
                conn,
                operation_id,
                RERUN_KIND,
                project_id,
                status,
                operator_actions.match_record(match),
                user,
                now_ms,
                result={"WorkflowInstanceIds": [i for i, r in results.items() if r.success]},
                failure_message="; ".join(failed),
            )
            return creation.operation_by_id(conn, operation_id, RERUN_KIND)

    def remove_dependencies(
        self,
        task_instance_id: int,
        upstream_ids: Sequence[int],
        user: str,
        comment: str,
        now_ms: int,
    ) -> list[int]:
        """RemoveTaskInstanceDependencies: the task instance (NotRun or WaitTime) stops
        waiting for these upstreams (of its workflow instance or others); logged as an
        operation, then its instance is planned. InvalidArgument, changing nothing, for a
        task that no longer waits or an id that is not one of its upstreams."""
        with self._writing() as conn:
            found = task_instances.task_instance_by_id(conn, task_instance_id)
            planning.lock_instance(conn, found.workflow_instance_id)
            found = task_instances.task_instance_by_id(conn, task_instance_id)
            if found.status not in (Status.NOT_RUN.value, Status.WAIT_TIME.value):
                raise InvalidArgument(
                    "Id",
                    f"The parameter Id names the task instance {task_instance_id}, which is "
                    f"{found.status}: only one that waits (NotRun or WaitTime) can have its "
                    "dependencies removed.",
                )
            strangers = sorted(set(upstream_ids) - set(found.upstream))
            if strangers:
                shown = ", ".join(str(i) for i in found.upstream[:20]) or "none"
                raise InvalidArgument(
                    "UpstreamTaskInstanceIds",
                    f"The parameter UpstreamTaskInstanceIds names {strangers[0]}, which is not "
                    f"an upstream of the task instance {task_instance_id} (its upstreams: "
                    f"{shown}).",
                )
            gone = dependencies.remove(conn, task_instance_id, upstream_ids)
            listed = ", ".join(str(i) for i in gone)
            note = f"RemoveTaskInstanceDependencies: no longer waits for {listed}"
            operator_actions.log_operation(
                conn, task_instance_id, user, note + (f" ({comment})" if comment else ""), now_ms
            )
            if not release.held(conn, [found.workflow_instance_id]):
                made = planning.plan_instance(conn, found.workflow_instance_id, now_ms)
                started = transitions.earliest_starts(made).get(found.workflow_instance_id)
                transitions.derive(conn, found.workflow_instance_id, now_ms, Cause.PLAN, started)
        return gone

    def trigger_task(
        self, task_id: int, trigger_time: int, env: EnvType, user: str, now_ms: int
    ) -> Result:
        """TriggerSchedulerTaskInstance: fire the HTTP trigger node's instance of that
        scheduled time (TaskInstanceNotFound when there is none)."""
        with self._writing() as conn:
            claims.lock_claims(conn)
            found = operator_actions.scheduled_task_instance(conn, task_id, trigger_time, env)
            if found is None:
                raise ScheduledInstanceNotFound(task_id, env.value, trigger_time)
            return operator_actions.task_operation(
                conn, Operation.TRIGGER, [found], user, "", now_ms
            )[found]


def _keep_workspaces(tx: Tx, batch: EncodedBatch, ids: Sequence[int]) -> None:
    """InstancesMoved when a replaced instance would change workspace: ids stay in their
    workspace for ever, which authorisation relies on (docs/access.md)."""
    was = tx.projects.of("WorkflowInstance", ids)
    wanted = set(ids)
    for (project_id, _, _), rows in batch.rows.items():
        for row in rows:
            if row[0] in wanted and was.get(row[0], project_id) != project_id:
                raise InstancesMoved(row[0], was[row[0]], project_id)


def _run_workflows(conn: sa.Connection, request: RunRequest) -> dict[int, DeployedWorkflow]:
    """The workflows a CreateWorkflowInstances request runs: its workflow, or (workflow 1)
    those holding the tasks it names, in its workspace (domain.runs decides whether the
    workflow found is one the request may run)."""
    if request.workflow_id != runs.DEFAULT_WORKFLOW:
        try:
            found: DeployedWorkflow | None = definitions.workflow_by_id(conn, request.workflow_id)
        except NotFound:
            found = None
        workflow = runs.named_workflow(request, found)
        return {workflow.id: workflow}
    ids = creation.workflows_of_tasks(conn, request.project_id, request.task_ids)
    return {w.id: w for w, _, _ in definitions.workflows_by_ids(conn, ids)}
