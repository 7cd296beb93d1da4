"""domain.flowspec, pure: reading a FlowSpec into a workflow, its defaults and inheritance, and
every kind of bad input refused as InvalidArgument `Spec` naming the JSON path of the fault."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from dwsched.domain import flowspec
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.flowspec import (
    DependencyType,
    FailureStrategy,
    Recurrence,
    RerunMode,
    TriggerType,
    WorkflowKind,
    parse,
    summary,
)
from dwsched.domain.schedule import InstanceMode

SH = "Asia/Shanghai"
W = "$.spec.workflows[0]"


def node(id: str, command: str = "DIDE_SHELL", **fields: Any) -> dict[str, Any]:
    return {"id": id, "script": {"runtime": {"command": command}}, **fields}


def spec(kind: str = "CycleWorkflow", **workflow: Any) -> dict[str, Any]:
    """A valid envelope of one scheduled workflow with a node `a`; `workflow` overrides."""
    w: dict[str, Any] = {
        "name": "daily",
        "trigger": {"type": "Scheduler", "cron": "00 30 02 * * ?"},
        "nodes": [node("a")],
        **workflow,
    }
    return {"version": "1.1.0", "kind": kind, "spec": {"workflows": [w]}}


def read(value: dict[str, Any] | str, tz: str = SH, owner: str = "") -> flowspec.WorkflowSpec:
    return parse(value if isinstance(value, str) else json.dumps(value), tz, owner)


# Good specs


def test_a_minimal_scheduled_workflow_and_its_defaults() -> None:
    w = read(spec(), owner="1000")
    assert (w.kind, w.name, w.owner, w.scheduled) == (WorkflowKind.CYCLE, "daily", "1000", True)
    t = w.trigger
    assert (t.type, t.cron, t.timezone, t.delay_seconds) == (
        TriggerType.SCHEDULER,
        "00 30 02 * * ?",
        SH,
        0,
    )
    assert (t.start_time, t.end_time) == (flowspec.DEFAULT_START, flowspec.DEFAULT_END)
    assert t.start_ms == -8 * 3_600_000  # 1970-01-01 00:00:00 in Shanghai
    s = w.strategy
    assert s == flowspec.Strategy(
        0, InstanceMode.T_PLUS_1, RerunMode.ALLOWED, 3, 180_000, FailureStrategy.BREAK
    )
    (a,) = w.nodes
    assert (a.id, a.name, a.command, a.content, a.parameters) == ("a", "a", "DIDE_SHELL", "", ())
    assert (a.recurrence, a.priority, a.resource_group) == (Recurrence.NORMAL, 1, "")
    assert (a.rerun_mode, a.rerun_times, a.rerun_interval_ms, a.timeout_s) == (
        RerunMode.ALLOWED,
        3,
        180_000,
        0,
    )
    assert (a.upstream, a.outputs, a.branches, a.quality_check) == ((), (), (), None)


def test_nodes_inherit_the_strategy_unless_they_say_otherwise() -> None:
    strategy = {"rerunMode": "FailureAllowed", "rerunTimes": 5, "rerunInterval": 60_000}
    strategy |= {"timeout": 600, "instanceMode": "Immediately", "failureStrategy": "Continue"}
    w = read(
        spec(
            strategy=strategy,
            nodes=[
                node("inherits"),
                node(
                    "own",
                    rerunMode="Denied",
                    rerunTimes=0,  # zero is a value, not "unset"
                    rerunInterval=0,
                    timeout=30,
                ),
            ],
        )
    )
    assert w.strategy.instance_mode is InstanceMode.IMMEDIATELY
    assert w.strategy.failure_strategy is FailureStrategy.CONTINUE
    inherits, own = w.nodes
    assert (inherits.rerun_mode, inherits.rerun_times, inherits.rerun_interval_ms) == (
        RerunMode.FAILURE_ALLOWED,
        5,
        60_000,
    )
    assert inherits.timeout_s == 600
    assert (own.rerun_mode, own.rerun_times, own.rerun_interval_ms, own.timeout_s) == (
        RerunMode.DENIED,
        0,
        0,
        30,
    )


@pytest.mark.parametrize(
    ("mode", "api"),
    [("Allowed", "AllAllowed"), ("FailureAllowed", "FailureAllowed"), ("Denied", "AllDenied")],
)
def test_rerun_modes_as_the_instance_apis_spell_them(mode: str, api: str) -> None:
    assert RerunMode(mode).api == api


def test_a_node_with_everything() -> None:
    a = node(
        "a",
        "CONTROLLER_BRANCH",
        name="Branch A",
        recurrence="Skip",
        priority=8,
        runtimeResource={"resourceGroup": "g1"},
        branch={
            "branches": [
                {"when": "${x} == 1", "output": {"data": "a.yes"}, "desc": "one"},
                {"when": "${x} != 1", "output": {"data": "a.no"}},
            ]
        },
        outputs={"nodeOutputs": [{"data": "a.out"}]},
        qualityCheck={"command": "test -s out"},
        unknownField={"kept": True},  # fields dwsched does not read are accepted
    )
    a["script"] |= {"content": "echo hi", "parameters": [{"name": "x", "value": "1"}]}
    (n,) = read(spec(nodes=[a])).nodes
    assert (n.name, n.command, n.content, n.parameters) == (
        "Branch A",
        "CONTROLLER_BRANCH",
        "echo hi",
        (("x", "1"),),
    )
    assert (n.recurrence, n.priority, n.resource_group, n.outputs) == (
        Recurrence.SKIP,
        8,
        "g1",
        ("a.out",),
    )
    assert n.branches == (
        flowspec.Branch("${x} == 1", "a.yes", "one"),
        flowspec.Branch("${x} != 1", "a.no", ""),
    )
    assert n.quality_check == flowspec.QualityCheck("test -s out", blocking=True)


def test_dependencies_by_input_output_and_node_id_come_upstream_first() -> None:
    nodes = [
        node("d", inputs={"nodeOutputs": [{"data": "c.out"}]}),  # listed first, runs last
        node("c", outputs={"nodeOutputs": [{"data": "c.out"}]}),
        node("b", outputs={"nodeOutputs": [{"data": "b.out"}]}),
        node("a"),
    ]
    dependencies = [
        {"nodeId": "c", "depends": [{"output": "b.out"}, {"nodeId": "a"}]},
        {"nodeId": "d", "depends": [{"output": "c.out"}]},  # the same as its input: once
        {"nodeId": "a", "depends": [{"nodeId": "d", "type": "CrossCycleDependsOnOtherNode"}]},
    ]
    w = read(spec(nodes=nodes, dependencies=dependencies))
    order = [n.id for n in w.nodes]
    by_id = {n.id: n for n in w.nodes}
    assert order.index("b") < order.index("c") < order.index("d")
    assert order.index("a") < order.index("c")
    assert by_id["c"].upstream == (
        flowspec.Upstream("b", DependencyType.NORMAL, "b.out"),
        flowspec.Upstream("a", DependencyType.NORMAL, "a"),
    )
    assert by_id["d"].upstream == (flowspec.Upstream("c", DependencyType.NORMAL, "c.out"),)
    # A cross-cycle dependency is kept, but neither orders nor loops (d is below a).
    assert by_id["a"].upstream == (flowspec.Upstream("d", DependencyType.CROSS_CYCLE_OTHER, "d"),)


def test_outputs_no_node_of_the_workflow_has_are_left_to_deployment_with_their_paths() -> None:
    nodes = [
        node("a", inputs={"nodeOutputs": [{"data": "ods.orders"}]}),
        node("b", outputs={"nodeOutputs": [{"data": "b.out"}]}),
    ]
    dependencies = [
        {"nodeId": "b", "depends": [{"output": "ods.users"}, {"output": "ods.orders"}]},
        {"nodeId": "b", "depends": [{"type": "CrossCycleDependsOnSelf"}]},
        {"nodeId": "a", "depends": [{"type": "CrossCycleDependsOnChildren", "nodeId": "a"}]},
        {
            "nodeId": "a",
            "depends": [{"type": "CrossCycleDependsOnOtherNode", "output": "dim.shops"}],
        },
    ]
    w = read(spec(nodes=nodes, dependencies=dependencies))
    assert w.external == (
        ("ods.orders", f"{W}.nodes[0].inputs.nodeOutputs[0].data"),
        ("ods.users", f"{W}.dependencies[0].depends[0].output"),
        ("dim.shops", f"{W}.dependencies[3].depends[0].output"),
    )
    by_id = {n.id: n for n in w.nodes}
    assert by_id["a"].upstream == (
        flowspec.Upstream("", DependencyType.NORMAL, "ods.orders"),
        flowspec.Upstream("a", DependencyType.CROSS_CYCLE_CHILDREN, "a"),
        flowspec.Upstream("", DependencyType.CROSS_CYCLE_OTHER, "dim.shops"),
    )
    assert by_id["b"].upstream == (
        flowspec.Upstream("", DependencyType.NORMAL, "ods.users"),
        flowspec.Upstream("", DependencyType.NORMAL, "ods.orders"),
        flowspec.Upstream("b", DependencyType.CROSS_CYCLE_SELF, "b"),
    )


@pytest.mark.parametrize(
    ("kind", "trigger", "shown", "cron"),
    [
        ("CycleWorkflow", {"type": "Scheduler", "cron": "00 00 01 * * ?"}, "Scheduler", True),
        ("CycleWorkflow", {"type": "Manual", "cron": "00 00 01 * * ?"}, "Manual", False),
        ("CycleWorkflow", {"type": "TriggerWorkflow"}, "TriggerWorkflow", False),
        ("ManualWorkflow", {}, "Manual", False),
        ("ManualWorkflow", {"type": "Scheduler", "cron": "00 00 01 * * ?"}, "Manual", False),
        ("ManualWorkflow", {"type": "TriggerWorkflow"}, "Manual", False),
    ],
)
def test_which_workflows_are_scheduled(
    kind: str, trigger: dict[str, Any], shown: str, cron: bool
) -> None:
    w = read(spec(kind, trigger=trigger))
    assert w.trigger.type == shown
    assert (w.trigger.cron is not None) is cron is w.scheduled


def test_the_zone_window_owner_and_parameters() -> None:
    trigger = {
        "cron": "00 00 01 * * ?",
        "timezone": "UTC",
        "startTime": "2025-01-01 00:00:00",
        "endTime": "2025-01-01 00:00:00",  # a window of one instant is allowed
        "delaySeconds": 86_400,
    }
    envelope = spec(trigger=trigger, id="w1", parameters=[{"name": "region", "value": "hz"}])
    envelope["metadata"] = {"owner": "2000", "description": "from metadata"}
    w = read(envelope, owner="1000")
    assert (w.trigger.timezone, w.trigger.delay_seconds) == ("UTC", 86_400)
    assert w.trigger.start_ms == w.trigger.end_ms == 1_735_689_600_000
    assert (w.owner, w.description, w.client_id) == ("2000", "from metadata", "w1")
    assert w.parameters == (("region", "hz"),)
    envelope["spec"]["workflows"][0] |= {"owner": "3000", "description": "own"}
    assert (read(envelope).owner, read(envelope).description) == ("3000", "own")


def test_a_workflow_of_no_nodes_is_a_workflow() -> None:
    assert read(spec(nodes=[])).nodes == ()


def test_the_summary_is_read_leniently() -> None:
    assert summary(json.dumps(spec()))["kind"] == "CycleWorkflow"
    assert summary("not json") == {}
    assert summary("[1, 2]") == {}


# Bad specs: each fault names its JSON path

Edit = Callable[[dict[str, Any]], None]


def at_workflow(**fields: Any) -> Edit:
    return lambda s: s["spec"]["workflows"][0].update(fields)


def at_node(i: int, **fields: Any) -> Edit:
    return lambda s: s["spec"]["workflows"][0]["nodes"][i].update(fields)


def at_trigger(**fields: Any) -> Edit:
    return lambda s: s["spec"]["workflows"][0]["trigger"].update(fields)


def two_nodes(b: dict[str, Any], a: dict[str, Any] | None = None) -> Edit:
    return at_workflow(nodes=[a or node("a"), b])


BAD: list[tuple[str, Edit, str, str]] = [
    # (case, edit of a valid spec, path, words of the problem)
    ("kind unknown", lambda s: s.update(kind="Daily"), "$.kind", "'Daily' is not CycleWorkflow"),
    (
        "kind not a string",
        lambda s: s.update(kind=1),
        "$.kind",
        "Expected `str`, got `int`",
    ),
    (
        "no workflow",
        lambda s: s["spec"].update(workflows=[]),
        "$.spec.workflows",
        "exactly one workflow",
    ),
    (
        "two workflows",
        lambda s: s["spec"]["workflows"].append(copy.deepcopy(s["spec"]["workflows"][0])),
        "$.spec.workflows",
        "exactly one workflow",
    ),
    ("blank name", at_workflow(name="  "), f"{W}.name", "needs a name"),
    (
        "no name",
        lambda s: s["spec"]["workflows"][0].pop("name"),
        W,
        "missing required field `name`",
    ),
    (
        "workflow script",
        at_workflow(script={"runtime": {"command": "DIDE_SHELL"}}),
        f"{W}.script.runtime.command",
        "must be WORKFLOW",
    ),
    ("zone", at_trigger(timezone="Mars/Base"), f"{W}.trigger.timezone", "IANA time zone"),
    (
        "no cron",
        lambda s: s["spec"]["workflows"][0]["trigger"].pop("cron"),
        f"{W}.trigger.cron",
        "needs a cron",
    ),
    ("bad cron", at_trigger(cron="* * *"), f"{W}.trigger.cron", "expected 6"),
    ("startTime", at_trigger(startTime="yesterday"), f"{W}.trigger.startTime", "yyyy-MM-dd"),
    ("endTime", at_trigger(endTime="2025-13-01 00:00:00"), f"{W}.trigger.endTime", "invalid"),
    (
        "window backwards",
        at_trigger(startTime="2025-01-02 00:00:00", endTime="2025-01-01 00:00:00"),
        f"{W}.trigger.endTime",
        "before its start",
    ),
    ("delay", at_trigger(delaySeconds=86_401), f"{W}.trigger.delaySeconds", "0 to 86400"),
    ("negative delay", at_trigger(delaySeconds=-1), f"{W}.trigger.delaySeconds", "0 to 86400"),
    (
        "trigger type",
        at_trigger(type="Hourly"),
        f"{W}.trigger.type",
        "Invalid enum value 'Hourly'",
    ),
    (
        "instanceMode",
        at_workflow(strategy={"instanceMode": "T+2"}),
        f"{W}.strategy.instanceMode",
        "T+1 or Immediately",
    ),
    (
        "rerunTimes",
        at_workflow(strategy={"rerunTimes": 11}),
        f"{W}.strategy.rerunTimes",
        "11 is outside 0..10",
    ),
    (
        "rerunInterval",
        at_workflow(strategy={"rerunInterval": -1}),
        f"{W}.strategy.rerunInterval",
        "outside 0..86400000",
    ),
    (
        "timeout",
        at_workflow(strategy={"timeout": 7 * 86_400 + 1}),
        f"{W}.strategy.timeout",
        "outside",
    ),
    (
        "rerunMode",
        at_workflow(strategy={"rerunMode": "Never"}),
        f"{W}.strategy.rerunMode",
        "Invalid enum value 'Never'",
    ),
    (
        "too many nodes",
        at_workflow(nodes=[node(f"n{i}") for i in range(flowspec.MAX_NODES + 1)]),
        f"{W}.nodes",
        "at most 1000 nodes",
    ),
    ("node without script", at_workflow(nodes=[{"id": "a"}]), f"{W}.nodes[0]", "`script`"),
    ("blank node id", at_node(0, id=" "), f"{W}.nodes[0].id", "needs an id"),
    (
        "duplicate node id",
        two_nodes(node("a")),
        f"{W}.nodes[1].id",
        "'a' is used by nodes[0] too",
    ),
    (
        "no type",
        at_node(0, script={"runtime": {"command": ""}}),
        f"{W}.nodes[0].script.runtime.command",
        "a node needs a type",
    ),
    ("priority", at_node(0, priority=9), f"{W}.nodes[0].priority", "9 is outside 1..8"),
    ("priority type", at_node(0, priority="high"), f"{W}.nodes[0].priority", "Expected `int`"),
    ("node timeout", at_node(0, timeout=-5), f"{W}.nodes[0].timeout", "outside"),
    (
        "recurrence",
        at_node(0, recurrence="Sometimes"),
        f"{W}.nodes[0].recurrence",
        "Invalid enum value 'Sometimes'",
    ),
    (
        "shared output",
        two_nodes(
            node("b", outputs={"nodeOutputs": [{"data": "x"}]}),
            node("a", outputs={"nodeOutputs": [{"data": "x"}]}),
        ),
        f"{W}.nodes[1].outputs.nodeOutputs[0].data",
        "the output 'x' is node 'a''s too",
    ),
    (
        "branch output shared",
        two_nodes(
            node(
                "b",
                "CONTROLLER_BRANCH",
                branch={"branches": [{"when": "1 == 1", "output": {"data": "x"}}]},
            ),
            node("a", outputs={"nodeOutputs": [{"data": "x"}]}),
        ),
        f"{W}.nodes[1].branch.branches[0].output.data",
        "is node 'a''s too",
    ),
    (
        "branch without branches",
        at_node(0, script={"runtime": {"command": "CONTROLLER_BRANCH"}}),
        f"{W}.nodes[0].branch",
        "needs branches",
    ),
    (
        "empty branches",
        at_node(0, script={"runtime": {"command": "CONTROLLER_BRANCH"}}, branch={"branches": []}),
        f"{W}.nodes[0].branch",
        "needs branches",
    ),
    (
        "empty input",
        at_node(0, inputs={"nodeOutputs": [{"data": " "}]}),
        f"{W}.nodes[0].inputs.nodeOutputs[0].data",
        "an input names an output",
    ),
    (
        "dependency of an unknown node",
        at_workflow(dependencies=[{"nodeId": "z", "depends": []}]),
        f"{W}.dependencies[0].nodeId",
        "no node has the id 'z'",
    ),
    (
        "depends on an unknown node",
        at_workflow(dependencies=[{"nodeId": "a", "depends": [{"nodeId": "z"}]}]),
        f"{W}.dependencies[0].depends[0].nodeId",
        "no node has the id 'z'",
    ),
    (
        "depends on itself in the same cycle",
        at_workflow(dependencies=[{"nodeId": "a", "depends": [{"nodeId": "a"}]}]),
        f"{W}.dependencies[0].depends[0]",
        "use the type CrossCycleDependsOnSelf",
    ),
    (
        "its own previous cycle names another node",
        at_workflow(
            dependencies=[
                {"nodeId": "a", "depends": [{"nodeId": "b", "type": "CrossCycleDependsOnSelf"}]}
            ]
        ),
        f"{W}.dependencies[0].depends[0].nodeId",
        "names the node itself ('a') or nothing",
    ),
    (
        "depends on nothing",
        at_workflow(dependencies=[{"nodeId": "a", "depends": [{"type": "Normal"}]}]),
        f"{W}.dependencies[0].depends[0]",
        "names an upstream output or nodeId",
    ),
    (
        "dependency type",
        at_workflow(dependencies=[{"nodeId": "a", "depends": [{"nodeId": "a", "type": "X"}]}]),
        f"{W}.dependencies[0].depends[0].type",
        "Invalid enum value 'X'",
    ),
    (
        "cycle",
        at_workflow(
            nodes=[node("a"), node("b"), node("c")],
            dependencies=[
                {"nodeId": "b", "depends": [{"nodeId": "a"}]},
                {"nodeId": "c", "depends": [{"nodeId": "b"}]},
                {"nodeId": "a", "depends": [{"nodeId": "c"}]},
            ],
        ),
        f"{W}.dependencies",
        "form a cycle: a → c → b → a",
    ),
    (
        "parameter name",
        at_workflow(parameters=[{"name": "1st", "value": "x"}]),
        f"{W}.parameters[0].name",
        "'1st' is not a parameter name",
    ),
    (
        "parameter twice",
        at_workflow(parameters=[{"name": "p", "value": "1"}, {"name": "p", "value": "2"}]),
        f"{W}.parameters[1].name",
        "used by parameters[0] too",
    ),
    (
        "parameter value with a space",
        at_workflow(parameters=[{"name": "p", "value": "a b"}]),
        f"{W}.parameters[0].value",
        "cannot contain whitespace",
    ),
]


@pytest.mark.parametrize(("edit", "path", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_spec_names_the_path_of_its_fault(edit: Edit, path: str, words: str) -> None:
    good = spec()
    read(good)  # the spec is valid before the edit
    edit(good)
    with pytest.raises(InvalidArgument) as caught:
        read(good)
    assert caught.value.param == "Spec"
    prefix = f"The parameter Spec is invalid at {path}: "
    assert caught.value.message.startswith(prefix), caught.value.message
    assert words in caught.value.message.removeprefix(prefix)


@pytest.mark.parametrize("text", ["{", "", '{"kind": ', '{"kind": "CycleWorkflow",}'])
def test_text_that_is_not_json(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        read(text)
    assert caught.value.param == "Spec"
    assert caught.value.message.startswith("The parameter Spec is not valid JSON: ")


@pytest.mark.parametrize(
    ("envelope", "words"),
    [
        ({"spec": {"workflows": []}}, "Object missing required field `kind`"),
        ([], "Expected `object`, got `array`"),
    ],
)
def test_a_fault_at_the_root_names_the_root(envelope: Any, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        read(json.dumps(envelope))
    assert caught.value.message == f"The parameter Spec is invalid at $: {words}"
