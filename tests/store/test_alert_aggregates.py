"""Per-cycle deadlines and shares checked on the scheduler's tick, under a manual clock
(both databases): a CycleUnfinished rule fires for the cycle it names when that cycle's
time passes, once, and never for a cycle that succeeded in time or one it does not name;
an InstanceErrorPercentage rule fires when the failed share of the workspace's instances of
the running BizDate reaches its Percentage; a ResourceGroupPercentage rule when the
attempts holding the group's slots reach its Percentage of them. Each honours
IntervalInMinutes and Maximum."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from dwsched.domain.models import Status
from dwsched.store import Store
from tests.store.test_alert_deadlines import CONSOLE, NOW, local, rule, states
from tests.store.test_dependencies_store import RUN, deploy, node, plan, tasks_of
from tests.support.factories import project

MINUTE = 60_000
DAY = 86_400_000
SHELL = {"script": {"runtime": {"command": "SHELL"}, "content": "sleep 1"}}


def shell(node_id: str, group: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {**node(node_id), **SHELL}
    if group is not None:
        found["runtimeResource"] = {"resourceGroup": group}
    return found


def alerted(store: Store) -> list[tuple[int | None, str]]:
    """(task instance, state) of each alert recorded, in order."""
    with store.read() as tx:
        rows = tx.conn.execute(
            sa.text("SELECT task_instance_id, state FROM alert_events ORDER BY id")
        )
        return [(None if i is None else int(i), str(s)) for i, s in rows]


def set_status(store: Store, task_instance_id: int, status: Status) -> None:
    with store.write() as tx:
        tx.conn.execute(
            sa.text("UPDATE task_instances SET status = :s WHERE id = :i"),
            {"s": status.value, "i": task_instance_id},
        )


def cycles(*pairs: tuple[int, str]) -> dict[str, object]:
    return {"CycleUnfinished": {"CycleAndTime": [{"CycleId": c, "Time": t} for c, t in pairs]}}


def test_a_cycle_is_alerted_when_its_own_time_passes_and_not_once_it_succeeded(
    store: Store,
) -> None:
    """An hourly task (cycle n at (n-1):00): cycle 2 is due by 01:30, cycle 3 by 02:30,
    cycle 24 by 24:30 (00:30 the day after); cycles 1 and 4 have no time of their own."""
    p = project(store)
    w = deploy(store, p.id, "00 00 * * * ?", [shell("hourly")])
    store.generate_many([plan(w, RUN)], NOW)
    hours = [t.id for t in tasks_of(store, w)]
    assert len(hours) == 24
    rule(
        store,
        p.id,
        cycles((2, "01:30"), (3, "02:30"), (24, "24:30")),
        kind="CycleUnfinished",
    )
    # Cycle 1 (00:00) is unfinished all along, but the rule names no time for it.
    assert store.check_alerts(local(0, 30), CONSOLE) == []
    assert store.check_alerts(local(1, 30) - 1000, CONSOLE) == []
    assert store.check_alerts(local(1, 30), CONSOLE) == ["CycleUnfinished"]
    assert alerted(store) == [(hours[1], "pending")]  # cycle 2, not cycle 1 or 3
    assert store.check_alerts(local(1, 45), CONSOLE) == []  # no interval: once

    # Cycles 1-3 run at 02:00; cycle 3 succeeds before its time, cycle 2 still runs.
    store.plan(local(2, 0))
    claimed = {c.id: c for c in store.claim_tasks("w1", None, 10, local(2, 0))[0]}
    assert sorted(claimed) == sorted(hours[:3])
    assert store.finish_task(claimed[hours[2]], Status.SUCCESS, 0, "", local(2, 20))
    assert store.check_alerts(local(2, 30), CONSOLE) == []
    assert store.check_alerts(local(23, 59), CONSOLE) == []  # cycle 4 on: no time named

    # Cycle 24's time is on the day after; cycle 2 (still running) is not alerted again.
    assert store.check_alerts(local(0, 30) + DAY - 1000, CONSOLE) == []
    assert store.check_alerts(local(0, 30) + DAY, CONSOLE) == ["CycleUnfinished"]
    assert alerted(store) == [(hours[1], "pending"), (hours[23], "pending")]


def test_an_unfinished_cycle_is_alerted_every_interval_up_to_the_maximum(store: Store) -> None:
    """A task every 30 minutes (cycle n at (n-1)*30 minutes): cycle 1 due by 00:20, cycle 2
    by 00:50. Every 30 minutes each is alerted again while unfinished; the rule's fourth
    alert of the day is over its Maximum of 3 (recorded, not sent)."""
    p = project(store)
    w = deploy(store, p.id, "00 */30 * * * ?", [shell("halfhourly")])
    store.generate_many([plan(w, RUN)], NOW)
    slots = [t.id for t in tasks_of(store, w)]
    assert len(slots) == 48
    rule(
        store,
        p.id,
        cycles((1, "00:20"), (2, "00:50")),
        kind="CycleUnfinished",
        IntervalInMinutes=30,
        Maximum=3,
    )
    assert store.check_alerts(local(0, 20) - 1000, CONSOLE) == []
    assert store.check_alerts(local(0, 20), CONSOLE) == ["CycleUnfinished"]  # cycle 1, 0
    assert store.check_alerts(local(0, 49), CONSOLE) == []
    assert store.check_alerts(local(0, 50), CONSOLE) == ["CycleUnfinished"] * 2  # 1:1, 2:0
    assert store.check_alerts(local(1, 19), CONSOLE) == []
    set_status(store, slots[1], Status.SUCCESS)  # cycle 2 succeeds: no more of it
    assert store.check_alerts(local(1, 20), CONSOLE) == ["CycleUnfinished"]  # cycle 1, 2
    assert sorted(i for i, _ in alerted(store)) == sorted([slots[0]] * 3 + [slots[1]])
    assert states(store) == ["pending", "pending", "pending", "over_maximum"]


def test_the_failed_share_of_the_running_bizdate_is_alerted_from_its_percentage(
    store: Store,
) -> None:
    """Four task instances of the BizDate running now (the next day's four, not run yet,
    are not counted): 1 failed of 4 is under 50 %, 2 of 4 reach it. The alert is raised
    once an interval (counted from midnight) while the share holds, the third of the day is
    over the Maximum of 2, and none once a rerun brings the share under 50 % again."""
    p = project(store)
    w = deploy(store, p.id, "00 00 01 * * ?", [shell(n) for n in ("a", "b", "c", "d")])
    store.generate_many([plan(w, RUN, RUN + timedelta(days=1))], NOW)
    rule(
        store,
        p.id,
        {"InstanceErrorPercentage": {"Percentage": 50}},
        kind="InstanceErrorPercentage",
        IntervalInMinutes=30,
        Maximum=2,
    )
    due = local(1, 0)
    store.plan(due)
    claimed = store.claim_tasks("w1", None, 10, due)[0]
    assert len(claimed) == 4
    assert store.check_alerts(due, CONSOLE) == []  # none failed
    assert store.finish_task(claimed[0], Status.FAILURE, 1, "", due + MINUTE)
    assert store.check_alerts(due + 2 * MINUTE, CONSOLE) == []  # 25 %
    assert store.finish_task(claimed[1], Status.FAILURE, 1, "", due + 3 * MINUTE)
    assert store.check_alerts(due + 3 * MINUTE, CONSOLE) == ["InstanceErrorPercentage"]  # 50 %
    assert store.check_alerts(due + 29 * MINUTE, CONSOLE) == []  # the same interval
    assert store.check_alerts(due + 30 * MINUTE, CONSOLE) == ["InstanceErrorPercentage"]
    assert store.check_alerts(due + 60 * MINUTE, CONSOLE) == ["InstanceErrorPercentage"]
    assert states(store) == ["pending", "pending", "over_maximum"]
    with store.read() as tx:
        notice = tx.conn.execute(sa.text("SELECT notice FROM alert_events ORDER BY id")).scalar()
    assert "2 of 4 task instances failed" in str(notice)
    set_status(store, claimed[1].id, Status.SUCCESS)  # its rerun succeeded: 25 % again
    assert store.check_alerts(due + 90 * MINUTE, CONSOLE) == []
    assert len(states(store)) == 3


def test_the_slots_a_resource_group_uses_are_alerted_from_its_percentage(store: Store) -> None:
    """The group etl has 4 slots; the rule fires at 75 % of them. A branch node evaluating
    its conditions (CheckingCondition) holds a slot as a Running attempt does; attempts of
    another group and instances waiting for a slot use none."""
    p = project(store)
    with store.write() as tx:
        tx.resource_groups.set_slots("etl", 4, NOW)
    rule(
        store,
        p.id,
        {"InstanceErrorPercentage": {"Percentage": 75}},
        kind="ResourceGroupPercentage",
        target={"Type": "ResourceGroup", "Ids": ["etl"]},
        IntervalInMinutes=30,
    )
    branch = {
        **node("pick"),
        "script": {"runtime": {"command": "CONTROLLER_BRANCH"}},
        "branch": {"branches": [{"when": "1 == 1", "output": {"data": uuid.uuid4().hex}}]},
        "runtimeResource": {"resourceGroup": "etl"},
    }
    picks = deploy(store, p.id, "00 30 00 * * ?", [branch])
    other = deploy(store, p.id, "00 30 00 * * ?", [shell("x", "other"), shell("y", "other")])
    work = deploy(store, p.id, "00 00 01 * * ?", [shell(n, "etl") for n in ("a", "b", "c", "d")])
    store.generate_many([plan(picks, RUN), plan(other, RUN), plan(work, RUN)], NOW)

    store.plan(local(0, 30))
    assert len(store.claim_tasks("w1", ["other"], 10, local(0, 30))[0]) == 2
    (pick,) = store.claim_tasks("w1", ["etl"], 10, local(0, 30))[0]
    assert pick.status is Status.CHECKING_CONDITION
    assert store.check_alerts(local(0, 31), CONSOLE) == []  # 1 of 4 (other's 2 aside)
    store.plan(local(1, 0))
    assert len(store.claim_tasks("w1", ["etl"], 1, local(1, 0))[0]) == 1
    assert store.check_alerts(local(1, 1), CONSOLE) == []  # 2 of 4, 3 waiting
    (third,) = store.claim_tasks("w1", ["etl"], 1, local(1, 2))[0]
    assert store.check_alerts(local(1, 2), CONSOLE) == ["ResourceGroupPercentage"]  # 3 of 4
    assert store.check_alerts(local(1, 29), CONSOLE) == []  # the same interval
    assert store.check_alerts(local(1, 30), CONSOLE) == ["ResourceGroupPercentage"]
    assert store.finish_task(third, Status.SUCCESS, 0, "", local(1, 40))
    assert store.check_alerts(local(2, 0), CONSOLE) == []  # 2 of 4 again
    assert states(store) == ["pending", "pending"]
    assert alerted(store) == [(None, "pending"), (None, "pending")]


def test_a_group_without_a_row_takes_the_default_slots_then_the_star_rows(store: Store) -> None:
    """adhoc has no row: 4 slots, so 1 attempt is 25 %, under the rule's 50 %; once `*`
    gives every group without a row 2 slots, the same attempt is 50 %. Without an interval,
    one alert a day."""
    p = project(store)
    rule(
        store,
        p.id,
        {"InstanceErrorPercentage": {"Percentage": 50}},
        kind="ResourceGroupPercentage",
        target={"Type": "ResourceGroup", "Ids": ["adhoc"]},
    )
    w = deploy(store, p.id, "00 00 01 * * ?", [shell("a", "adhoc")])
    store.generate_many([plan(w, RUN)], NOW)
    store.plan(local(1, 0))
    assert len(store.claim_tasks("w1", None, 10, local(1, 0))[0]) == 1
    assert store.check_alerts(local(1, 1), CONSOLE) == []
    with store.write() as tx:
        tx.resource_groups.set_slots("*", 2, NOW)
    assert store.check_alerts(local(1, 2), CONSOLE) == ["ResourceGroupPercentage"]
    assert store.check_alerts(local(5, 0), CONSOLE) == []  # once a day
    assert states(store) == ["pending"]


def test_failures_are_counted_over_the_watched_tasks_only(store: Store) -> None:
    """InstanceErrorCount counts the failures of the tasks a rule watches: a Project
    target's but its AllowTasks, a Task target's only."""
    p = project(store)
    w = deploy(store, p.id, "00 00 01 * * ?", [shell(n) for n in ("a", "b", "c", "d")])
    store.generate_many([plan(w, RUN)], NOW)
    due = local(1, 0)
    store.plan(due)
    claimed = sorted(store.claim_tasks("w1", None, 10, due)[0], key=lambda c: c.id)
    with store.read() as tx:
        task_of = {
            int(i): int(t)
            for i, t in tx.conn.execute(sa.text("SELECT id, task_id FROM task_instances"))
        }
    tasks = [task_of[c.id] for c in claimed]
    allowed = {"Type": "Project", "Ids": [p.id], "AllowTasks": [tasks[0]]}
    rule(store, p.id, {"InstanceErrorCount": {"Count": 2}}, "InstanceErrorCount", allowed)
    only = {"Type": "Task", "Ids": [tasks[1], tasks[2]]}
    rule(store, p.id, {"InstanceErrorCount": {"Count": 2}}, "InstanceErrorCount", only)
    assert store.finish_task(claimed[0], Status.FAILURE, 1, "", due + MINUTE)  # unwatched
    assert store.finish_task(claimed[3], Status.FAILURE, 1, "", due + MINUTE)
    assert store.check_alerts(due + 2 * MINUTE, CONSOLE) == []  # 1 watched by each rule
    assert store.finish_task(claimed[1], Status.FAILURE, 1, "", due + 3 * MINUTE)
    # the Project rule: b and d; the Task rule: b only
    assert store.check_alerts(due + 4 * MINUTE, CONSOLE) == ["InstanceErrorCount"]
    assert store.finish_task(claimed[2], Status.FAILURE, 1, "", due + 5 * MINUTE)
    assert store.check_alerts(due + 6 * MINUTE, CONSOLE) == ["InstanceErrorCount"]
