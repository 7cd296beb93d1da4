"""The demo's feed: which status events it tells, how it says them, and how a burst is cut
short (the feed itself, in a demo: tests/cli/test_demo_first_minutes.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from dwsched.cli.feed import CONSUMER, Feed, label, shown
from dwsched.clock import SystemClock
from dwsched.domain.models import Status
from dwsched.domain.transitions import Cause, Kind, StatusEvent
from dwsched.store import Store
from tests.cli.helpers import ROOT


def _event(old: Status, new: Status, cause: Cause, kind: Kind = Kind.TASK) -> StatusEvent:
    return StatusEvent(1, kind, 7, 3, 1, old, new, 1, 1_700_000_000_000, cause)


S = Status


@pytest.mark.parametrize(
    ("old", "new", "cause", "said"),
    [
        (S.WAIT_RESOURCE, S.RUNNING, Cause.CLAIM, "Running"),
        (S.WAIT_RESOURCE, S.CHECKING_CONDITION, Cause.CLAIM, "CheckingCondition"),
        (S.RUNNING, S.CHECKING, Cause.CHECKING, "Checking"),
        (S.RUNNING, S.SUCCESS, Cause.FINISH, "Success"),
        (S.CHECKING, S.FAILURE, Cause.FINISH, "Failure"),
        (S.RUNNING, S.WAIT_RESOURCE, Cause.RETRY, "Failure, retrying"),
        (S.RUNNING, S.WAIT_RESOURCE, Cause.RECOVERY, "Failure (worker lost), retrying"),
        (S.RUNNING, S.FAILURE, Cause.RECOVERY, "Failure (worker lost)"),
        (S.WAIT_RESOURCE, S.SUCCESS, Cause.VIRTUAL, "Success"),
        (S.NOT_RUN, S.FAILURE, Cause.PLAN, "Failure"),
        (S.RUNNING, S.FAILURE, Cause.STOP, "Failure (stopped)"),
        (S.FAILURE, S.SUCCESS, Cause.SET_SUCCESS, "Success (set by hand)"),
        (S.FAILURE, S.NOT_RUN, Cause.RERUN, "NotRun (rerun)"),
        # left out: planning, dry runs, events that change nothing, workflow instances
        (S.NOT_RUN, S.WAIT_TIME, Cause.PLAN, None),
        (S.WAIT_TIME, S.WAIT_RESOURCE, Cause.PLAN, None),
        (S.NOT_RUN, S.SUCCESS, Cause.PLAN, None),
        (S.WAIT_TIME, S.WAIT_TIME, Cause.RESUME, None),
    ],
)
def test_what_the_feed_says(old: Status, new: Status, cause: Cause, said: str | None) -> None:
    assert label(_event(old, new, cause)) == said


def test_workflow_instances_are_left_out() -> None:
    assert label(_event(S.RUNNING, S.SUCCESS, Cause.FINISH, Kind.WORKFLOW)) is None


def test_a_burst_keeps_failures_and_counts_the_rest() -> None:
    assert shown(["Running", "Success"], 2) == ([0, 1], 0)
    labels = ["Running"] * 10 + ["Failure, retrying", "Success", "Failure"]
    kept, left = shown(labels, 5)
    # both failures, then the earliest, in order; the fifth line says how many are left out
    assert kept == [0, 1, 10, 12]
    assert left == 9


def test_the_readme_shows_the_feed_as_printed() -> None:
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"one line each in the demo's terminal:\n\n```text\n(.*?)```", readme, re.DOTALL)
    assert m, "no feed example in the README"
    for line in m.group(1).splitlines():
        assert re.fullmatch(LINE, line), line
        assert label_of(line) in {"Running", "Failure, retrying", "Success"}


# A feed line: time, what happened (18 wide), workflow/task (32 wide), cycle, attempt, id.
LINE = r"\d\d:\d\d:\d\d  (.{18})  \S.{31}  cycle \d\d:\d\d  attempt \d+  task \d+"


def label_of(line: str) -> str:
    m = re.fullmatch(LINE, line)
    assert m
    return m.group(1).strip()


def test_a_closed_feed_holds_no_event_back(tmp_path: Path) -> None:
    """The feed reads the status events with a cursor of its own; closed (the demo
    stopped), it drops the cursor, so the sweep is not held back by a demo that no longer
    runs."""
    store = Store.open(f"sqlite:///{tmp_path / 'feed.db'}")

    def cursors() -> list[str]:
        with store.read() as tx:
            return list(tx.conn.execute(sa.text("SELECT consumer FROM event_cursors")).scalars())

    try:
        with Feed(store, SystemClock(), lambda _: None, poll_seconds=0.05):
            assert cursors() == [CONSUMER]
        assert cursors() == []
    finally:
        store.close()
