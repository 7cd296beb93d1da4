"""Which instances of an upstream node an instance waits for: DataWorks' instance-level
scheduling dependencies between two nodes whose crons may differ (docs/dependencies.md).

A node's cycles on a run date are slots: TriggerTimes (epoch ms) in time order, some of them
dry runs. `upstream_slots` answers, for one edge (downstream node, upstream node, dependency
type) and one run date R, which TriggerTimes of the upstream node each cycle of the
downstream node on R waits for. Both nodes' slots are of the same calendar date R, each in
its own zone; only instants are compared, so zones and daylight saving need no rule of
their own.

Same cycle (`Normal`), n downstream and m upstream cycles on R:
- n == m: the i-th waits for the i-th, whatever their times.
- m == 1: every cycle waits for the one; when the downstream node depends on itself only
  its first cycle does (the rest wait through their own previous cycle).
- n == 1: the one waits for all m; when the upstream node depends on itself, for the
  nearest (below).
- otherwise, proximity: a cycle waits for the upstream cycles after the previous downstream
  cycle and not after it; if there are none, for the nearest. When the upstream node depends
  on itself, for the nearest alone.
The nearest upstream cycle of an instant is the latest not after it, or the day's first
when all are after it. Same-cycle dependencies never reach another run date: the previous
day's slots take no part, and upstream cycles after the day's last downstream cycle are
waited for by none of its instances.

Cross cycle: a cycle's previous cycle is the one before it, or for the day's first the last
of the previous run date; the first cycle ever has none and waits for nothing.
- `CrossCycleDependsOnSelf`: the node's own previous cycle, dry run or not.
- `CrossCycleDependsOnOtherNode`: the cycles of the other node one cycle before those the
  same-cycle rule would give, that cycle counted on the schedule of whichever node has fewer
  cycles on R (the downstream node's on a tie): what its previous cycle would wait for, or
  the previous cycle of each upstream cycle it would wait for.
- `CrossCycleDependsOnChildren`: the child's cycles whose last awaited cycle of the node
  (same cycle) is the node's previous cycle.
For these two, the same-cycle sets are taken in full (as if neither node depended on itself,
except the node a child waits for); when the upstream node depends on itself only the latest
is kept, its own chain covering the rest.

A dry-run upstream cycle never blocks: no type but `CrossCycleDependsOnSelf` returns one.
Every call is linear in the two nodes' slots, or n log m.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import assert_never

from dwsched.domain import schedule
from dwsched.domain.flowspec import DependencyType

_DAY = timedelta(days=1)

# A contiguous run of a node's slots, as [start, stop) indices.
_Span = tuple[int, int]
_NONE: _Span = (0, 0)


@dataclass(frozen=True, slots=True)
class Slot:
    """One cycle of a node on a run date: its TriggerTime (epoch ms) and whether it is a dry
    run (a SkipCycle or RealtimeDeprecated cycle: Success at its time without running)."""

    trigger_time: int
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class NodeDays:
    """A node's cycles on the run date before R (`previous`) and on R (`current`), each in
    time order, and whether the node depends on its own previous cycle."""

    previous: tuple[Slot, ...]
    current: tuple[Slot, ...]
    self_dependent: bool = False


def slots_on(trigger: schedule.Trigger, run_date: date) -> tuple[Slot, ...]:
    """The node's cycles of `run_date` (schedule.cycles_on) as slots."""
    return tuple(Slot(c.trigger_time, c.dry_run) for c in schedule.cycles_on(trigger, run_date))


def node_days(trigger: schedule.Trigger, run_date: date, self_dependent: bool) -> NodeDays:
    """The node's slots on `run_date - 1 day` and on `run_date`, in its own zone."""
    return NodeDays(slots_on(trigger, run_date - _DAY), slots_on(trigger, run_date), self_dependent)


def upstream_slots(kind: DependencyType, down: NodeDays, up: NodeDays) -> list[tuple[int, ...]]:
    """For each cycle of `down.current`, in order, the TriggerTimes of `up`'s cycles that
    its instance waits for (each tuple ascending, no duplicates).
    - NORMAL (same-cycle): `up` is an upstream node; DataWorks' scheduling-time proximity
      principle and its edge cases, for any pair of frequencies.
    - CROSS_CYCLE_SELF: `up` is the node itself (the caller passes `down` again): its
      previous cycle (the day's previous slot, or for the first slot the last of `previous`).
    - CROSS_CYCLE_OTHER: `up` is another node: its cycles one cycle before those NORMAL
      would give, the cycle counted on the schedule of whichever node has fewer cycles on R
      (`down`'s on a tie); the latest of them alone when `up` depends on itself.
    - CROSS_CYCLE_CHILDREN: `up` is a first-level child of the node (it depends on the node,
      NORMAL): the child's cycles whose last awaited cycle of the node is the node's
      previous cycle; the latest of them alone when the child depends on itself.
    Dry-run slots of `up` are returned by CROSS_CYCLE_SELF only. The rules and the reasons
    for them are in docs/dependencies.md.
    """
    if kind is DependencyType.NORMAL:
        ups = _Seq(up.current)
        spans = _same_cycle(
            _Seq(down.current).times, ups.times, down.self_dependent, up.self_dependent
        )
        return [ups.pick(span) for span in spans]
    if kind is DependencyType.CROSS_CYCLE_SELF:
        return _previous_cycles(down, up)
    if kind is DependencyType.CROSS_CYCLE_OTHER:
        return _other_node(down, up)
    if kind is DependencyType.CROSS_CYCLE_CHILDREN:
        return _children(down, up)
    assert_never(kind)


class _Seq:
    """A node's slots of one or two run dates as TriggerTimes, answering for spans of them."""

    __slots__ = ("dry", "times")

    def __init__(self, slots: Sequence[Slot]) -> None:
        self.times = [s.trigger_time for s in slots]
        self.dry = [s.dry_run for s in slots] if any(s.dry_run for s in slots) else None

    def pick(self, span: _Span, latest: bool = False) -> tuple[int, ...]:
        """The TriggerTimes of the span that are not dry runs; only the last when `latest`."""
        lo, hi = span
        if self.dry is None:
            return tuple(self.times[max(lo, hi - 1) if latest else lo : hi])
        found = tuple(
            t for t, dry in zip(self.times[lo:hi], self.dry[lo:hi], strict=True) if not dry
        )
        return found[-1:] if latest else found


def _same_cycle(
    down: Sequence[int], up: Sequence[int], down_self: bool, up_self: bool
) -> list[_Span]:
    """For each downstream TriggerTime, the span of `up` it waits for under the same-cycle
    rule (module docstring); both sequences ascending, of one run date."""
    n, m = len(down), len(up)
    if n == 0:
        return []
    if m == 0:
        return [_NONE] * n
    if n == m:
        return [(i, i + 1) for i in range(n)]
    if m == 1:
        return [(0, 1)] + [_NONE if down_self else (0, 1)] * (n - 1)
    if up_self:
        return [_nearest(up, d) for d in down]
    if n == 1:
        return [(0, m)]
    spans: list[_Span] = []
    low = 0
    for d in down:
        high = bisect_right(up, d, low)
        spans.append((low, high) if high > low else _nearest(up, d))
        low = high
    return spans


def _nearest(up: Sequence[int], at: int) -> _Span:
    """The latest of `up` not after `at`, or the first when all are after it."""
    i = max(bisect_right(up, at) - 1, 0)
    return (i, i + 1)


def _previous_cycles(down: NodeDays, node: NodeDays) -> list[tuple[int, ...]]:
    """For each cycle of `down.current`, the cycle of `node` just before it (dry run or not),
    when there is one."""
    times = _Seq(node.previous + node.current).times
    out: list[tuple[int, ...]] = []
    for d in down.current:
        i = bisect_left(times, d.trigger_time) - 1
        out.append((times[i],) if i >= 0 else ())
    return out


def _other_node(down: NodeDays, up: NodeDays) -> list[tuple[int, ...]]:
    n, m = len(down.current), len(up.current)
    latest = up.self_dependent
    if n == 0:
        return []
    if n <= m or m == 0:
        # The downstream node's schedule is the coarser: what its previous cycle would wait
        # for, the day's first looking at the previous run date.
        first: tuple[int, ...] = ()
        if down.previous:
            before = _Seq(up.previous)
            spans = _same_cycle(_Seq(down.previous).times, before.times, False, False)
            first = before.pick(spans[-1], latest)
        ups = _Seq(up.current)
        spans = _same_cycle(_Seq(down.current).times, ups.times, False, False)
        return [first] + [ups.pick(span, latest) for span in spans[:-1]]
    # The upstream node's schedule is the coarser: the previous cycle of each upstream cycle
    # this one would wait for, in the upstream node's own sequence over both run dates.
    both = _Seq(up.previous + up.current)
    shift = len(up.previous) - 1
    spans = _same_cycle(_Seq(down.current).times, both.times[shift + 1 :], False, False)
    return [both.pick((max(lo + shift, 0), max(hi + shift, 0)), latest) for lo, hi in spans]


def _children(node: NodeDays, child: NodeDays) -> list[tuple[int, ...]]:
    """For each cycle of the node, the child's cycles whose last awaited cycle of the node is
    the node's previous cycle."""
    if not node.current:
        return []
    latest = child.self_dependent
    first: tuple[int, ...] = ()
    if node.previous:
        before = _Seq(child.previous)
        first = before.pick(_owned(node.previous, before, node.self_dependent)[-1], latest)
    children = _Seq(child.current)
    owned = _owned(node.current, children, node.self_dependent)
    return [first] + [children.pick(span, latest) for span in owned[:-1]]


def _owned(node: Sequence[Slot], child: _Seq, node_self: bool) -> list[_Span]:
    """For each slot of the node on one run date, the span of the child's slots whose last
    awaited slot of the node (same cycle, the child's own self-dependency aside) is it.
    The last awaited slot never decreases along the child's slots, so each span is a run."""
    spans = _same_cycle(child.times, _Seq(node).times, False, node_self)
    owned = [_NONE] * len(node)
    for j, (lo, hi) in enumerate(spans):
        if hi > lo:
            start, stop = owned[hi - 1]
            owned[hi - 1] = (start if stop > start else j, j + 1)
    return owned
