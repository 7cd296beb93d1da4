"""Pure tests of RAM-style policy documents (`dwsched.domain.policies`): parsing with JSON
paths, wildcards, Allow/Deny, conditions, built-ins, and a property test against a reference
evaluator written here independently."""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from dwsched.domain.errors import InvalidArgument
from dwsched.domain.policies import (
    BUILTIN,
    BUILTIN_DESCRIPTIONS,
    BUILTIN_DOCUMENTS,
    MAX_DOCUMENT_CHARS,
    Decision,
    Policy,
    Reason,
    evaluate,
    is_builtin,
    parse_policy,
    wildcard_match,
    workspace_resource,
)

WS1 = workspace_resource(1)
TENANT = workspace_resource(None)
LIST = "dataworks:ListWorkflowInstances"
STOP = "dataworks:StopTaskInstances"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


def allow(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def policy(*statements: dict[str, Any]) -> Policy:
    return parse_policy(doc(*statements))


def decide(
    p: Policy, action: str = LIST, resource: str = WS1, context: dict[str, str] | None = None
) -> Decision:
    return evaluate([("P", p)], action, resource, context or {})


def allowed(p: Policy, action: str = LIST, resource: str = WS1, **context: str) -> bool:
    ctx = {k.replace("_", ":", 1): v for k, v in context.items()}
    return decide(p, action, resource, ctx).allowed


def when(condition: dict[str, Any]) -> Policy:
    return policy(allow(Condition=condition))


# Parsing: every fault names its JSON path


def _statements(n: int) -> str:
    return doc(*[allow() for _ in range(n)])


BAD_DOCUMENTS = [
    ("{", "is not valid JSON"),
    ("[]", "invalid at $: Expected `object`, got `array`"),
    ('{"Statement": []}', "invalid at $: Object missing required field `Version`"),
    (
        '{"Version": "2", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}',
        "invalid at $.Version: '2' is not supported",
    ),
    ('{"Version": 1, "Statement": []}', "invalid at $.Version: Expected `str`, got `int`"),
    ('{"Version": "1", "Statement": {}}', "invalid at $.Statement: Expected `array`"),
    ('{"Version": "1", "Statement": []}', "invalid at $.Statement: at least one statement"),
    (_statements(101), "invalid at $.Statement: at most 100 statements"),
    ('{"Version": "1", "Statement": [], "Id": "x"}', "invalid at $: Object contains unknown"),
    (doc(allow(), {**allow(), "Effect": "allow"}), "at $.Statement[1].Effect: 'allow' is not"),
    (doc({"Action": "*", "Resource": "*"}), "at $.Statement[0]: Object missing required field"),
    (doc({**allow(), "Sid": "s"}), "at $.Statement[0]: Object contains unknown field `Sid`"),
    (doc(allow(action=5)), "at $.Statement[0].Action: Expected `str | array`, got `int`"),
    (doc(allow(action=["*", 5])), "at $.Statement[0].Action[1]: Expected `str`"),
    (doc(allow(action="ecs:*")), "at $.Statement[0].Action: 'ecs:*' is not * or dataworks:"),
    (doc(allow(action=["dataworks:List*", "dataworks:List-X"])), "at $.Statement[0].Action[1]:"),
    (doc(allow(action="dataworks:")), "at $.Statement[0].Action: 'dataworks:'"),
    (doc(allow(action=[])), "at $.Statement[0].Action: at least one Action"),
    (doc({**allow(), "NotAction": "*"}), "at $.Statement[0]: a statement has Action or NotAction"),
    (doc({"Effect": "Deny", "Resource": "*"}), "at $.Statement[0]: a statement needs Action"),
    (doc({"Effect": "Deny", "Action": "*"}), "at $.Statement[0]: a statement needs Resource"),
    (doc(allow(resource="acs:ecs:*:*:*")), "at $.Statement[0].Resource: 'acs:ecs:*:*:*' is not"),
    (doc(allow(resource="acs:dataworks:*:*:project/1")), "at $.Statement[0].Resource:"),
    (doc(allow(resource="acs:dataworks:*:*:Workspace/1")), "at $.Statement[0].Resource:"),
    (doc(allow(resource="acs:dataworks:*:*:workspace/ab")), "at $.Statement[0].Resource:"),
    (
        doc({"Effect": "Allow", "Action": "*", "NotResource": ["*", "x"]}),
        "at $.Statement[0].NotResource[1]: 'x' is not",
    ),
    (doc(allow(Condition={})), "at $.Statement[0].Condition: a Condition needs"),
    (doc(allow(Condition=[])), "at $.Statement[0].Condition: Expected `object`, got `array`"),
    (doc(allow(action=None)), "at $.Statement[0].Action: Expected `str | array`, got `null`"),
    (
        doc(allow(Condition={"StringEqual": {"acs:SourceIp": "x"}})),
        "at $.Statement[0].Condition.StringEqual: unknown condition operator 'StringEqual'",
    ),
    (
        doc(allow(Condition={"stringequals": {"acs:SourceIp": "x"}})),
        "(did you mean StringEquals?)",
    ),
    (
        doc(allow(Condition={"StringEqualsIfExists": {"acs:SourceIp": "x"}})),
        "at $.Statement[0].Condition.StringEqualsIfExists: unknown condition operator",
    ),
    (doc(allow(Condition={"Bool": "true"})), "at $.Statement[0].Condition.Bool: expected an"),
    (doc(allow(Condition={"Bool": {}})), "at $.Statement[0].Condition.Bool: expected an"),
    (
        doc(allow(Condition={"StringEquals": {"acs:UserId": "1"}})),
        'at $.Statement[0].Condition.StringEquals["acs:UserId"]: unknown condition key',
    ),
    (
        doc(allow(Condition={"StringEquals": {"acs:SourceIp": []}})),
        '.StringEquals["acs:SourceIp"]: at least one value is required',
    ),
    (
        doc(allow(Condition={"StringEquals": {"acs:SourceIp": None}})),
        '.StringEquals["acs:SourceIp"]: expected a string, number or boolean',
    ),
    (
        doc(allow(Condition={"StringEquals": {"acs:SourceIp": ["a", {"b": 1}]}})),
        '.StringEquals["acs:SourceIp"][1]: expected a string, number or boolean',
    ),
    (
        doc(allow(Condition={"IpAddress": {"acs:SourceIp": ["10.0.0.0/8", "10.0.0.1/8"]}})),
        "at $.Statement[0].Condition.IpAddress[\"acs:SourceIp\"][1]: '10.0.0.1/8' is not an IP",
    ),
    (
        doc(allow(Condition={"NotIpAddress": {"acs:SourceIp": "localhost"}})),
        ".NotIpAddress[\"acs:SourceIp\"]: 'localhost' is not an IP address or CIDR block",
    ),
    (
        doc(allow(Condition={"NumericLessThan": {"dwsched:ProjectId": "ten"}})),
        ".NumericLessThan[\"dwsched:ProjectId\"]: 'ten' is not a decimal number",
    ),
    (
        doc(allow(Condition={"NumericEquals": {"dwsched:ProjectId": True}})),
        ".NumericEquals[\"dwsched:ProjectId\"]: 'true' is not a decimal number",
    ),
    (
        doc(allow(Condition={"DateLessThan": {"acs:CurrentTime": "2026-11-28T11:00:00"}})),
        ".DateLessThan[\"acs:CurrentTime\"]: '2026-11-28T11:00:00' is not an ISO-8601 time with a",
    ),
    (
        doc(allow(Condition={"DateGreaterThan": {"acs:CurrentTime": "tomorrow"}})),
        ".DateGreaterThan[\"acs:CurrentTime\"]: 'tomorrow' is not",
    ),
    (
        doc(allow(Condition={"Bool": {"acs:SecureTransport": "yes"}})),
        ".Bool[\"acs:SecureTransport\"]: 'yes' is not true or false",
    ),
    (
        doc(allow(), deny(Condition={"Bool": {"acs:SecureTransport": ["true", 1]}})),
        "at $.Statement[1].Condition.Bool[\"acs:SecureTransport\"][1]: '1' is not true or false",
    ),
    (" " * (MAX_DOCUMENT_CHARS + 1), "has 6145 characters; at most 6144 are allowed"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_DOCUMENTS)
def test_a_bad_document_is_refused_naming_the_json_path(text: str, expected: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_policy(text)
    assert caught.value.param == "PolicyDocument"
    assert caught.value.message.startswith("The parameter PolicyDocument ")
    assert expected in caught.value.message


def test_the_parameter_name_is_the_callers() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_policy(doc(allow(action="x")), "--document")
    assert caught.value.param == "--document"
    assert caught.value.message.startswith(
        "The parameter --document is invalid at $.Statement[0].Action: 'x'"
    )


def test_a_document_of_exactly_the_limit_is_accepted() -> None:
    text = doc(allow())
    parse_policy(text + " " * (MAX_DOCUMENT_CHARS - len(text)))


def test_a_good_document_is_read() -> None:
    p = policy(
        allow(["dataworks:List*", "DataWorks:Get*"], "acs:dataworks:cn-hangzhou:123:workspace/1"),
        {"Effect": "Deny", "NotAction": "dataworks:Get?", "NotResource": ["*"]},
        deny(
            Condition={
                "StringEquals": {"ACS:SOURCEIP": ["10.0.0.1", 7, True, 1.5]},
                "NumericGreaterThan": {"dwsched:ProjectId": 1e3},
            }
        ),
    )
    first, second, third = p.statements
    assert first.actions == ("dataworks:list*", "dataworks:get*")
    assert first.resources == ("acs:dataworks:cn-hangzhou:123:workspace/1",)
    assert (second.not_action, second.not_resource) == (True, True)
    equals, greater = third.conditions
    assert equals.key == "acs:SourceIp"
    assert equals.values == ("10.0.0.1", "7", "true", "1.5")
    assert greater.values == ("1000.0",)


# Wildcards


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*", "", True),
        ("*", "anything", True),
        ("", "", True),
        ("", "a", False),
        ("a", "a", True),
        ("a", "A", False),
        ("?", "a", True),
        ("?", "", False),
        ("?", "ab", False),
        ("a*b", "ab", True),
        ("a*b", "axxb", True),
        ("a*b", "axxbc", False),
        ("*b*", "abc", True),
        ("a?c*", "abc", True),
        ("a?c*", "ac", False),
        ("**", "x", True),
        ("*a*a*a*b", "aaaaaaaab", True),
        ("List*Instances", "ListTaskInstances", True),
        ("List*Instances", "ListTaskInstance", False),
    ],
)
def test_wildcard_match(pattern: str, text: str, expected: bool) -> None:
    assert wildcard_match(pattern, text) is expected


def test_wildcards_take_no_exponential_time() -> None:
    started = time.perf_counter()
    assert not wildcard_match("*a" * 200 + "*b", "a" * 3000)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "dataworks:ListWorkflowInstances", True),
        ("dataworks:*", "dataworks:ListWorkflowInstances", True),
        ("dataworks:List*", "dataworks:ListWorkflowInstances", True),
        ("dataworks:List*", "dataworks:GetWorkflowInstance", False),
        ("dataworks:*Task*", "dataworks:StopTaskInstances", True),
        ("dataworks:*Task*", "dataworks:StopWorkflowInstances", False),
        ("dataworks:Get?orkflowInstance", "dataworks:GetWorkflowInstance", True),
        ("dataworks:Get?orkflowInstance", "dataworks:GetWorkflowInstances", False),
        ("DataWorks:LISTWORKFLOWINSTANCES", "dataworks:ListWorkflowInstances", True),
        ("dataworks:listworkflowinstances", "DATAWORKS:ListWorkflowInstances", True),
        ("dataworks:ListWorkflowInstances", "dataworks:ListWorkflowInstance", False),
        ("dataworks:ListWorkflowInstances", "ListWorkflowInstances", False),
    ],
)
def test_actions_match_with_wildcards_in_any_case(
    pattern: str, action: str, expected: bool
) -> None:
    assert allowed(policy(allow(pattern)), action) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", WS1, True),
        ("*", TENANT, True),
        ("acs:dataworks:*:*:*", WS1, True),
        ("acs:dataworks:*:*:*", TENANT, True),
        ("acs:dataworks:*:*:workspace/*", WS1, True),
        ("acs:dataworks:*:*:workspace/*", TENANT, False),
        ("acs:dataworks:*:*:workspace/1", WS1, True),
        ("acs:dataworks:*:*:workspace/1", workspace_resource(12), False),
        ("acs:dataworks:*:*:workspace/1*", workspace_resource(12), True),
        ("acs:dataworks:*:*:workspace/1*", workspace_resource(21), False),
        ("acs:dataworks:*:*:workspace/1?", workspace_resource(12), True),
        ("acs:dataworks:*:*:workspace/1?", WS1, False),
        ("acs:dataworks:*:*:workspace/1?", workspace_resource(123), False),
        # dwsched is one account in one region: those parts are not compared
        ("acs:dataworks:cn-hangzhou:1234567890:workspace/1", WS1, True),
        ("acs:dataworks:cn-*:12*:*", TENANT, True),
        # a resource not of dwsched's form matches only `*`
        ("acs:dataworks:*:*:*", "workspace/1", False),
        ("acs:dataworks:*:*:workspace/1", "acs:dataworks:*:*:Workspace/1", False),
    ],
)
def test_resources_match(pattern: str, resource: str, expected: bool) -> None:
    assert allowed(policy(allow(resource=pattern)), LIST, resource) is expected


def test_workspace_resource() -> None:
    assert workspace_resource(100) == "acs:dataworks:*:*:workspace/100"
    assert workspace_resource(None) == "acs:dataworks:*:*:*"


def test_not_action_and_not_resource_apply_to_what_they_do_not_name() -> None:
    p = policy(
        allow(),
        {"Effect": "Deny", "NotAction": ["dataworks:Get*", "dataworks:List*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "NotResource": "acs:dataworks:*:*:workspace/1"},
    )
    assert allowed(p, LIST, WS1)
    assert not allowed(p, STOP, WS1)
    assert not allowed(p, LIST, workspace_resource(2))
    assert not allowed(p, LIST, TENANT)


# Allow and Deny


def test_an_explicit_deny_wins_over_any_allow() -> None:
    admin = BUILTIN["AdministratorAccess"]
    no_stops = policy(deny("dataworks:Stop*"))
    both = [("Admin", admin), ("NoStops", no_stops)]
    assert evaluate(both, STOP, WS1, {}) == Decision(False, Reason.EXPLICIT_DENY, "NoStops")
    assert evaluate(both, LIST, WS1, {}) == Decision(True, Reason.ALLOW, "Admin")
    same = policy(allow(), deny(STOP))
    assert evaluate([("Same", same)], STOP, WS1, {}) == Decision(False, "ExplicitDeny", "Same")


def test_the_first_allowing_policy_is_named() -> None:
    reads = BUILTIN["ReadOnlyAccess"]
    ops = BUILTIN["WorkspaceOperatorAccess"]
    listed = [("Nothing", policy(allow("dataworks:Create*"))), ("Ops", ops), ("Reads", reads)]
    assert evaluate(listed, LIST, WS1, {}) == Decision(True, Reason.ALLOW, "Ops")


def test_nothing_allowing_is_an_implicit_deny() -> None:
    assert evaluate([], LIST, WS1, {}) == Decision(False, Reason.IMPLICIT_DENY, None)
    reads = [("Reads", BUILTIN["ReadOnlyAccess"])]
    assert evaluate(reads, STOP, WS1, {}) == Decision(False, "ImplicitDeny", None)
    conditional = policy(deny(Condition={"Bool": {"acs:SecureTransport": "false"}}))
    assert decide(conditional, context={"acs:SecureTransport": "true"}).reason == "ImplicitDeny"


# Conditions


def test_string_operators() -> None:
    equals = when({"StringEquals": {"acs:SourceIp": ["10.0.0.1", "10.0.0.2"]}})
    assert allowed(equals, acs_SourceIp="10.0.0.2")
    assert not allowed(equals, acs_SourceIp="10.0.0.3")
    not_equals = when({"StringNotEquals": {"dwsched:ProjectId": ["1", "2"]}})
    assert allowed(not_equals, dwsched_ProjectId="3")
    assert not allowed(not_equals, dwsched_ProjectId="2")  # none of the values, not "any"
    exact = when({"StringEquals": {"acs:SecureTransport": "True"}})
    assert not allowed(exact, acs_SecureTransport="true")
    folded = when({"StringEqualsIgnoreCase": {"acs:SecureTransport": "TRUE"}})
    assert allowed(folded, acs_SecureTransport="true")
    not_folded = when({"StringNotEqualsIgnoreCase": {"acs:SecureTransport": "TRUE"}})
    assert not allowed(not_folded, acs_SecureTransport="true")
    assert allowed(not_folded, acs_SecureTransport="false")
    like = when({"StringLike": {"acs:SourceIp": ["10.*", "192.168.?.1"]}})
    assert allowed(like, acs_SourceIp="10.1.2.3")
    assert allowed(like, acs_SourceIp="192.168.7.1")
    assert not allowed(like, acs_SourceIp="192.168.17.1")
    not_like = when({"StringNotLike": {"dwsched:ProjectId": ["1*", "2?"]}})
    assert allowed(not_like, dwsched_ProjectId="30")
    assert not allowed(not_like, dwsched_ProjectId="17")
    assert not allowed(not_like, dwsched_ProjectId="25")


@pytest.mark.parametrize(
    ("operator", "bound", "hits"),
    [
        ("NumericEquals", "10", {10}),
        ("NumericNotEquals", "10", {9, 11}),
        ("NumericLessThan", "10", {9}),
        ("NumericLessThanEquals", "10", {9, 10}),
        ("NumericGreaterThan", 10, {11}),
        ("NumericGreaterThanEquals", "10.0", {10, 11}),
    ],
)
def test_numeric_operators(operator: str, bound: Any, hits: set[int]) -> None:
    p = when({operator: {"dwsched:ProjectId": bound}})
    for project in (9, 10, 11):
        assert allowed(p, dwsched_ProjectId=str(project)) is (project in hits), project


def test_numbers_compare_exactly_and_non_numbers_fail() -> None:
    big = when({"NumericEquals": {"dwsched:ProjectId": "9007199254740993"}})
    assert allowed(big, dwsched_ProjectId="9007199254740993")
    assert not allowed(big, dwsched_ProjectId="9007199254740992")
    negated = when({"NumericNotEquals": {"dwsched:ProjectId": "1"}})
    assert not allowed(negated, dwsched_ProjectId="abc")


NOON = "2026-11-28T12:00:00Z"


@pytest.mark.parametrize(
    ("operator", "hits"),
    [
        ("DateEquals", {NOON}),
        ("DateNotEquals", {"2026-11-28T11:59:59Z", "2026-11-28T12:00:01Z"}),
        ("DateLessThan", {"2026-11-28T11:59:59Z"}),
        ("DateLessThanEquals", {"2026-11-28T11:59:59Z", NOON}),
        ("DateGreaterThan", {"2026-11-28T12:00:01Z"}),
        ("DateGreaterThanEquals", {NOON, "2026-11-28T12:00:01Z"}),
    ],
)
def test_date_operators(operator: str, hits: set[str]) -> None:
    for bound in ("2026-11-28T20:00:00+08:00", "1795867200", 1795867200):
        p = when({operator: {"acs:CurrentTime": bound}})
        for now in ("2026-11-28T11:59:59Z", NOON, "2026-11-28T12:00:01Z"):
            assert allowed(p, acs_CurrentTime=now) is (now in hits), (bound, now)


def test_a_time_window_and_unreadable_times() -> None:
    window = when(
        {
            "DateGreaterThanEquals": {"acs:CurrentTime": "2026-11-28T09:00:00Z"},
            "DateLessThan": {"acs:CurrentTime": "2026-11-28T18:00:00.5+00:00"},
        }
    )
    assert allowed(window, acs_CurrentTime="2026-11-28T11:00:00Z")
    assert allowed(window, acs_CurrentTime="2026-11-28T18:00:00.499Z")
    assert not allowed(window, acs_CurrentTime="2026-11-28T18:00:01Z")
    assert not allowed(window, acs_CurrentTime="2026-11-28T08:59:59Z")
    not_equals = when({"DateNotEquals": {"acs:CurrentTime": NOON}})
    assert not allowed(not_equals, acs_CurrentTime="2026-11-28T11:00:00")  # no zone: unreadable
    assert not allowed(not_equals, acs_CurrentTime="noon")


def test_bool() -> None:
    secure = when({"Bool": {"acs:SecureTransport": True}})
    assert allowed(secure, acs_SecureTransport="true")
    assert allowed(secure, acs_SecureTransport="TRUE")
    assert not allowed(secure, acs_SecureTransport="false")
    assert not allowed(secure, acs_SecureTransport="maybe")
    insecure = when({"Bool": {"acs:SecureTransport": "false"}})
    assert allowed(insecure, acs_SecureTransport="false")


def test_ip_addresses_and_cidr_blocks() -> None:
    office = when({"IpAddress": {"acs:SourceIp": ["10.0.0.0/8", "192.168.1.7", "2001:db8::/32"]}})
    assert allowed(office, acs_SourceIp="10.200.3.4")
    assert allowed(office, acs_SourceIp="192.168.1.7")
    assert not allowed(office, acs_SourceIp="192.168.1.8")
    assert not allowed(office, acs_SourceIp="11.0.0.1")
    assert allowed(office, acs_SourceIp="2001:db8::1")
    assert not allowed(office, acs_SourceIp="2001:db9::1")
    assert allowed(office, acs_SourceIp="::ffff:10.1.1.1")  # IPv4-mapped: read as IPv4
    assert not allowed(office, acs_SourceIp="not-an-ip")
    outside = when({"NotIpAddress": {"acs:SourceIp": ["10.0.0.0/8", "127.0.0.1"]}})
    assert allowed(outside, acs_SourceIp="8.8.8.8")
    assert not allowed(outside, acs_SourceIp="10.0.0.1")
    assert not allowed(outside, acs_SourceIp="127.0.0.1")
    assert not allowed(outside, acs_SourceIp="garbage")


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"dwsched:ProjectId": "1"}},
        {"StringNotEquals": {"dwsched:ProjectId": "1"}},
        {"StringNotLike": {"dwsched:ProjectId": "1*"}},
        {"NumericNotEquals": {"dwsched:ProjectId": "1"}},
        {"DateNotEquals": {"acs:CurrentTime": NOON}},
        {"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
        {"Bool": {"acs:SecureTransport": "false"}},
    ],
)
def test_a_missing_key_fails_its_condition_negated_or_not(condition: dict[str, Any]) -> None:
    assert not allowed(when(condition), LIST, TENANT)
    # so a conditional Deny does not apply to a call without the key
    p = policy(allow(), deny(Condition=condition))
    assert allowed(p, LIST, TENANT)


def test_operators_and_keys_are_anded_values_ored() -> None:
    p = when(
        {
            "IpAddress": {"acs:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]},
            "StringEquals": {"dwsched:ProjectId": ["1", "2"], "acs:SecureTransport": "true"},
        }
    )
    good = {"acs:SourceIp": "192.168.3.3", "dwsched:ProjectId": "2", "acs:SecureTransport": "true"}
    assert decide(p, context=good).allowed
    for key, bad in [
        ("acs:SourceIp", "8.8.8.8"),
        ("dwsched:ProjectId", "3"),
        ("acs:SecureTransport", "false"),
    ]:
        assert not decide(p, context={**good, key: bad}).allowed, key


def test_condition_keys_match_in_any_case() -> None:
    p = when({"StringEquals": {"DWSCHED:projectid": "7"}})
    assert decide(p, context={"dwsched:ProjectId": "7"}).allowed
    assert decide(p, context={"Dwsched:PROJECTID": "7"}).allowed
    assert p.statements[0].conditions[0].key == "dwsched:ProjectId"


# Built-in policies


def test_builtin_documents_are_their_policies() -> None:
    assert set(BUILTIN) == set(BUILTIN_DOCUMENTS) == set(BUILTIN_DESCRIPTIONS)
    assert set(BUILTIN) == {"AdministratorAccess", "ReadOnlyAccess", "WorkspaceOperatorAccess"}
    for name, text in BUILTIN_DOCUMENTS.items():
        assert parse_policy(text) == BUILTIN[name]
        assert BUILTIN_DESCRIPTIONS[name]
    assert is_builtin("ReadOnlyAccess")
    assert not is_builtin("readonlyaccess")
    assert not is_builtin("MyPolicy")


OPERATOR_ACTIONS = [
    "CreateWorkflowInstances",
    "StartWorkflowInstances",
    "StopWorkflowInstances",
    "RerunWorkflowInstances",
    "RerunTaskInstances",
    "StopTaskInstances",
    "SetSuccessTaskInstances",
    "SuspendTaskInstances",
    "ResumeTaskInstances",
    "TriggerSchedulerTaskInstance",
]
READS = ["ListWorkflowInstances", "GetWorkflowInstance", "GetTaskInstanceLog", "ListProjects"]
OTHERS = ["CreateProject", "DeleteProject", "CreateWorkflowDefinition", "GrantMemberProjectRoles"]


@pytest.mark.parametrize(
    ("name", "permitted"),
    [
        ("AdministratorAccess", set(READS + OPERATOR_ACTIONS + OTHERS)),
        ("ReadOnlyAccess", set(READS)),
        ("WorkspaceOperatorAccess", set(READS + OPERATOR_ACTIONS)),
    ],
)
def test_builtin_policies(name: str, permitted: set[str]) -> None:
    for api in READS + OPERATOR_ACTIONS + OTHERS:
        for resource in (WS1, TENANT):
            decision = evaluate([(name, BUILTIN[name])], f"dataworks:{api}", resource, {})
            assert decision.allowed is (api in permitted), (api, resource)
            assert decision.policy == (name if api in permitted else None)


# Property: `evaluate` agrees with a reference evaluator written from the rules above.


@functools.cache
def ref_glob(pattern: str, text: str) -> bool:
    """Brute force: try every split a `*` can take."""
    if not pattern:
        return not text
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(ref_glob(rest, text[i:]) for i in range(len(text) + 1))
    if not text:
        return False
    return (head == "?" or head == text[0]) and ref_glob(rest, text[1:])


def ref_ipv4(text: str) -> int | None:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        return None
    return sum(int(p) << (24 - 8 * i) for i, p in enumerate(parts))


def ref_in_block(ip: int, block: str) -> bool:
    base, _, bits = block.partition("/")
    width = int(bits) if bits else 32
    mask = ((1 << width) - 1) << (32 - width)
    start = ref_ipv4(base)
    assert start is not None
    return ip & mask == start & mask


def ref_condition(operator: str, values: list[str], actual: str | None) -> bool:
    if actual is None:
        return False
    if operator in ("StringEquals", "StringNotEquals"):
        hit = actual in values
    elif operator == "Bool":
        if actual.lower() not in ("true", "false"):
            return False
        hit = actual.lower() in [v.lower() for v in values]
    else:
        ip = ref_ipv4(actual)
        if ip is None:
            return False
        hit = any(ref_in_block(ip, v) for v in values)
    return not hit if operator in ("StringNotEquals", "NotIpAddress") else hit


def ref_as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def ref_applies(statement: dict[str, Any], action: str, resource: str, ctx: dict[str, str]) -> bool:
    named = "Action" in statement
    patterns = ref_as_list(statement["Action" if named else "NotAction"])
    if any(ref_glob(p.lower(), action.lower()) for p in patterns) != named:
        return False
    named = "Resource" in statement
    patterns = ref_as_list(statement["Resource" if named else "NotResource"])
    hits = any(
        p == "*" or ref_glob(p.split(":")[4] if p.count(":") == 4 else p, resource.split(":", 4)[4])
        for p in patterns
    )
    if hits != named:
        return False
    lowered = {k.lower(): v for k, v in ctx.items()}
    for operator, keys in statement.get("Condition", {}).items():
        for key, values in keys.items():
            if not ref_condition(operator, ref_as_list(values), lowered.get(key.lower())):
                return False
    return True


def ref_evaluate(
    documents: list[tuple[str, dict[str, Any]]], action: str, resource: str, ctx: dict[str, str]
) -> tuple[bool, str, str | None]:
    applying = [
        (name, s["Effect"])
        for name, d in documents
        for s in d["Statement"]
        if ref_applies(s, action, resource, ctx)
    ]
    denying = [name for name, effect in applying if effect == "Deny"]
    if denying:
        return False, "ExplicitDeny", denying[0]
    allowing = [name for name, effect in applying if effect == "Allow"]
    if allowing:
        return True, "Allow", allowing[0]
    return False, "ImplicitDeny", None


ACTION_PATTERNS = [
    "*",
    "dataworks:*",
    "dataworks:List*",
    "dataworks:ListWorkflowInstances",
    "DataWorks:listworkflowinstances",
    "dataworks:*Task*",
    "dataworks:Get?orkflowInstance",
    "dataworks:Stop*Instances",
    "dataworks:?et*",
    "dataworks:*Instances",
]
ACTIONS = [
    "dataworks:ListWorkflowInstances",
    "dataworks:ListTaskInstances",
    "dataworks:GetWorkflowInstance",
    "dataworks:GetTaskInstance",
    "dataworks:StopTaskInstances",
    "dataworks:StopWorkflowInstances",
    "dataworks:SetSuccessTaskInstances",
    "dataworks:CreateProject",
]
RESOURCE_PATTERNS = [
    "*",
    "acs:dataworks:*:*:*",
    "acs:dataworks:*:*:workspace/*",
    "acs:dataworks:*:*:workspace/1",
    "acs:dataworks:cn-hangzhou:123:workspace/2",
    "acs:dataworks:*:*:workspace/1*",
    "acs:dataworks:*:*:workspace/?",
]
PROJECTS = [None, 1, 2, 10, 12]
KEY_SPELLINGS = {
    "dwsched:ProjectId": ["dwsched:ProjectId", "DWSCHED:PROJECTID"],
    "acs:SourceIp": ["acs:SourceIp", "acs:sourceip"],
    "acs:SecureTransport": ["acs:SecureTransport", "ACS:SecureTransport"],
}
IPS = ["10.1.2.3", "10.9.9.9", "192.168.1.7", "8.8.8.8", "garbage"]


def one_or_many(options: list[str]) -> st.SearchStrategy[str | list[str]]:
    element = st.sampled_from(options)
    return st.one_of(element, st.lists(element, min_size=1, max_size=3))


def spelled(key: str) -> st.SearchStrategy[str]:
    return st.sampled_from(KEY_SPELLINGS[key])


conditions = st.fixed_dictionaries(
    {},
    optional={
        "StringEquals": st.dictionaries(
            spelled("dwsched:ProjectId"), one_or_many(["1", "2", "10"]), min_size=1
        ),
        "StringNotEquals": st.dictionaries(
            spelled("dwsched:ProjectId"), one_or_many(["1", "12"]), min_size=1
        ),
        "IpAddress": st.dictionaries(
            spelled("acs:SourceIp"),
            one_or_many(["10.0.0.0/8", "192.168.1.0/24", "10.1.2.3"]),
            min_size=1,
        ),
        "NotIpAddress": st.dictionaries(
            spelled("acs:SourceIp"), one_or_many(["10.1.0.0/16", "8.8.8.8"]), min_size=1
        ),
        "Bool": st.dictionaries(
            spelled("acs:SecureTransport"), st.sampled_from(["true", "false"]), min_size=1
        ),
    },
)


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    action_key = draw(st.sampled_from(["Action", "Action", "NotAction"]))
    statement[action_key] = draw(one_or_many(ACTION_PATTERNS))
    resource_key = draw(st.sampled_from(["Resource", "Resource", "NotResource"]))
    statement[resource_key] = draw(one_or_many(RESOURCE_PATTERNS))
    condition = draw(conditions)
    if condition:
        statement["Condition"] = condition
    return statement


documents = st.lists(statements(), min_size=1, max_size=4).map(
    lambda s: {"Version": "1", "Statement": s}
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, int | None, dict[str, str]]:
    action = draw(st.sampled_from(ACTIONS))
    project = draw(st.sampled_from(PROJECTS))
    context: dict[str, str] = {}
    if project is not None and draw(st.integers(0, 5)):
        context[draw(spelled("dwsched:ProjectId"))] = str(project)
    if draw(st.booleans()):
        context[draw(spelled("acs:SourceIp"))] = draw(st.sampled_from(IPS))
    if draw(st.booleans()):
        context[draw(spelled("acs:SecureTransport"))] = draw(st.sampled_from(["true", "false"]))
    return action, project, context


# 300 examples (there were 600), drawn anew each run: each is up to 3 documents of up to 4
# statements, checked on 1 to 5 requests against the reference. Drawing them is most of
# the cost (about 15 ms an example).
@settings(max_examples=300, deadline=None)
@given(st.lists(documents, min_size=0, max_size=3), st.lists(requests(), min_size=1, max_size=5))
def test_evaluate_agrees_with_the_reference(
    drawn: list[dict[str, Any]], calls: list[tuple[str, int | None, dict[str, str]]]
) -> None:
    named = [(f"P{i}", d) for i, d in enumerate(drawn)]
    parsed = [(name, parse_policy(json.dumps(d))) for name, d in named]
    for action, project, context in calls:
        resource = workspace_resource(project)
        decision = evaluate(parsed, action, resource, context)
        expected = ref_evaluate(named, action, resource, context)
        assert (decision.allowed, decision.reason, decision.policy) == expected
