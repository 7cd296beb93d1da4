"""Prometheus metrics: the families every process records, and the scrape's text.

Each process records into its own families through the functions below (`api_request`,
`task_run`, `alert_event`, ...): the API's request path, the engine's rounds and attempts,
and (later) the alerting loop call them; none of them does I/O beyond memory (or, in
multi-process mode, a memory-mapped file). State that belongs to the database (instances by
status, WaitResource depth, running slots) is not recorded here: it is read at scrape time
(`state_families`, given the store's `StateGauges`).

Multi-process (docs/metrics.md): `serve --workers N` calls `use_directory` in every one of
its processes before they record anything; each then writes its values to files of its own
in one directory per server, and a scrape in any of them adds them up
(prometheus-client's multiprocess mode). A process on its own (the default) keeps its
values in memory. `dwsched scheduler` and `dwsched worker` are processes on their own,
possibly on other hosts: each exposes its own endpoint (`--metrics-listen`).

Labels take only bounded values: declared action names, HTTP statuses, task types,
outcomes, trigger types and channels; never text a client chose.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from dwsched.domain.gauges import StateGauges
from dwsched.domain.workers import group_label

# The text format generate_latest writes (prometheus-client's own "latest" may name a newer
# one that older Prometheus servers do not know).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NO_ACTION = "-"  # a request refused before its action was known

# The alert trigger types (DataWorks' custom alert rules) and channels, recorded at zero
# from the start so that dashboards and rules see them before the first alert.
ALERT_TYPES = (
    "Error",
    "ExhaustedError",
    "Finished",
    "Timeout",
    "UnFinished",
    "CycleUnfinished",
    "InstanceErrorCount",
    "InstanceErrorPercentage",
    "ResourceGroupWaitCount",
    "ResourceGroupPercentage",
)
ALERT_CHANNELS = ("Mail", "WebhookUrl", "DingdingUrl", "WeixinUrl", "FeishuUrl", "Sms", "Phone")
DELIVERY_OUTCOMES = ("sent", "failed", "retrying")

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: they double the scrape for nothing here

_API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_TASK_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 21600, 86400)
_ROUND_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Families:
    """One process's metric families, on `registry` (None in multi-process mode: the
    scrape reads every process's files instead)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        r = registry
        self.api_requests = Counter(
            "dwsched_api_requests",
            "RPC requests answered, by API action and HTTP status.",
            ["action", "code"],
            registry=r,
        )
        self.api_duration = Histogram(
            "dwsched_api_request_duration_seconds",
            "Time to answer an RPC request, by API action.",
            ["action"],
            buckets=_API_BUCKETS,
            registry=r,
        )
        self.api_throttled = Counter(
            "dwsched_api_throttled_requests",
            "RPC requests refused by the per-AccessKey throttle, by API action.",
            ["action"],
            registry=r,
        )
        self.task_runs = Counter(
            "dwsched_task_runs",
            "Task attempts ended by a worker, by task type and outcome.",
            ["type", "outcome"],
            registry=r,
        )
        self.task_duration = Histogram(
            "dwsched_task_run_duration_seconds",
            "Time a task attempt took in its worker (run and quality check), by task type.",
            ["type"],
            buckets=_TASK_BUCKETS,
            registry=r,
        )
        self.round_duration = Histogram(
            "dwsched_engine_round_duration_seconds",
            "Time one round of an engine loop took, by role (scheduler, worker).",
            ["role"],
            buckets=_ROUND_BUCKETS,
            registry=r,
        )
        self.generation_lag = Gauge(
            "dwsched_scheduler_generation_lag_seconds",
            "How late the scheduler's last round found the oldest run date due for "
            "generation (0: nothing was due).",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.recovered = Counter(
            "dwsched_recovered_attempts",
            "Attempts of dead workers failed or retried by recovery.",
            registry=r,
        )
        self.alert_events = Counter(
            "dwsched_alert_events",
            "Alert events recorded, by trigger type.",
            ["type"],
            registry=r,
        )
        self.alert_deliveries = Counter(
            "dwsched_alert_deliveries",
            "Alert delivery attempts, by channel and outcome.",
            ["channel", "outcome"],
            registry=r,
        )
        self.recovered.inc(0)
        for alert_type in ALERT_TYPES:
            self.alert_events.labels(alert_type)
        for channel in ALERT_CHANNELS:
            for outcome in DELIVERY_OUTCOMES:
                self.alert_deliveries.labels(channel, outcome)
        self.generation_lag.set(0)


@dataclass
class _Process:
    families: _Families
    registry: CollectorRegistry
    directory: str | None = None


def _in_memory() -> _Process:
    registry = CollectorRegistry(auto_describe=True)
    return _Process(_Families(registry), registry)


_process = _in_memory()
_api_children: dict[tuple[str, int], tuple[Callable[[float], None], Callable[[float], None]]] = {}
_lock = threading.Lock()


def use_directory(directory: str) -> None:
    """Record into files of this process in `directory` (shared by every process of one
    server, and emptied by the one that made it), so that a scrape in any of them adds
    up all. Call before anything is recorded; a second call changes nothing."""
    global _process
    if _process.directory is not None:
        return
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _api_children.clear()
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    _process = _Process(_Families(None), registry, directory)


def directory() -> str | None:
    """The multi-process directory this process records into (None: in memory)."""
    return _process.directory


# Recording (cheap: a dictionary look-up and a locked float add)


def api_request(action: str, status: int, seconds: float) -> None:
    """An RPC request answered with HTTP `status` after `seconds`; `action` a declared
    action's name, or NO_ACTION."""
    key = (action, status)
    children = _api_children.get(key)
    if children is None:
        with _lock:
            f = _process.families
            children = (
                f.api_requests.labels(action, str(status)).inc,
                f.api_duration.labels(action).observe,
            )
            _api_children[key] = children
    children[0](1)
    children[1](seconds)


def api_throttled(action: str) -> None:
    _process.families.api_throttled.labels(action).inc()


def task_run(task_type: str, outcome: str, seconds: float) -> None:
    """A task attempt ended in its worker: `outcome` success, failure, retry (failed, runs
    again), interrupted (its worker shut down) or superseded (no longer this worker's:
    stopped by an operator, or recovered elsewhere)."""
    f = _process.families
    f.task_runs.labels(task_type, outcome).inc()
    f.task_duration.labels(task_type).observe(seconds)


def engine_round(role: str, seconds: float) -> None:
    _process.families.round_duration.labels(role).observe(seconds)


def generation_lag(seconds: float) -> None:
    _process.families.generation_lag.set(seconds)


def recovered_attempt() -> None:
    _process.families.recovered.inc()


def alert_event(alert_type: str) -> None:
    """An alert event recorded (its trigger type, e.g. Error, Timeout, UnFinished)."""
    _process.families.alert_events.labels(alert_type).inc()


def alert_delivery(channel: str, outcome: str) -> None:
    """One attempt to deliver an alert through `channel` (e.g. Mail, WebhookUrl): `outcome`
    sent, failed (given up) or retrying (failed, tried again later)."""
    _process.families.alert_deliveries.labels(channel, outcome).inc()


# The scrape


class _State(Collector):
    """The database's state, read once per scrape by `read`."""

    def __init__(self, read: Callable[[], StateGauges]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        return iter(state_families(self.read()))


def state_families(gauges: StateGauges) -> list[Metric]:
    """The gauges of the database's state: instances by BizDate and status, and per
    resource group the task instances waiting for a slot, running, and its slots."""
    instances = GaugeMetricFamily(
        "dwsched_workflow_instances",
        "Workflow instances of the latest BizDates, by BizDate and status.",
        labels=["biz_date", "status"],
    )
    for (day, status), count in sorted(gauges.instances.items()):
        instances.add_metric([day.isoformat(), status], count)
    waiting = GaugeMetricFamily(
        "dwsched_wait_resource_tasks",
        "Task instances waiting for a slot of their resource group (WaitResource).",
        labels=["resource_group"],
    )
    running = GaugeMetricFamily(
        "dwsched_running_tasks",
        "Task attempts in progress, by resource group (slots in use).",
        labels=["resource_group"],
    )
    slots = GaugeMetricFamily(
        "dwsched_resource_group_slots",
        "Attempts a resource group may run at once over every worker.",
        labels=["resource_group"],
    )
    for family, counts in ((waiting, gauges.waiting), (running, gauges.running)):
        for group, count in sorted(counts.items()):
            family.add_metric([group_label(group)], count)
    for group in sorted(set(gauges.waiting) | set(gauges.running) | set(gauges.slots)):
        slots.add_metric([group_label(group)], gauges.slot_limit(group))
    return [instances, waiting, running, slots]


def exposition(state: Callable[[], StateGauges] | None = None) -> bytes:
    """The scrape's text: every process's families (this one's, or in multi-process mode
    all of its server's), and the database's state when `state` reads it."""
    collectors: list[Collector] = [_process.registry]
    if state is not None:
        collectors.append(_State(state))
    return b"".join(generate_latest(c) for c in collectors)
