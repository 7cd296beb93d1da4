"""domain.operations, pure: what each operator operation does to a task instance in each status
(docs/operations.md's table), written out here as a table of its own and compared whole."""

from __future__ import annotations

import pytest

from dwsched.domain.models import Status
from dwsched.domain.operations import Current, Operation, Outcome, Refused, decide, describe

S = Status
WAITING = [S.NOT_RUN, S.WAIT_TIME, S.WAIT_RESOURCE, S.WAIT_TRIGGER]
BEING_RUN = [S.RUNNING, S.CHECKING, S.CHECKING_CONDITION]
ENDED = [S.SUCCESS, S.FAILURE]
assert {*WAITING, *BEING_RUN, *ENDED} == set(Status)

KEEP = None  # the status is unchanged
# (operation, status, suspended) -> (new status, frozen after) or the refusal's words; for a
# node whose RerunMode allows everything (RerunMode's own rows are below).
EXPECTED: dict[tuple[Operation, Status, bool], tuple[Status | None, bool] | str] = {}
for status in Status:
    for frozen in (False, True):
        key = (status, frozen)
        running, ended = status in BEING_RUN, status in ENDED
        EXPECTED[(Operation.STOP, *key)] = "nothing to stop" if ended else (S.FAILURE, False)
        EXPECTED[(Operation.RERUN, *key)] = (
            "while it runs" if running else (S.NOT_RUN, False) if ended else "has not finished"
        )
        EXPECTED[(Operation.SET_SUCCESS, *key)] = (
            "while it runs"
            if running
            else "already succeeded"
            if status is S.SUCCESS
            else (S.SUCCESS, False)
        )
        EXPECTED[(Operation.SUSPEND, *key)] = (
            "while it runs"
            if running
            else "already suspended"
            if frozen
            else "has already ended"
            if ended
            else (S.NOT_RUN, True)
        )
        EXPECTED[(Operation.RESUME, *key)] = (
            "while it runs" if running else (KEEP, False) if frozen else "nothing to resume"
        )
        EXPECTED[(Operation.TRIGGER, *key)] = (
            "while it runs"
            if running
            else "cannot be triggered again"
            if ended
            else (S.SUCCESS, frozen)
            if status is S.WAIT_TRIGGER
            else (KEEP, frozen)  # kept: it passes on reaching WaitTrigger
        )


def outcome(op: Operation, status: Status, suspended: bool, rerun_mode: str = "Allowed") -> object:
    try:
        found = decide(op, Current(7, status, suspended, rerun_mode))
    except Refused as refused:
        return refused.message
    return (found.status, found.suspended)


@pytest.mark.parametrize("op", list(Operation))
def test_each_operation_in_each_status(op: Operation) -> None:
    for status in Status:
        for frozen in (False, True):
            want = EXPECTED[(op, status, frozen)]
            got = outcome(op, status, frozen)
            if isinstance(want, str):
                assert isinstance(got, str) and want in got, (op, status, frozen, got)
                assert "task instance 7" in got
            else:
                assert got == want, (op, status, frozen)


def test_a_few_rows_spelled_out() -> None:
    """The table above, by hand, where docs/operations.md states it."""
    assert decide(Operation.STOP, Current(1, S.RUNNING, False, "Allowed")) == Outcome(
        S.FAILURE, suspended=False
    )
    assert decide(Operation.SET_SUCCESS, Current(1, S.WAIT_TRIGGER, False, "Allowed")) == Outcome(
        S.SUCCESS, suspended=False
    )
    assert decide(Operation.SUSPEND, Current(1, S.WAIT_RESOURCE, False, "Allowed")) == Outcome(
        S.NOT_RUN, suspended=True
    )
    assert decide(Operation.RESUME, Current(1, S.NOT_RUN, True, "Allowed")) == Outcome(
        None, suspended=False
    )
    # Stopping a frozen instance unfreezes it; setting it to success too.
    assert decide(Operation.STOP, Current(1, S.NOT_RUN, True, "Allowed")).suspended is False
    assert decide(Operation.SET_SUCCESS, Current(1, S.NOT_RUN, True, "Allowed")).suspended is False


@pytest.mark.parametrize(
    ("mode", "status", "expected"),
    [
        ("Allowed", S.SUCCESS, S.NOT_RUN),
        ("Allowed", S.FAILURE, S.NOT_RUN),
        ("FailureAllowed", S.FAILURE, S.NOT_RUN),
        ("FailureAllowed", S.SUCCESS, "only after a failure"),
        ("Denied", S.FAILURE, "RerunMode is AllDenied"),
        ("Denied", S.SUCCESS, "RerunMode is AllDenied"),
    ],
)
def test_rerun_follows_the_nodes_rerun_mode(mode: str, status: Status, expected: object) -> None:
    got = outcome(Operation.RERUN, status, False, mode)
    if isinstance(expected, Status):  # (a Status is a str too: test it first)
        assert got == (expected, False)
    else:
        assert isinstance(got, str) and isinstance(expected, str) and expected in got


@pytest.mark.parametrize("mode", ["Allowed", "FailureAllowed", "Denied"])
@pytest.mark.parametrize("op", [o for o in Operation if o is not Operation.RERUN])
def test_rerun_mode_concerns_only_rerun(mode: str, op: Operation) -> None:
    for status in Status:
        for frozen in (False, True):
            assert outcome(op, status, frozen, mode) == outcome(op, status, frozen, "Allowed")


def test_a_refusal_says_what_would_be_allowed() -> None:
    assert "stop it first" in str(outcome(Operation.RERUN, S.RUNNING, False))
    assert "only a Success or Failure instance can be rerun" in str(
        outcome(Operation.RERUN, S.WAIT_TIME, False)
    )
    assert "(NotRun, suspended)" in str(outcome(Operation.RERUN, S.NOT_RUN, True))
    assert "(Failure)" in str(outcome(Operation.SUSPEND, S.FAILURE, False))


@pytest.mark.parametrize(
    ("op", "comment", "line"),
    [
        (Operation.RERUN, "", "rerun"),
        (Operation.STOP, "by hand", "stopped: by hand"),
        (Operation.SET_SUCCESS, "", "set to success"),
        (Operation.SUSPEND, "x", "suspended: x"),
        (Operation.RESUME, "", "resumed"),
        (Operation.TRIGGER, "hook", "triggered: hook"),
    ],
)
def test_the_operation_log_line(op: Operation, comment: str, line: str) -> None:
    assert describe(op, comment) == line
