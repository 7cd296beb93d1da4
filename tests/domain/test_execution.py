"""domain.execution, pure: the planner's moves, a workflow instance's derived status, automatic
retries, and branch conditions. Hand-built task states; no store, no engine."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from dwsched.domain.execution import (
    ConditionError,
    Move,
    Recurrence,
    TaskState,
    blocked_tasks,
    evaluate_condition,
    plan,
    retry_allowed,
    workflow_status,
)
from dwsched.domain.models import Status

T = 1_743_400_000_000  # every task's TriggerTime
BEFORE, AT, AFTER = T - 1, T, T + 60_000
DRY = [r for r in Recurrence if r not in (Recurrence.NORMAL, Recurrence.PAUSE)]


def task(id: int = 1, status: Status = Status.NOT_RUN, *up: int, **fields: Any) -> TaskState:
    state = TaskState(
        id=id, status=status, upstream=up, trigger_time=T, recurrence=Recurrence.NORMAL
    )
    return replace(state, **fields)


def moved(tasks: list[TaskState], now: int) -> dict[int, tuple[Status, bool]]:
    """The planned moves as task id -> (new status, dry run)."""
    return {m.task_instance_id: (m.status, m.dry_run) for m in plan(tasks, now)}


# plan(): one task, by its status, the time, and how it recurs


@pytest.mark.parametrize(
    ("status", "now", "fields", "expected"),
    [
        # A normal task waits for its time, then for a resource.
        (Status.NOT_RUN, BEFORE, {}, (Status.WAIT_TIME, False)),
        (Status.NOT_RUN, AT, {}, (Status.WAIT_RESOURCE, False)),
        (Status.NOT_RUN, AFTER, {}, (Status.WAIT_RESOURCE, False)),
        (Status.WAIT_TIME, BEFORE, {}, None),
        (Status.WAIT_TIME, AT, {}, (Status.WAIT_RESOURCE, False)),
        # Pause: a dry run that fails at its time (and waits for it first).
        (Status.NOT_RUN, BEFORE, {"recurrence": Recurrence.PAUSE}, (Status.WAIT_TIME, False)),
        (Status.WAIT_TIME, AT, {"recurrence": Recurrence.PAUSE}, (Status.FAILURE, True)),
        (Status.NOT_RUN, AFTER, {"recurrence": Recurrence.PAUSE}, (Status.FAILURE, True)),
        # An HTTP trigger node waits for its call, or passes if the call came already.
        (Status.NOT_RUN, BEFORE, {"trigger_node": True}, (Status.WAIT_TIME, False)),
        (Status.WAIT_TIME, AT, {"trigger_node": True}, (Status.WAIT_TRIGGER, False)),
        (Status.NOT_RUN, AFTER, {"trigger_node": True}, (Status.WAIT_TRIGGER, False)),
        (
            Status.WAIT_TIME,
            AT,
            {"trigger_node": True, "triggered": True},
            (Status.SUCCESS, True),
        ),
        # A trigger node that is a dry run does not wait for a call.
        (
            Status.WAIT_TIME,
            AT,
            {"trigger_node": True, "recurrence": Recurrence.SKIP},
            (Status.SUCCESS, True),
        ),
        (
            Status.WAIT_TIME,
            AT,
            {"trigger_node": True, "recurrence": Recurrence.PAUSE},
            (Status.FAILURE, True),
        ),
        # Suspended (frozen): nothing moves, whatever the time.
        (Status.NOT_RUN, AFTER, {"suspended": True}, None),
        (Status.NOT_RUN, BEFORE, {"suspended": True}, None),
        (Status.WAIT_TIME, AFTER, {"suspended": True}, None),
    ],
)
def test_one_task_moves_by_time_and_recurrence(
    status: Status, now: int, fields: dict[str, Any], expected: tuple[Status, bool] | None
) -> None:
    assert moved([task(1, status, **fields)], now).get(1) == expected


@pytest.mark.parametrize("recurrence", DRY)
def test_a_dry_run_succeeds_at_its_time_without_running(recurrence: Recurrence) -> None:
    assert moved([task(1, recurrence=recurrence)], BEFORE) == {1: (Status.WAIT_TIME, False)}
    assert moved([task(1, Status.WAIT_TIME, recurrence=recurrence)], BEFORE) == {}
    assert moved([task(1, Status.WAIT_TIME, recurrence=recurrence)], AT) == {
        1: (Status.SUCCESS, True)
    }
    assert moved([task(1, recurrence=recurrence)], AFTER) == {1: (Status.SUCCESS, True)}


@pytest.mark.parametrize(
    "status",
    [
        Status.WAIT_RESOURCE,
        Status.RUNNING,
        Status.CHECKING,
        Status.CHECKING_CONDITION,
        Status.WAIT_TRIGGER,
        Status.SUCCESS,
        Status.FAILURE,
    ],
)
def test_the_planner_leaves_every_later_status_to_the_workers_and_operators(
    status: Status,
) -> None:
    assert plan([task(1, status)], AFTER) == []
    assert plan([task(1, status, trigger_node=True, triggered=True)], AFTER) == []


def test_a_move_is_stamped_now_and_guarded_by_the_status_it_was_planned_from() -> None:
    assert plan([task(1), task(2, Status.WAIT_TIME)], AFTER) == [
        Move(1, Status.WAIT_RESOURCE, AFTER, dry_run=False, since=Status.NOT_RUN),
        Move(2, Status.WAIT_RESOURCE, AFTER, dry_run=False, since=Status.WAIT_TIME),
    ]
    (dry,) = plan([task(3, recurrence=Recurrence.SKIP_UNCHOOSE)], AFTER)
    assert dry == Move(3, Status.SUCCESS, AFTER, dry_run=True, since=Status.NOT_RUN)


# plan(): upstreams


@pytest.mark.parametrize(
    ("upstream", "runs"),
    [
        ([Status.SUCCESS], True),
        ([Status.SUCCESS, Status.SUCCESS], True),
        ([Status.NOT_RUN], False),
        ([Status.WAIT_TIME], False),
        ([Status.WAIT_RESOURCE], False),
        ([Status.RUNNING], False),
        ([Status.CHECKING], False),
        ([Status.WAIT_TRIGGER], False),
        ([Status.FAILURE], False),  # a failed upstream leaves it NotRun
        ([Status.SUCCESS, Status.RUNNING], False),
        ([Status.SUCCESS, Status.FAILURE], False),
    ],
)
def test_a_task_moves_only_when_every_upstream_succeeded(
    upstream: list[Status], runs: bool
) -> None:
    ups = [task(10 + i, s) for i, s in enumerate(upstream)]
    # The upstreams are in their final places (no moves of theirs at this time).
    ups = [replace(u, trigger_time=AFTER + 1) if u.status is Status.NOT_RUN else u for u in ups]
    below = task(1, Status.NOT_RUN, *(u.id for u in ups))
    assert (1 in moved([*ups, below], AFTER)) is runs


def test_an_upstream_outside_the_instance_does_not_hold_a_task_back() -> None:
    assert moved([task(1, Status.NOT_RUN, 999)], AFTER) == {1: (Status.WAIT_RESOURCE, False)}


def test_a_dry_run_below_a_running_task_waits_for_it() -> None:
    tasks = [task(1, Status.RUNNING), task(2, Status.NOT_RUN, 1, recurrence=Recurrence.SKIP)]
    assert moved(tasks, AFTER) == {}


def test_one_plan_moves_one_step_the_downstream_waits_for_the_next() -> None:
    """The planner reads the states it is given: a task whose upstream passes in this plan
    moves in the next one, when the upstream's Success is written."""
    chain = [
        task(1, Status.WAIT_TIME, recurrence=Recurrence.SKIP_CYCLE),
        task(2, Status.NOT_RUN, 1),
    ]
    assert moved(chain, AFTER) == {1: (Status.SUCCESS, True)}
    chain[0] = replace(chain[0], status=Status.SUCCESS)
    assert moved(chain, AFTER) == {2: (Status.WAIT_RESOURCE, False)}


def test_a_task_of_another_instance_is_read_for_its_status_and_never_moved() -> None:
    """An upstream elsewhere (another workflow, a previous cycle) comes with the instance
    planned: its own upstreams do not, so it must not be moved from here."""
    tasks = [
        task(10, Status.NOT_RUN, 99, elsewhere=True),  # waits for 99, not given
        task(1, Status.NOT_RUN, 10),
        task(2),
    ]
    assert moved(tasks, AFTER) == {2: (Status.WAIT_RESOURCE, False)}
    tasks[0] = replace(tasks[0], status=Status.SUCCESS)
    assert moved(tasks, AFTER) == {
        1: (Status.WAIT_RESOURCE, False),
        2: (Status.WAIT_RESOURCE, False),
    }


def test_nothing_below_a_suspended_task_runs() -> None:
    tasks = [
        task(1, Status.NOT_RUN, suspended=True),
        task(2, Status.NOT_RUN, 1),
        task(3, Status.NOT_RUN, 2),
        task(4),  # independent: runs
    ]
    assert moved(tasks, AFTER) == {4: (Status.WAIT_RESOURCE, False)}


def test_a_suspended_task_whose_upstream_succeeded_still_waits() -> None:
    tasks = [task(1, Status.SUCCESS), task(2, Status.NOT_RUN, 1, suspended=True)]
    assert plan(tasks, AFTER) == []
    assert moved([tasks[0], replace(tasks[1], suspended=False)], AFTER) == {
        2: (Status.WAIT_RESOURCE, False)
    }


STATUSES = st.sampled_from(list(Status))


@st.composite
def instances(draw: st.DrawFn) -> list[TaskState]:
    """Up to 8 tasks, upstream first, each with upstreams among the earlier ones."""
    n = draw(st.integers(1, 8))
    tasks = []
    for i in range(1, n + 1):
        ups = draw(st.sets(st.integers(1, i - 1), max_size=3)) if i > 1 else set()
        tasks.append(
            TaskState(
                id=i,
                status=draw(STATUSES),
                upstream=tuple(sorted(ups)),
                trigger_time=draw(st.sampled_from([BEFORE, AT, AFTER])),
                recurrence=draw(st.sampled_from(list(Recurrence))),
                suspended=draw(st.booleans()),
                trigger_node=draw(st.booleans()),
                triggered=draw(st.booleans()),
            )
        )
    return tasks


@settings(max_examples=200, deadline=None)
@given(instances(), st.sampled_from([BEFORE, AT, AFTER]))
def test_every_move_starts_from_a_waiting_free_task_whose_upstreams_succeeded(
    tasks: list[TaskState], now: int
) -> None:
    by_id = {t.id: t for t in tasks}
    moves = plan(tasks, now)
    assert len({m.task_instance_id for m in moves}) == len(moves)
    for m in moves:
        t = by_id[m.task_instance_id]
        assert m.since is t.status and m.at == now and not t.suspended
        assert t.status in (Status.NOT_RUN, Status.WAIT_TIME)
        if t.status is Status.NOT_RUN:  # a WaitTime task passed its upstreams already
            assert all(by_id[u].status is Status.SUCCESS for u in t.upstream if u in by_id)
        if m.status is Status.WAIT_TIME:
            assert now < t.trigger_time and t.status is Status.NOT_RUN
        else:
            assert now >= t.trigger_time
        assert m.dry_run is (m.status in (Status.SUCCESS, Status.FAILURE))


# workflow_status(): a workflow instance's status from its tasks'


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], Status.NOT_RUN),
        ([Status.NOT_RUN], Status.NOT_RUN),
        ([Status.SUCCESS, Status.NOT_RUN], Status.NOT_RUN),
        ([Status.SUCCESS, Status.SUCCESS], Status.SUCCESS),
        ([Status.WAIT_TIME, Status.NOT_RUN], Status.WAIT_TIME),
        ([Status.WAIT_TRIGGER, Status.NOT_RUN], Status.WAIT_TIME),  # shown as WaitTime
        ([Status.WAIT_TRIGGER], Status.WAIT_TIME),
        # The most advanced active status wins, in this order.
        ([Status.WAIT_RESOURCE, Status.WAIT_TIME], Status.WAIT_RESOURCE),
        ([Status.CHECKING_CONDITION, Status.WAIT_RESOURCE], Status.CHECKING_CONDITION),
        ([Status.CHECKING, Status.CHECKING_CONDITION], Status.CHECKING),
        ([Status.RUNNING, Status.CHECKING], Status.RUNNING),
        ([Status.RUNNING, Status.FAILURE], Status.RUNNING),
        ([Status.WAIT_RESOURCE, Status.FAILURE], Status.WAIT_RESOURCE),
        ([Status.SUCCESS, Status.FAILURE], Status.FAILURE),
        ([Status.FAILURE], Status.FAILURE),
    ],
)
def test_independent_tasks_make_the_workflow_status(
    statuses: list[Status], expected: Status
) -> None:
    tasks = [task(i, s) for i, s in enumerate(statuses, 1)]
    assert workflow_status(tasks) is expected


def test_a_failure_with_tasks_that_can_still_run_is_not_the_end() -> None:
    tasks = [task(1, Status.FAILURE), task(2, Status.NOT_RUN), task(3, Status.WAIT_TIME)]
    assert workflow_status(tasks) is Status.WAIT_TIME
    assert workflow_status(tasks[:2]) is Status.NOT_RUN


@pytest.mark.parametrize("waiting", [Status.NOT_RUN, Status.WAIT_TIME, Status.WAIT_TRIGGER])
def test_tasks_waiting_below_a_failure_make_it_a_failure(waiting: Status) -> None:
    tasks = [
        task(1, Status.SUCCESS),
        task(2, Status.FAILURE, 1),
        task(3, waiting, 2),
        task(4, Status.NOT_RUN, 3),  # two levels below
        task(5, Status.NOT_RUN, 1, 4),
    ]
    assert blocked_tasks(tasks) == {3, 4, 5}
    assert workflow_status(tasks) is Status.FAILURE


def test_a_task_beside_the_failed_branch_keeps_the_instance_going() -> None:
    tasks = [
        task(1, Status.SUCCESS),
        task(2, Status.FAILURE, 1),
        task(3, Status.NOT_RUN, 2),
        task(4, Status.NOT_RUN, 1),  # below the success only
    ]
    assert blocked_tasks(tasks) == {3}
    assert workflow_status(tasks) is Status.NOT_RUN


def test_a_success_below_a_failure_unblocks_what_is_below_it() -> None:
    """Set to success by an operator, say: a finished task is never blocked, and a task
    whose upstreams all finished can run."""
    tasks = [task(1, Status.FAILURE), task(2, Status.SUCCESS, 1), task(3, Status.NOT_RUN, 2)]
    assert blocked_tasks(tasks) == set()
    assert workflow_status(tasks) is Status.NOT_RUN
    assert moved(tasks, AFTER) == {3: (Status.WAIT_RESOURCE, False)}


# retry_allowed(): a failed attempt is retried while the node's policy allows


@pytest.mark.parametrize(
    ("mode", "times", "attempts", "failed", "retried"),
    [
        ("Allowed", 3, 1, True, True),
        ("Allowed", 3, 3, True, True),  # the third failure: one retry left
        ("Allowed", 3, 4, True, False),  # 1 + 3 attempts made
        ("FailureAllowed", 1, 1, True, True),
        ("FailureAllowed", 1, 2, True, False),
        ("Allowed", 0, 1, True, False),  # no retries
        ("Denied", 3, 1, True, False),
        ("Allowed", 3, 1, False, False),  # nothing to retry after a success
    ],
)
def test_retries(mode: str, times: int, attempts: int, failed: bool, retried: bool) -> None:
    assert retry_allowed(mode, times, attempts, failed=failed) is retried


# evaluate_condition(): branch conditions, after substitution


@pytest.mark.parametrize(
    ("text", "names", "value"),
    [
        ("1 == 1", {}, True),
        ("1 == 2", {}, False),
        (" 1 != 2 ", {}, True),
        ("'20250102' > '20250101'", {}, True),
        ("'20250101' >= '20250102'", {}, False),
        ("1 < 2 <= 2", {}, True),
        ("3 > 2 > 2", {}, False),
        ("1 == 1 && 2 == 3", {}, False),
        ("1 == 2 || 2 == 2", {}, True),
        ("1 == 1 and not 2 == 3", {}, True),
        ("true", {}, True),
        ("false || true", {}, True),
        ("-1 < 0", {}, True),
        ("7 % 3 == 1", {}, True),
        ("2 * 3 + 1 - 1 == 6", {}, True),
        ("1 / 2 == 0.5", {}, True),
        ("'hz' in ('hz', 'sh')", {}, True),
        ("'bj' not in ['hz', 'sh']", {}, True),
        ("region == 'hz'", {"region": "hz"}, True),
        ("n > 2", {"n": 1}, False),
        ("0", {}, False),
        ("'x'", {}, True),
    ],
)
def test_conditions(text: str, names: dict[str, Any], value: bool) -> None:
    assert evaluate_condition(text, names) is value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1 ==", "is not an expression"),
        ("", "is not an expression"),
        ("region == 'hz'", "names 'region', which has no value"),
        ("'a' < 1", "compares unlike values"),
        ("1 / 0 == 1", "cannot be computed"),
        ("1 + 'a' == 1", "cannot be computed"),
        ("1 is 1", "unsupported comparison"),
        ("__import__('os').system('id')", "other than values and operators"),
        ("x.y == 1", "other than values and operators"),
        ("[c for c in 'ab']", "other than values and operators"),
        ("(lambda: 1)()", "other than values and operators"),
        ("None == None", "other than values and operators"),
    ],
)
def test_condition_errors(text: str, reason: str) -> None:
    with pytest.raises(ConditionError) as caught:
        evaluate_condition(text, {"x": 1})
    assert reason in str(caught.value)
    assert repr(text) in str(caught.value) or "is not an expression" in reason
