"""FlowSpec: the JSON that defines a workflow (reference §7), read into domain values.

Decoding checks types and required fields (msgspec names the JSON path of a fault); the
rules of a workflow are checked after: one workflow per spec, unique node ids, known
dependencies without cycles, a valid cron and zone, known enum spellings, workflow
parameters that can travel as `k=v` text. Every fault is an `InvalidArgument` of the
parameter `Spec` whose message gives the JSON path.

dwsched reads what it runs and keeps the spec text as given, so fields it does not use
(paths, data sources, autoParse, ...) are accepted and returned untouched by
GetWorkflowDefinition. One extension: a node may carry `qualityCheck` `{"command": "...",
"blocking": true}`, a data-quality check run after the node's code while it is `Checking`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import msgspec

from dwsched.domain.calendar import zone
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.execution import Recurrence
from dwsched.domain.parameters import is_name
from dwsched.domain.schedule import InstanceMode, parse_cron, parse_window_time

T = TypeVar("T")
PARAM = "Spec"
MAX_NODES = 1000
DEFAULT_START = "1970-01-01 00:00:00"
DEFAULT_END = "9999-01-01 00:00:00"


class WorkflowKind(enum.StrEnum):
    CYCLE = "CycleWorkflow"
    MANUAL = "ManualWorkflow"


class TriggerType(enum.StrEnum):
    SCHEDULER = "Scheduler"
    MANUAL = "Manual"
    TRIGGER_WORKFLOW = "TriggerWorkflow"  # runs when CreateWorkflowInstances triggers it


# The TriggerRecurrence a node may declare (the others are given to instances).
NodeRecurrence = Literal["Normal", "Skip", "Pause"]


class RerunMode(enum.StrEnum):
    """FlowSpec's spelling; the instance APIs say AllAllowed / FailureAllowed / AllDenied."""

    ALLOWED = "Allowed"
    FAILURE_ALLOWED = "FailureAllowed"
    DENIED = "Denied"

    @property
    def api(self) -> str:
        return {"Allowed": "AllAllowed", "FailureAllowed": "FailureAllowed"}.get(
            self.value, "AllDenied"
        )


class FailureStrategy(enum.StrEnum):
    BREAK = "Break"
    CONTINUE = "Continue"


class DependencyType(enum.StrEnum):
    NORMAL = "Normal"
    CROSS_CYCLE_SELF = "CrossCycleDependsOnSelf"
    CROSS_CYCLE_CHILDREN = "CrossCycleDependsOnChildren"
    CROSS_CYCLE_OTHER = "CrossCycleDependsOnOtherNode"


# The spec as JSON: only what dwsched reads; other fields are allowed and ignored.


class _Runtime(msgspec.Struct):
    command: str


class _Parameter(msgspec.Struct):
    name: str
    value: str = ""


class _Script(msgspec.Struct, rename="camel"):
    runtime: _Runtime
    content: str = ""
    path: str = ""
    parameters: list[_Parameter] = msgspec.field(default_factory=list)


class _Output(msgspec.Struct):
    data: str


class _Outputs(msgspec.Struct, rename="camel"):
    node_outputs: list[_Output] = msgspec.field(default_factory=list)


class _BranchOutput(msgspec.Struct):
    data: str


class _Branch(msgspec.Struct):
    when: str
    output: _BranchOutput
    desc: str = ""


class _Branches(msgspec.Struct):
    branches: list[_Branch]


class _RuntimeResource(msgspec.Struct, rename="camel"):
    resource_group: str = ""


class _QualityCheck(msgspec.Struct):
    command: str
    blocking: bool = True


class _Node(msgspec.Struct, rename="camel"):
    id: str
    script: _Script
    name: str = ""
    recurrence: NodeRecurrence = "Normal"
    priority: int = 1
    timeout: int = 0
    rerun_mode: RerunMode | None = None
    rerun_times: int | None = None
    rerun_interval: int | None = None
    runtime_resource: _RuntimeResource = msgspec.field(default_factory=_RuntimeResource)
    inputs: _Outputs = msgspec.field(default_factory=_Outputs)
    outputs: _Outputs = msgspec.field(default_factory=_Outputs)
    branch: _Branches | None = None
    quality_check: _QualityCheck | None = None


class _Depend(msgspec.Struct, rename="camel"):
    type: DependencyType = DependencyType.NORMAL
    output: str | None = None
    node_id: str | None = None


class _Dependency(msgspec.Struct, rename="camel"):
    node_id: str
    depends: list[_Depend] = msgspec.field(default_factory=list)


class _Trigger(msgspec.Struct, rename="camel"):
    type: TriggerType = TriggerType.SCHEDULER
    cron: str | None = None
    start_time: str = DEFAULT_START
    end_time: str = DEFAULT_END
    timezone: str | None = None
    delay_seconds: int = 0


class _Strategy(msgspec.Struct, rename="camel"):
    timeout: int = 0
    instance_mode: str = InstanceMode.T_PLUS_1.value
    rerun_mode: RerunMode = RerunMode.ALLOWED
    rerun_times: int = 3
    rerun_interval: int = 180_000
    failure_strategy: FailureStrategy = FailureStrategy.BREAK


class _Workflow(msgspec.Struct, rename="camel"):
    name: str
    id: str = ""
    description: str = ""
    owner: str = ""
    script: _Script | None = None
    trigger: _Trigger = msgspec.field(default_factory=_Trigger)
    strategy: _Strategy = msgspec.field(default_factory=_Strategy)
    parameters: list[_Parameter] = msgspec.field(default_factory=list)
    nodes: list[_Node] = msgspec.field(default_factory=list)
    dependencies: list[_Dependency] = msgspec.field(default_factory=list)
    outputs: _Outputs = msgspec.field(default_factory=_Outputs)


class _Body(msgspec.Struct, rename="camel"):
    workflows: list[_Workflow]
    name: str = ""
    type: str = ""
    id: str = ""


class _Metadata(msgspec.Struct):
    owner: str = ""
    description: str = ""


class _Envelope(msgspec.Struct):
    kind: str
    spec: _Body
    version: str = "1.1.0"
    metadata: _Metadata = msgspec.field(default_factory=_Metadata)


_decoder = msgspec.json.Decoder(_Envelope)


# The spec as the engine uses it


@dataclass(frozen=True, slots=True)
class Trigger:
    type: TriggerType
    cron: str | None  # None for a manual workflow
    timezone: str
    start_time: str  # as written, local to `timezone`
    end_time: str
    start_ms: int
    end_ms: int
    delay_seconds: int


@dataclass(frozen=True, slots=True)
class Strategy:
    timeout_s: int
    instance_mode: InstanceMode
    rerun_mode: RerunMode
    rerun_times: int
    rerun_interval_ms: int
    failure_strategy: FailureStrategy


@dataclass(frozen=True, slots=True)
class Branch:
    when: str
    output: str
    description: str


@dataclass(frozen=True, slots=True)
class QualityCheck:
    command: str
    blocking: bool


@dataclass(frozen=True, slots=True)
class Upstream:
    """One dependency of a node. `node_id` is a node of the same workflow; "" for an output
    of another workflow's node (`external`): deployment finds its owner and records the link
    (docs/dependencies.md). CrossCycleDependsOnSelf and CrossCycleDependsOnChildren name the
    node itself."""

    node_id: str
    type: DependencyType
    output: str  # the upstream output named, or the node id when named by id

    @property
    def external(self) -> bool:
        return not self.node_id

    @property
    def same_cycle(self) -> bool:
        return self.type is DependencyType.NORMAL


@dataclass(frozen=True, slots=True)
class NodeSpec:
    id: str
    name: str
    command: str  # the task type: DIDE_SHELL, PYTHON, VIRTUAL, CONTROLLER_BRANCH, ODPS_SQL, ...
    content: str
    parameters: tuple[tuple[str, str], ...]
    recurrence: Recurrence
    priority: int
    timeout_s: int
    rerun_mode: RerunMode
    rerun_times: int
    rerun_interval_ms: int
    resource_group: str
    outputs: tuple[str, ...]
    upstream: tuple[Upstream, ...]
    branches: tuple[Branch, ...]
    quality_check: QualityCheck | None
    # Names of `parameters` whose values a run request supplied (TaskParameters,
    # WorkflowParameters): data, never code. Empty for values all deployed; None on a task
    # instance made before dwsched recorded this, when every value counts as supplied.
    supplied: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    kind: WorkflowKind
    client_id: str  # the spec's own id of the workflow
    name: str
    owner: str
    description: str
    trigger: Trigger
    strategy: Strategy
    parameters: tuple[tuple[str, str], ...]
    nodes: tuple[NodeSpec, ...]  # upstream before downstream
    outputs: tuple[str, ...]
    # Outputs the nodes depend on that no node of this workflow produces, each with the
    # JSON path of its first mention: deployment finds their owners in other workflows.
    external: tuple[tuple[str, str], ...] = ()

    @property
    def scheduled(self) -> bool:
        return self.kind is WorkflowKind.CYCLE and self.trigger.cron is not None


def invalid(path: str, problem: str) -> InvalidArgument:
    return InvalidArgument(PARAM, f"The parameter Spec is invalid at {path}: {problem}")


def parse(text: str, default_timezone: str, default_owner: str = "") -> WorkflowSpec:
    """The workflow a FlowSpec text describes, or InvalidArgument naming the JSON path."""
    try:
        envelope = _decoder.decode(text)
    except msgspec.ValidationError as exc:
        # msgspec ends the message with " - at `$.path`", except for a fault at the root.
        message, at, path = str(exc).rpartition(" - at ")
        where = path.removeprefix("`$").removesuffix("`") if at else ""
        raise invalid(f"${where}", message if at else str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise InvalidArgument(PARAM, f"The parameter Spec is not valid JSON: {exc}") from exc
    try:
        kind = WorkflowKind(envelope.kind)
    except ValueError:
        raise invalid(
            "$.kind", f"{envelope.kind!r} is not CycleWorkflow or ManualWorkflow"
        ) from None
    if len(envelope.spec.workflows) != 1:
        raise invalid("$.spec.workflows", "exactly one workflow is expected")
    w = envelope.spec.workflows[0]
    at = "$.spec.workflows[0]"
    if not w.name.strip():
        raise invalid(f"{at}.name", "the workflow needs a name")
    if w.script is not None and w.script.runtime.command != "WORKFLOW":
        raise invalid(f"{at}.script.runtime.command", "a workflow's command must be WORKFLOW")
    owner = w.owner or envelope.metadata.owner or default_owner
    trigger = _trigger(w.trigger, kind, default_timezone, f"{at}.trigger")
    strategy = _strategy(w.strategy, f"{at}.strategy")
    nodes, external = _nodes(w, strategy, at)
    return WorkflowSpec(
        kind=kind,
        client_id=w.id or envelope.spec.id,
        name=w.name.strip(),
        owner=owner,
        description=w.description or envelope.metadata.description,
        trigger=trigger,
        strategy=strategy,
        parameters=_workflow_parameters(w.parameters, f"{at}.parameters"),
        nodes=nodes,
        outputs=tuple(o.data for o in w.outputs.node_outputs),
        external=external,
    )


def _workflow_parameters(items: list[_Parameter], at: str) -> tuple[tuple[str, str], ...]:
    """A workflow's parameters reach its tasks as DataWorks' `k1=v1 k2=v2` text (the
    instances' WorkflowParameters), so each name is one `${name}` can refer to, given once,
    and a value holds no whitespace: refused here rather than failing every task later."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        here = f"{at}[{i}]"
        if not is_name(item.name):
            raise invalid(
                f"{here}.name",
                f"{item.name!r} is not a parameter name (letters, digits and _, "
                "not starting with a digit)",
            )
        if item.name in seen:
            raise invalid(
                f"{here}.name",
                f"the name {item.name!r} is used by parameters[{seen[item.name]}] too",
            )
        seen[item.name] = i
        if any(c.isspace() for c in item.value):
            raise invalid(
                f"{here}.value",
                "a workflow parameter's value cannot contain whitespace "
                "(WorkflowParameters are space-separated name=value pairs)",
            )
    return tuple((item.name, item.value) for item in items)


def _trigger(t: _Trigger, kind: WorkflowKind, default_timezone: str, at: str) -> Trigger:
    tz = t.timezone or default_timezone
    _checked(lambda: zone(tz, f"{at}.timezone"), f"{at}.timezone")
    if kind is WorkflowKind.MANUAL or t.type in (TriggerType.MANUAL, TriggerType.TRIGGER_WORKFLOW):
        cron = None
    elif t.cron is None:
        raise invalid(f"{at}.cron", "a scheduled workflow needs a cron")
    else:
        text = t.cron
        cron = _checked(lambda: parse_cron(text, f"{at}.cron"), f"{at}.cron")
    start_ms = _checked(
        lambda: parse_window_time(t.start_time, tz, f"{at}.startTime"), f"{at}.startTime"
    )
    end_ms = _checked(lambda: parse_window_time(t.end_time, tz, f"{at}.endTime"), f"{at}.endTime")
    if end_ms < start_ms:
        raise invalid(f"{at}.endTime", "the end of the trigger's window is before its start")
    if not 0 <= t.delay_seconds <= 86_400:
        raise invalid(f"{at}.delaySeconds", "must be 0 to 86400")
    if cron is not None:
        shown = TriggerType.SCHEDULER
    elif kind is WorkflowKind.CYCLE and t.type is TriggerType.TRIGGER_WORKFLOW:
        shown = TriggerType.TRIGGER_WORKFLOW
    else:
        shown = TriggerType.MANUAL
    return Trigger(
        shown,
        cron,
        tz,
        t.start_time,
        t.end_time,
        start_ms,
        end_ms,
        t.delay_seconds,
    )


def _checked(check: Callable[[], T], at: str) -> T:
    """`check()`, its InvalidArgument restated as a fault of the Spec at `at`."""
    try:
        return check()
    except InvalidArgument as exc:
        raise invalid(at, exc.message) from exc


def _strategy(s: _Strategy, at: str) -> Strategy:
    try:
        mode = InstanceMode(s.instance_mode)
    except ValueError:
        raise invalid(f"{at}.instanceMode", "must be T+1 or Immediately") from None
    _bounded(s.timeout, 0, 7 * 86_400, f"{at}.timeout")
    _bounded(s.rerun_times, 0, 10, f"{at}.rerunTimes")
    _bounded(s.rerun_interval, 0, 86_400_000, f"{at}.rerunInterval")
    return Strategy(
        s.timeout, mode, s.rerun_mode, s.rerun_times, s.rerun_interval, s.failure_strategy
    )


def _bounded(value: int, low: int, high: int, at: str) -> None:
    if not low <= value <= high:
        raise invalid(at, f"{value} is outside {low}..{high}")


def _nodes(
    w: _Workflow, strategy: Strategy, at: str
) -> tuple[tuple[NodeSpec, ...], tuple[tuple[str, str], ...]]:
    """The nodes, upstream first, and the outputs they depend on that no node of the
    workflow produces (with the JSON path of each one's first mention)."""
    if len(w.nodes) > MAX_NODES:
        raise invalid(f"{at}.nodes", f"at most {MAX_NODES} nodes")
    by_id: dict[str, int] = {}
    owner_of_output: dict[str, str] = {}
    for n, node in enumerate(w.nodes):
        here = f"{at}.nodes[{n}]"
        if not node.id.strip():
            raise invalid(f"{here}.id", "a node needs an id")
        if node.id in by_id:
            raise invalid(
                f"{here}.id", f"the id {node.id!r} is used by nodes[{by_id[node.id]}] too"
            )
        by_id[node.id] = n
        if not node.script.runtime.command.strip():
            raise invalid(f"{here}.script.runtime.command", "a node needs a type")
        _bounded(node.priority, 1, 8, f"{here}.priority")
        _bounded(node.timeout, 0, 7 * 86_400, f"{here}.timeout")
        for o, output in enumerate(node.outputs.node_outputs):
            other = owner_of_output.setdefault(output.data, node.id)
            if other != node.id:
                raise invalid(
                    f"{here}.outputs.nodeOutputs[{o}].data",
                    f"the output {output.data!r} is node {other!r}'s too",
                )
        if node.branch is not None:
            for b, branch in enumerate(node.branch.branches):
                other = owner_of_output.setdefault(branch.output.data, node.id)
                if other != node.id:
                    raise invalid(
                        f"{here}.branch.branches[{b}].output.data",
                        f"the output {branch.output.data!r} is node {other!r}'s too",
                    )
        if node.script.runtime.command == "CONTROLLER_BRANCH" and not (
            node.branch and node.branch.branches
        ):
            raise invalid(f"{here}.branch", "a CONTROLLER_BRANCH node needs branches")
    upstream: dict[str, list[Upstream]] = {node.id: [] for node in w.nodes}
    external: dict[str, str] = {}  # output -> the JSON path of its first mention

    def by_output(output: str, kind: DependencyType, where: str) -> Upstream:
        if output in owner_of_output:
            return Upstream(owner_of_output[output], kind, output)
        external.setdefault(output, where)
        return Upstream("", kind, output)

    def resolve(d: _Depend, dependent: str, where: str) -> Upstream:
        if d.type in (DependencyType.CROSS_CYCLE_SELF, DependencyType.CROSS_CYCLE_CHILDREN):
            # The node's own previous cycle, or its children's: it may name itself, or nothing.
            named = d.node_id if d.node_id is not None else owner_of_output.get(d.output or "")
            if (d.node_id is not None or d.output is not None) and named != dependent:
                field = "nodeId" if d.node_id is not None else "output"
                raise invalid(
                    f"{where}.{field}",
                    f"a {d.type.value} dependency names the node itself ({dependent!r}) or nothing",
                )
            return Upstream(dependent, d.type, dependent)
        if d.node_id is not None:
            if d.node_id not in by_id:
                raise invalid(f"{where}.nodeId", f"no node has the id {d.node_id!r}")
            found = Upstream(d.node_id, d.type, d.node_id)
        elif d.output is None or not d.output.strip():
            raise invalid(where, "a dependency names an upstream output or nodeId")
        else:
            found = by_output(d.output, d.type, f"{where}.output")
        if found.node_id == dependent:
            kind = "CrossCycleDependsOnSelf" if found.same_cycle else d.type.value
            raise invalid(
                where,
                f"the node {dependent!r} cannot depend on itself in the same cycle; "
                f"use the type {kind} for its previous cycle"
                if found.same_cycle
                else f"the node {dependent!r} names itself: use CrossCycleDependsOnSelf",
            )
        return found

    for n, node in enumerate(w.nodes):
        for i, item in enumerate(node.inputs.node_outputs):
            where = f"{at}.nodes[{n}].inputs.nodeOutputs[{i}].data"
            if not item.data.strip():
                raise invalid(where, "an input names an output")
            found = by_output(item.data, DependencyType.NORMAL, where)
            if found.node_id == node.id:
                raise invalid(where, f"the node {node.id!r} cannot take its own output as input")
            if found not in upstream[node.id]:
                upstream[node.id].append(found)
    for k, dependency in enumerate(w.dependencies):
        where = f"{at}.dependencies[{k}]"
        if dependency.node_id not in by_id:
            raise invalid(f"{where}.nodeId", f"no node has the id {dependency.node_id!r}")
        for j, depend in enumerate(dependency.depends):
            found = resolve(depend, dependency.node_id, f"{where}.depends[{j}]")
            if found not in upstream[dependency.node_id]:
                upstream[dependency.node_id].append(found)
    order = _topological(w, upstream, at)
    nodes = tuple(_node(w.nodes[by_id[i]], upstream[i], strategy) for i in order)
    return nodes, tuple(external.items())


def _topological(w: _Workflow, upstream: dict[str, list[Upstream]], at: str) -> list[str]:
    """Node ids, upstream first (same-cycle dependencies only); a cycle is an error."""
    same_cycle = {
        node: [u.node_id for u in ups if u.same_cycle and not u.external]
        for node, ups in upstream.items()
    }
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            loop = " → ".join([*path[path.index(node) :], node])
            raise invalid(f"{at}.dependencies", f"the dependencies form a cycle: {loop}")
        state[node] = 1
        for up in same_cycle[node]:
            visit(up, [*path, node])
        state[node] = 2
        order.append(node)

    for node in w.nodes:
        visit(node.id, [])
    return order


def _node(node: _Node, upstream: list[Upstream], strategy: Strategy) -> NodeSpec:
    branches = node.branch.branches if node.branch else []
    return NodeSpec(
        id=node.id,
        name=node.name or node.id,
        command=node.script.runtime.command,
        content=node.script.content,
        parameters=tuple((p.name, p.value) for p in node.script.parameters),
        recurrence=Recurrence(node.recurrence),
        priority=node.priority,
        timeout_s=node.timeout or strategy.timeout_s,
        rerun_mode=node.rerun_mode or strategy.rerun_mode,
        rerun_times=strategy.rerun_times if node.rerun_times is None else node.rerun_times,
        rerun_interval_ms=(
            strategy.rerun_interval_ms if node.rerun_interval is None else node.rerun_interval
        ),
        resource_group=node.runtime_resource.resource_group,
        outputs=tuple(o.data for o in node.outputs.node_outputs),
        upstream=tuple(upstream),
        branches=tuple(Branch(b.when, b.output.data, b.desc) for b in branches),
        quality_check=(
            QualityCheck(node.quality_check.command, node.quality_check.blocking)
            if node.quality_check
            else None
        ),
    )


def summary(text: str) -> dict[str, Any]:
    """The few envelope fields a definition listing shows, read leniently from stored text."""
    try:
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return {}
    return raw if isinstance(raw, dict) else {}
