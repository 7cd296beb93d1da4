"""Creating instances and operating on them: CreateWorkflowInstances and its result, Start/
Stop/RerunWorkflowInstances and its result, Rerun/Stop/SetSuccess/Suspend/Resume
TaskInstances, TriggerSchedulerTaskInstance, ListTaskInstanceOperationLogs.

Batch actions answer `SuccessInfo` per id (HTTP 200 even when some ids are refused); the
rules of what is allowed in which status live in domain.operations.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date, time
from typing import Any

import msgspec

from dwsched.api import wire
from dwsched.api.context import Context, Handler
from dwsched.api.params import Params
from dwsched.domain.calendar import MAX_MS, MIN_MS, day_of, day_start_ms
from dwsched.domain.errors import InvalidArgument, MissingArgument
from dwsched.domain.models import EnvType, InstanceType, Status
from dwsched.domain.operations import (
    CREATE_KIND,
    RERUN_KIND,
    InstanceMatch,
    Operation,
    Result,
    TaskFilter,
)
from dwsched.domain.queries import MAX_IDS, page
from dwsched.domain.runs import (
    MAX_PARALLELISM,
    MAX_RANGES,
    RUN_ALERT_NOTICES,
    RUN_ALERT_TYPES,
    Mode,
    RunPolicy,
    RunRequest,
    check_ranges,
)

DAY_MS = 86_400_000
LOG_DAYS = 31
_DIGITS = re.compile(r"[0-9]{1,18}")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")


class _Alert(msgspec.Struct, rename="pascal", forbid_unknown_fields=True):
    type: str | None = None
    notice_type: str | None = None


class _Analysis(msgspec.Struct, rename="pascal", forbid_unknown_fields=True):
    enabled: bool | None = None
    blocked: bool | None = None


class _RunPolicy(msgspec.Struct, rename="pascal", forbid_unknown_fields=True):
    type: str = "Daily"
    start_time: str = "00:00:00"
    end_time: str = "23:59:59"
    immediately: bool = False


class _RunProperties(msgspec.Struct, rename="pascal", forbid_unknown_fields=True):
    mode: str = "ManualSelection"
    root_task_ids: list[int] = msgspec.field(default_factory=list)
    include_task_ids: list[int] = msgspec.field(default_factory=list)
    exclude_task_ids: list[int] = msgspec.field(default_factory=list)
    include_project_ids: list[int] = msgspec.field(default_factory=list)
    exclude_project_ids: list[int] = msgspec.field(default_factory=list)
    parallelism: int | None = None
    order: str = "Asc"
    priority: int | None = None
    priority_weight_strategy: str = "Disable"
    runtime_resource: str | None = None
    run_policy: _RunPolicy | None = None
    alert: _Alert | None = None
    analysis: _Analysis | None = None
    data_source_name_mappings: dict[str, str] | None = None


class _BizDates(msgspec.Struct, rename="pascal", forbid_unknown_fields=True):
    start_biz_date: str
    end_biz_date: str


class _Periods(msgspec.Struct, rename="pascal", forbid_unknown_fields=True):
    biz_dates: list[_BizDates]
    start_time: str | None = None
    end_time: str | None = None


class _Tag(msgspec.Struct, rename="pascal", forbid_unknown_fields=True):
    key: str
    value: str = ""


def _decode(p: Params, name: str, kind: type[Any]) -> Any:
    """The JSON-text parameter as `kind`; InvalidArgument naming the field at fault (a NUL
    character, which no database text column takes, included)."""
    text = p.text(name, max_length=65_536)
    if text is None:
        return None
    try:
        value = msgspec.json.decode(text, type=kind)
        _no_nul(name, msgspec.to_builtins(value))
        return value
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).rpartition(" - at ")
        where = path.strip("`").replace("$", name, 1) if path else name
        raise InvalidArgument(
            name, f"The parameter {name} is invalid at {where}: {message or exc}."
        ) from exc
    except msgspec.DecodeError as exc:
        raise InvalidArgument(name, f"The parameter {name} is not valid JSON: {exc}.") from exc


def _no_nul(name: str, value: Any) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise InvalidArgument(name, f"The parameter {name} holds a NUL character.")
    if isinstance(value, dict):
        for k, v in value.items():
            _no_nul(name, k)
            _no_nul(name, v)
    if isinstance(value, list):
        for v in value:
            _no_nul(name, v)


def _clock(name: str, value: str) -> str:
    if not _CLOCK.fullmatch(value):
        raise InvalidArgument(name, f"The parameter {name} must be hh:mm:ss, got {value!r}.")
    return value


def _day(name: str, value: str) -> date:
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(
            name, f"The parameter {name} must be a date yyyy-mm-dd, got {value!r}."
        ) from None


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidArgument(
            name, f"The parameter {name} must be one of {', '.join(allowed)}, got {value!r}."
        )
    return value


def run_request(p: Params) -> RunRequest:
    """CreateWorkflowInstances' parameters, checked one by one (the workflows are checked
    against them by the store)."""
    kind = p.choice("Type", InstanceType)
    if kind is None:
        raise MissingArgument("Type")
    if kind is InstanceType.NORMAL:
        raise InvalidArgument(
            "Type",
            "The parameter Type cannot be Normal: the scheduler makes Normal instances. "
            "Use SupplementData, Manual, SmokeTest, ManualWorkflow or TriggerWorkflow.",
        )
    props: _RunProperties = _decode(p, "DefaultRunProperties", _RunProperties) or _RunProperties()
    periods: _Periods | None = _decode(p, "Periods", _Periods)
    tags: list[_Tag] = _decode(p, "Tags", list[_Tag]) or []
    task_parameters: dict[str, str] = _decode(p, "TaskParameters", dict[str, str]) or {}
    return RunRequest(
        project_id=p.required_integer("ProjectId"),
        name=_name(p),
        type=kind,
        workflow_id=p.required_integer("WorkflowId"),
        auto_start=p.boolean("AutoStartEnabled") is not False,
        comment=p.text("Comment", max_length=1024) or "",
        env_type=p.choice("EnvType", EnvType),
        mode=Mode(_choice("DefaultRunProperties.Mode", props.mode, tuple(Mode))),
        root_task_ids=tuple(_ids("DefaultRunProperties.RootTaskIds", props.root_task_ids)),
        include_task_ids=tuple(_ids("DefaultRunProperties.IncludeTaskIds", props.include_task_ids)),
        exclude_task_ids=tuple(_ids("DefaultRunProperties.ExcludeTaskIds", props.exclude_task_ids)),
        parallelism=_parallelism(kind, props.parallelism),
        descending=_choice("DefaultRunProperties.Order", props.order, ("Asc", "Desc")) == "Desc",
        priority=_priority(props.priority),
        resource_group=props.runtime_resource or None,
        run_policy=_run_policy(props.run_policy),
        ranges=_ranges(periods),
        day_start=_clock("Periods.StartTime", (periods and periods.start_time) or "00:00:00"),
        day_end=_clock("Periods.EndTime", (periods and periods.end_time) or "23:59:59"),
        tags=tuple(_tag(t) for t in tags),
        overwrite_tags=(
            _choice(
                "TagCreationPolicy",
                p.text("TagCreationPolicy") or "Append",
                ("Append", "Overwrite"),
            )
            == "Overwrite"
        ),
        task_parameters=tuple((_task_key(k), v) for k, v in sorted(task_parameters.items())),
        workflow_parameters=p.text("WorkflowParameters", max_length=65_536) or "",
        alert=_alert(props.alert),
    )


def _alert(alert: _Alert | None) -> tuple[str, str] | None:
    """DefaultRunProperties.Alert as (Type, NoticeType), or None: no alert."""
    if alert is None or alert.type is None:
        return None
    kind = _choice("DefaultRunProperties.Alert.Type", alert.type, RUN_ALERT_TYPES)
    notice = _choice(
        "DefaultRunProperties.Alert.NoticeType", alert.notice_type or "Mail", RUN_ALERT_NOTICES
    )
    return kind, notice


def _name(p: Params) -> str:
    name = p.required_text("Name", max_length=512).strip()
    if not name:
        raise MissingArgument("Name")
    return name


def _ids(name: str, ids: list[int]) -> list[int]:
    for i in ids:
        if i < 1:
            raise InvalidArgument(name, f"The parameter {name} holds {i}, not a task id.")
    if len(ids) > MAX_IDS:
        raise InvalidArgument(name, f"The parameter {name} takes at most {MAX_IDS} ids.")
    return list(dict.fromkeys(ids))


def _parallelism(kind: InstanceType, value: int | None) -> int:
    if value is None:
        return 1
    if not 1 <= value <= MAX_PARALLELISM:
        raise InvalidArgument(
            "DefaultRunProperties.Parallelism",
            f"The parameter DefaultRunProperties.Parallelism must be 1 (one BizDate at a time) "
            f"to {MAX_PARALLELISM}, got {value}.",
        )
    if kind is not InstanceType.SUPPLEMENT_DATA and value != 1:
        raise InvalidArgument(
            "DefaultRunProperties.Parallelism",
            "The parameter DefaultRunProperties.Parallelism applies to SupplementData, "
            f"not {kind}.",
        )
    return value


def _priority(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 11:
        raise InvalidArgument(
            "DefaultRunProperties.Priority",
            f"The parameter DefaultRunProperties.Priority must be 1 to 11, got {value}.",
        )
    return value


def _run_policy(value: _RunPolicy | None) -> RunPolicy | None:
    if value is None:
        return None
    return RunPolicy(
        type=_choice("DefaultRunProperties.RunPolicy.Type", value.type, ("Daily", "Weekend")),
        start=_clock("DefaultRunProperties.RunPolicy.StartTime", value.start_time),
        end=_clock("DefaultRunProperties.RunPolicy.EndTime", value.end_time),
        immediately=value.immediately,
    )


def _ranges(periods: _Periods | None) -> tuple[tuple[date, date], ...]:
    if periods is None:
        return ()
    if (periods.start_time is None) != (periods.end_time is None):
        raise InvalidArgument(
            "Periods", "The parameters Periods.StartTime and Periods.EndTime go together."
        )
    if (
        periods.start_time
        and periods.end_time
        and time.fromisoformat(_clock("Periods.StartTime", periods.start_time))
        > time.fromisoformat(_clock("Periods.EndTime", periods.end_time))
    ):
        raise InvalidArgument(
            "Periods.StartTime", "The parameter Periods.StartTime is after Periods.EndTime."
        )
    if not periods.biz_dates:
        raise InvalidArgument("Periods.BizDates", "The parameter Periods.BizDates is empty.")
    if len(periods.biz_dates) > MAX_RANGES:
        raise InvalidArgument(
            "Periods.BizDates",
            f"The parameter Periods.BizDates holds {len(periods.biz_dates)} ranges; at most "
            f"{MAX_RANGES} are allowed.",
        )
    found = []
    for n, r in enumerate(periods.biz_dates, start=1):
        start = _day(f"Periods.BizDates[{n}].StartBizDate", r.start_biz_date)
        end = _day(f"Periods.BizDates[{n}].EndBizDate", r.end_biz_date)
        if end < start:
            raise InvalidArgument(
                f"Periods.BizDates[{n}]",
                f"The parameter Periods.BizDates[{n}] ends ({end}) before it starts ({start}).",
            )
        found.append((start, end))
    check_ranges(found)  # counted, not enumerated: before anything reads the workflows
    return tuple(found)


def _tag(t: _Tag) -> tuple[str, str]:
    if not t.key.strip() or len(t.key) > 128 or len(t.value) > 256:
        raise InvalidArgument(
            "Tags", "The parameter Tags needs a Key of 1 to 128 characters, Values up to 256."
        )
    return t.key, t.value


def _task_key(key: str) -> int:
    if not _DIGITS.fullmatch(key) or int(key) < 1:
        raise InvalidArgument(
            "TaskParameters",
            f'The parameter TaskParameters maps task ids to parameters ({{"123": "a=1"}}); '
            f"{key!r} is not a task id.",
        )
    return int(key)


def create_workflow_instances(ctx: Context, p: Params) -> dict[str, Any]:
    request = run_request(p)
    operation_id = uuid.uuid4().hex
    ctx.store.submit_run(operation_id, request, ctx.account, ctx.now_ms)
    return {"OperationId": operation_id}


def get_create_workflow_instances_result(ctx: Context, p: Params) -> dict[str, Any]:
    operation_id = p.required_text("OperationId", max_length=64)
    with ctx.store.read() as tx:
        found = tx.operations.get(operation_id, CREATE_KIND)
    return {
        "Result": {
            "Status": found.status,
            "FailureMessage": found.failure_message,
            "WorkflowInstanceIds": found.result.get("WorkflowInstanceIds", []),
            "UnifiedWorkflowInstanceIds": found.result.get("UnifiedWorkflowInstanceIds", []),
            "WorkflowTaskInstanceIds": found.result.get("WorkflowTaskInstanceIds", []),
        }
    }


def _success_info(results: Mapping[int, Result]) -> dict[str, Any]:
    return {
        "SuccessInfo": {
            str(i): {"Success": r.success, "Message": r.message} for i, r in results.items()
        }
    }


def _batch_ids(p: Params) -> list[int]:
    ids = p.int_list("Ids", MAX_IDS)
    if not ids:
        raise MissingArgument("Ids")
    return list(dict.fromkeys(ids))


def start_workflow_instances(ctx: Context, p: Params) -> dict[str, Any]:
    ids = _batch_ids(p)
    return _success_info(ctx.store.start_instances(ids, ctx.account, ctx.now_ms))


def stop_workflow_instances(ctx: Context, p: Params) -> dict[str, Any]:
    ids = _batch_ids(p)
    comment = p.text("Comment") or ""
    return _success_info(ctx.store.stop_instances(ids, ctx.account, comment, ctx.now_ms))


def _task_action(op: Operation) -> Handler:
    def handle(ctx: Context, p: Params) -> dict[str, Any]:
        ids = _batch_ids(p)
        comment = p.text("Comment") or ""
        latest = bool(p.boolean("UseLatestConfig")) if op is Operation.RERUN else False
        results = ctx.store.task_operation(
            op, ids, ctx.account, comment, ctx.now_ms, latest_config=latest
        )
        return _success_info(results)

    return handle


def rerun_workflow_instances(ctx: Context, p: Params) -> dict[str, Any]:
    project_id = p.required_integer("ProjectId")
    kind = p.choice("Type", InstanceType)
    if kind is None:
        raise MissingArgument("Type")
    if kind is not InstanceType.MANUAL_WORKFLOW:
        raise InvalidArgument(
            "Type", f"The parameter Type must be ManualWorkflow for this action, got {kind}."
        )
    workflow_id = p.required_integer("WorkflowId")
    start = p.integer("StartTriggerTime", minimum=MIN_MS, maximum=MAX_MS)
    end = p.integer("EndTriggerTime", minimum=MIN_MS, maximum=MAX_MS)
    if (start is None) != (end is None):
        raise InvalidArgument(
            "StartTriggerTime", "The parameters StartTriggerTime and EndTriggerTime go together."
        )
    if start is not None and end is not None and start > end:
        raise InvalidArgument(
            "StartTriggerTime", "The parameter StartTriggerTime is after EndTriggerTime."
        )
    bizdate = p.integer("Bizdate", minimum=MIN_MS, maximum=MAX_MS)
    env = p.choice("EnvType", EnvType)
    status = p.choice("Status", Status)
    ids = p.int_list("Ids", MAX_IDS)
    trigger_range = None if start is None or end is None else (start, end)
    name = p.text("Name", max_length=512) or None
    biz_day = None
    if bizdate is not None:
        with ctx.store.read() as tx:
            tz = tx.projects.get(project_id).timezone
        biz_day = day_of(bizdate, tz, "Bizdate")
    match = InstanceMatch(
        workflow_id=workflow_id,
        kind=kind,
        env_type=env,
        ids=None if ids is None else tuple(ids),
        biz_day=biz_day,
        trigger_range=trigger_range,
        name=name,
        status=status,
    )
    wanted = _task_filter(p.json_object("Filter"))
    found = ctx.store.rerun_instances(
        uuid.uuid4().hex, project_id, match, wanted, ctx.account, ctx.now_ms
    )
    return {"OperationId": found.id}


def _task_filter(value: dict[str, Any] | None) -> TaskFilter:
    if value is None:
        return TaskFilter()

    def strings(key: str) -> frozenset[str] | None:
        raw = value.get(key)
        if raw is None:
            return None
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise InvalidArgument(
                "Filter", f"The parameter Filter.{key} must be a list of strings."
            )
        return frozenset(raw)

    allowed = {"TaskIds", "TaskInstanceStatuses", "TaskName", "TaskTypes", "RerunDownstreamEnabled"}
    for key in value:
        if key not in allowed:
            raise InvalidArgument(
                "Filter",
                f"The parameter Filter has an unknown key {key!r}; allowed: "
                f"{', '.join(sorted(allowed))}.",
            )
    ids = value.get("TaskIds")
    if ids is not None and (
        not isinstance(ids, list)
        or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids)
    ):
        raise InvalidArgument("Filter", "The parameter Filter.TaskIds must be a list of task ids.")
    statuses = strings("TaskInstanceStatuses")
    for s in statuses or ():
        if s not in {x.value for x in Status}:
            raise InvalidArgument(
                "Filter", f"The parameter Filter.TaskInstanceStatuses holds {s!r}, not a status."
            )
    name = value.get("TaskName")
    if name is not None and (not isinstance(name, str) or len(name) > 512):
        raise InvalidArgument(
            "Filter", "The parameter Filter.TaskName must be a string of at most 512 characters."
        )
    downstream = value.get("RerunDownstreamEnabled", False)
    if not isinstance(downstream, bool):
        raise InvalidArgument(
            "Filter", "The parameter Filter.RerunDownstreamEnabled must be true or false."
        )
    return TaskFilter(
        task_ids=None if ids is None else frozenset(ids),
        statuses=statuses,
        name=name or None,
        types=strings("TaskTypes"),
        downstream=downstream,
    )


def get_rerun_workflow_instances_result(ctx: Context, p: Params) -> dict[str, Any]:
    operation_id = p.required_text("OperationId", max_length=64)
    with ctx.store.read() as tx:
        found = tx.operations.get(operation_id, RERUN_KIND)
    return {"Result": {"Status": found.status, "FailureMessage": found.failure_message}}


def trigger_scheduler_task_instance(ctx: Context, p: Params) -> dict[str, Any]:
    task_id = p.required_integer("TaskId")
    trigger_time = p.required_integer("TriggerTime", minimum=MIN_MS, maximum=MAX_MS)
    env = p.choice("EnvType", EnvType) or EnvType.PROD
    result = ctx.store.trigger_task(task_id, trigger_time, env, ctx.account, ctx.now_ms)
    if not result.success:
        raise InvalidArgument("TriggerTime", result.message)
    return {"Success": True}


def remove_task_instance_dependencies(ctx: Context, p: Params) -> dict[str, Any]:
    """A waiting task instance stops waiting for the upstream instances named (of its own
    workflow instance, of another workflow, of a previous cycle): an operator unblocks it."""
    task_instance_id = p.required_integer("Id")
    upstream = p.int_list("UpstreamTaskInstanceIds", MAX_IDS)
    if not upstream:
        raise MissingArgument("UpstreamTaskInstanceIds")
    comment = p.text("Comment", max_length=1024) or ""
    ctx.store.remove_dependencies(task_instance_id, upstream, ctx.account, comment, ctx.now_ms)
    return {"Success": True}


def list_task_instance_operation_logs(ctx: Context, p: Params) -> dict[str, Any]:
    task_instance_id = p.required_integer("Id")
    wanted = page(p.integer("PageNumber"), p.integer("PageSize"))
    with ctx.store.read() as tx:
        tz = tx.projects.timezone(tx.task_instances.get(task_instance_id).project_id)
    when = p.integer("Date", minimum=MIN_MS, maximum=MAX_MS)
    today = day_of(ctx.now_ms, tz, "Date")
    day = today if when is None else day_of(when, tz, "Date")
    if (today - day).days > LOG_DAYS or day > today:
        raise InvalidArgument(
            "Date",
            f"The parameter Date must be a day of the last {LOG_DAYS} days, up to today ({today}).",
        )
    start = day_start_ms(day, tz)
    end = start + DAY_MS + 3_600_000  # a day of a DST fall-back lasts 25 hours
    end = min(end, day_start_ms(date.fromordinal(day.toordinal() + 1), tz))
    with ctx.store.read() as tx:
        total, rows = tx.operations.logs(task_instance_id, start, end, wanted.offset, wanted.size)
    items = [
        {
            "OperationSeq": r.id,
            "TaskInstanceId": r.task_instance_id,
            "CreateTime": r.create_time,
            "User": r.user,
            "OperationContent": r.content,
        }
        for r in rows
    ]
    return {"PagingInfo": wire.paging(wanted.number, wanted.size, total, "OperationLogs", items)}


rerun_task_instances = _task_action(Operation.RERUN)
stop_task_instances = _task_action(Operation.STOP)
set_success_task_instances = _task_action(Operation.SET_SUCCESS)
suspend_task_instances = _task_action(Operation.SUSPEND)
resume_task_instances = _task_action(Operation.RESUME)
