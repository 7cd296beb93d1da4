"""RAM-style policy documents: what they say, and whether they allow a call. Pure.

A document is RAM's permission policy grammar (Version "1", Statements with Effect, Action or
NotAction, Resource or NotResource, and an optional Condition). `parse_policy` validates it
strictly: every fault is an `InvalidArgument` whose message names the JSON path.

Actions are RAM action strings, `dataworks:<ApiName>` (`access.ram_action`). In a policy an
action is `*` or `dataworks:<pattern>`, where `*` matches any run of characters and `?` one;
the service prefix and the action name match case-insensitively (as RAM does).

Resources. dwsched serves one account in one region, so the resource of a call is
`workspace_resource(project_id)`:
- a call inside one workspace: `acs:dataworks:*:*:workspace/<ProjectId>`;
- any other call (tenant-wide: CreateProject, ListProjects, ...): `acs:dataworks:*:*:*`.
In a policy a Resource is `*` (every call) or `acs:dataworks:<region>:<account>:<relative>`
where `<relative>` is `*` (every call) or `workspace/<id pattern>` (digits, `*`, `?`: only
calls inside a matching workspace, never a tenant-wide call). The region and account are
checked for form (`*`, or a region such as `cn-hangzhou` and a numeric account) but not
compared, so a policy written for DataWorks with its region and account works unchanged.
The relative part matches case-sensitively.

Conditions. All operators of a Condition must hold, and within one operator all keys; a key
holds when the request's value matches any of its listed values. A negated operator
(StringNotEquals, NumericNotEquals, DateNotEquals, StringNotEqualsIgnoreCase, StringNotLike,
NotIpAddress) holds when the value matches none of them. A key absent from the request's
context, or whose value is not of the operator's type (an IpAddress test of `abc`), fails
its condition, for negated operators too (RAM's rule: a missing key fails the condition).
Condition keys match case-insensitively; only the keys dwsched supplies (`CONDITION_KEYS`)
are accepted, so that a misspelt key in a Deny cannot silently never apply. RAM's
`...IfExists` operators are not supported.

Evaluation: an explicit Deny in any policy wins; otherwise any Allow allows; otherwise the
call is implicitly denied.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from dwsched.domain.errors import InvalidArgument

MAX_DOCUMENT_CHARS = 6144  # RAM's limit on a policy document
MAX_STATEMENTS = 100
VERSION = "1"
ALL_RESOURCES = "acs:dataworks:*:*:*"

CONDITION_KEYS = ("acs:CurrentTime", "acs:SecureTransport", "acs:SourceIp", "dwsched:ProjectId")
_KEYS = {k.casefold(): k for k in CONDITION_KEYS}

_ACTION = re.compile(r"\*|dataworks:[A-Za-z0-9*?]+", re.IGNORECASE)
_RESOURCE = re.compile(
    r"acs:dataworks:(?:\*|[a-z0-9*?-]+):(?:\*|[0-9*?]+):(?P<relative>\*|workspace/[0-9*?]+)"
)
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_EPOCH = re.compile(r"[0-9]+")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)


class Effect(enum.StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


class Reason(enum.StrEnum):
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"
    ALLOW = "Allow"


class Family(enum.Enum):
    STRING = "String"
    STRING_IGNORE_CASE = "StringIgnoreCase"
    STRING_LIKE = "StringLike"
    NUMERIC = "Numeric"
    DATE = "Date"
    BOOL = "Bool"
    IP = "IpAddress"


class Comparison(enum.Enum):
    EQ = "Equals"
    LT = "LessThan"
    LE = "LessThanEquals"
    GT = "GreaterThan"
    GE = "GreaterThanEquals"

    def holds(self, actual: Decimal, bound: Decimal) -> bool:
        if self is Comparison.EQ:
            return actual == bound
        if self is Comparison.LT:
            return actual < bound
        if self is Comparison.LE:
            return actual <= bound
        if self is Comparison.GT:
            return actual > bound
        return actual >= bound


class Operator(enum.StrEnum):
    STRING_EQUALS = "StringEquals"
    STRING_NOT_EQUALS = "StringNotEquals"
    STRING_EQUALS_IGNORE_CASE = "StringEqualsIgnoreCase"
    STRING_NOT_EQUALS_IGNORE_CASE = "StringNotEqualsIgnoreCase"
    STRING_LIKE = "StringLike"
    STRING_NOT_LIKE = "StringNotLike"
    NUMERIC_EQUALS = "NumericEquals"
    NUMERIC_NOT_EQUALS = "NumericNotEquals"
    NUMERIC_LESS_THAN = "NumericLessThan"
    NUMERIC_LESS_THAN_EQUALS = "NumericLessThanEquals"
    NUMERIC_GREATER_THAN = "NumericGreaterThan"
    NUMERIC_GREATER_THAN_EQUALS = "NumericGreaterThanEquals"
    DATE_EQUALS = "DateEquals"
    DATE_NOT_EQUALS = "DateNotEquals"
    DATE_LESS_THAN = "DateLessThan"
    DATE_LESS_THAN_EQUALS = "DateLessThanEquals"
    DATE_GREATER_THAN = "DateGreaterThan"
    DATE_GREATER_THAN_EQUALS = "DateGreaterThanEquals"
    BOOL = "Bool"
    IP_ADDRESS = "IpAddress"
    NOT_IP_ADDRESS = "NotIpAddress"

    @property
    def negated(self) -> bool:
        return "Not" in self.value

    @property
    def family(self) -> Family:
        v = self.value
        if v.startswith("String"):
            if "Like" in v:
                return Family.STRING_LIKE
            return Family.STRING_IGNORE_CASE if v.endswith("IgnoreCase") else Family.STRING
        if v.startswith("Numeric"):
            return Family.NUMERIC
        if v.startswith("Date"):
            return Family.DATE
        return Family.BOOL if self is Operator.BOOL else Family.IP

    @property
    def comparison(self) -> Comparison:
        """For Numeric and Date operators: the comparison (a negated one is EQ, negated)."""
        return Comparison(
            self.value.removeprefix("Numeric").removeprefix("Date").replace("Not", "")
        )


_OPERATORS = {o.value: o for o in Operator}
_OPERATORS_FOLDED = {o.value.casefold(): o for o in Operator}

# What a condition compares: the listed values, read per operator family.


@dataclass(frozen=True, slots=True)
class _Strings:
    values: frozenset[str]
    fold: bool

    def matches(self, actual: str) -> bool | None:
        return (actual.casefold() if self.fold else actual) in self.values


@dataclass(frozen=True, slots=True)
class _Likes:
    patterns: tuple[str, ...]

    def matches(self, actual: str) -> bool | None:
        return any(wildcard_match(p, actual) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class _Ordered:
    family: Family  # NUMERIC or DATE: how the request's value is read
    comparison: Comparison
    bounds: tuple[Decimal, ...]

    def matches(self, actual: str) -> bool | None:
        value = _number(actual) if self.family is Family.NUMERIC else _instant(actual)
        if value is None:
            return None
        return any(self.comparison.holds(value, b) for b in self.bounds)


@dataclass(frozen=True, slots=True)
class _Bools:
    values: frozenset[bool]

    def matches(self, actual: str) -> bool | None:
        value = _bool(actual)
        return None if value is None else value in self.values


@dataclass(frozen=True, slots=True)
class _Networks:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def matches(self, actual: str) -> bool | None:
        try:
            address = ipaddress.ip_address(actual.strip())
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in n for n in self.networks)


_Test = _Strings | _Likes | _Ordered | _Bools | _Networks


@dataclass(frozen=True, slots=True)
class Condition:
    """One key of one operator: `key` (canonical spelling) tested against `values`."""

    operator: Operator
    key: str
    values: tuple[str, ...]  # as written, JSON numbers and booleans as text
    test: _Test

    def holds(self, context: Mapping[str, str]) -> bool:
        """Whether the condition holds; `context` is keyed by casefolded key."""
        actual = context.get(self.key.casefold())
        if actual is None:
            return False
        hit = self.test.matches(actual)
        if hit is None:
            return False
        return hit != self.operator.negated


@dataclass(frozen=True, slots=True)
class Statement:
    effect: Effect
    actions: tuple[str, ...]  # lowercased patterns
    not_action: bool  # the statement applies to the actions that match none of `actions`
    resources: tuple[str, ...]  # patterns as written
    not_resource: bool
    conditions: tuple[Condition, ...]

    def applies(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        """Whether the statement covers the call; `context` is keyed by casefolded key."""
        lowered = action.translate(_LOWER)
        if any(wildcard_match(p, lowered) for p in self.actions) == self.not_action:
            return False
        if any(_resource_match(p, resource) for p in self.resources) == self.not_resource:
            return False
        return all(c.holds(context) for c in self.conditions)


@dataclass(frozen=True, slots=True)
class Policy:
    statements: tuple[Statement, ...]
    version: str = VERSION


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason
    policy: str | None  # the denying policy, or the first allowing one; None if none


# Parsing


_Patterns = str | list[str] | msgspec.UnsetType  # UNSET: absent (JSON null is refused)


class _Statement(msgspec.Struct, rename="pascal", forbid_unknown_fields=True):
    effect: str
    action: _Patterns = msgspec.UNSET
    not_action: _Patterns = msgspec.UNSET
    resource: _Patterns = msgspec.UNSET
    not_resource: _Patterns = msgspec.UNSET
    condition: dict[str, Any] | msgspec.UnsetType = (
        msgspec.UNSET
    )  # read by hand: msgspec's paths omit dict keys


class _Document(msgspec.Struct, rename="pascal", forbid_unknown_fields=True):
    version: str
    statement: list[_Statement]


_decoder = msgspec.json.Decoder(_Document)
_Fault = Callable[[str, str], InvalidArgument]  # builds the error for (JSON path, problem)


def parse_policy(text: str, param: str = "PolicyDocument") -> Policy:
    """The policy a document describes, or InvalidArgument(param) naming the JSON path."""

    def invalid(path: str, problem: str) -> InvalidArgument:
        return InvalidArgument(param, f"The parameter {param} is invalid at {path}: {problem}")

    if len(text) > MAX_DOCUMENT_CHARS:
        raise InvalidArgument(
            param,
            f"The parameter {param} has {len(text)} characters; "
            f"at most {MAX_DOCUMENT_CHARS} are allowed.",
        )
    try:
        document = _decoder.decode(text)
    except msgspec.ValidationError as exc:
        message, sep, path = str(exc).rpartition(" - at ")
        if not sep:
            message, path = str(exc), "`$`"
        raise invalid(path.strip("`"), message) from exc
    except msgspec.DecodeError as exc:
        raise InvalidArgument(param, f"The parameter {param} is not valid JSON: {exc}") from exc
    if document.version != VERSION:
        raise invalid("$.Version", f'{document.version!r} is not supported; it must be "1"')
    if not document.statement:
        raise invalid("$.Statement", "at least one statement is required")
    if len(document.statement) > MAX_STATEMENTS:
        raise invalid("$.Statement", f"at most {MAX_STATEMENTS} statements are allowed")
    statements = tuple(
        _statement(s, f"$.Statement[{i}]", invalid) for i, s in enumerate(document.statement)
    )
    return Policy(statements)


def _statement(s: _Statement, at: str, invalid: _Fault) -> Statement:
    try:
        effect = Effect(s.effect)
    except ValueError:
        raise invalid(f"{at}.Effect", f"{s.effect!r} is not Allow or Deny") from None
    actions, not_action = _pick(s.action, s.not_action, "Action", at, invalid)
    for path, a in actions:
        if not _ACTION.fullmatch(a):
            raise invalid(path, f"{a!r} is not * or dataworks:<action> (letters, digits, * and ?)")
    resources, not_resource = _pick(s.resource, s.not_resource, "Resource", at, invalid)
    for path, r in resources:
        if r != "*" and not _RESOURCE.fullmatch(r):
            raise invalid(
                path,
                f"{r!r} is not * or acs:dataworks:<region>:<account>:workspace/<id> "
                "(region and account may be *; the id digits, * and ?)",
            )
    conditions = (
        ()
        if isinstance(s.condition, msgspec.UnsetType)
        else _conditions(s.condition, f"{at}.Condition", invalid)
    )
    return Statement(
        effect,
        tuple(a.translate(_LOWER) for _, a in actions),
        not_action,
        tuple(r for _, r in resources),
        not_resource,
        conditions,
    )


def _pick(
    plain: _Patterns,
    negated: _Patterns,
    name: str,
    at: str,
    invalid: _Fault,
) -> tuple[list[tuple[str, str]], bool]:
    """The (path, pattern) pairs of `name` or `Not<name>` (exactly one must be given), and
    whether they are the `Not` form."""
    if not isinstance(plain, msgspec.UnsetType):
        if not isinstance(negated, msgspec.UnsetType):
            raise invalid(at, f"a statement has {name} or Not{name}, not both")
        value, field, is_not = plain, f"{at}.{name}", False
    elif not isinstance(negated, msgspec.UnsetType):
        value, field, is_not = negated, f"{at}.Not{name}", True
    else:
        raise invalid(at, f"a statement needs {name} (or Not{name})")
    if isinstance(value, str):
        return [(field, value)], is_not
    if not value:
        raise invalid(field, f"at least one {name} is required")
    return [(f"{field}[{j}]", v) for j, v in enumerate(value)], is_not


def _conditions(block: dict[str, Any], at: str, invalid: _Fault) -> tuple[Condition, ...]:
    if not block:
        raise invalid(at, "a Condition needs at least one operator")
    conditions: list[Condition] = []
    for name, keys in block.items():
        operator = _OPERATORS.get(name)
        op_at = f"{at}.{name}"
        if operator is None:
            near = _OPERATORS_FOLDED.get(name.casefold())
            hint = f" (did you mean {near.value}?)" if near else ""
            raise invalid(
                op_at,
                f"unknown condition operator {name!r}{hint}; "
                f"supported: {', '.join(o.value for o in Operator)}",
            )
        if not isinstance(keys, dict) or not keys:
            raise invalid(op_at, "expected an object of condition keys and their values")
        for key, raw in keys.items():
            key_at = f'{op_at}["{key}"]'
            canonical = _KEYS.get(key.casefold())
            if canonical is None:
                raise invalid(
                    key_at,
                    f"unknown condition key {key!r}; dwsched supplies {', '.join(CONDITION_KEYS)}",
                )
            listed = raw if isinstance(raw, list) else [raw]
            if not listed:
                raise invalid(key_at, "at least one value is required")
            texts: list[str] = []
            for k, value in enumerate(listed):
                where = f"{key_at}[{k}]" if isinstance(raw, list) else key_at
                if isinstance(value, bool):
                    texts.append("true" if value else "false")
                elif isinstance(value, int | float | str):
                    texts.append(value if isinstance(value, str) else repr(value))
                else:
                    raise invalid(where, "expected a string, number or boolean")
            test = _test(operator, texts, key_at, isinstance(raw, list), invalid)
            conditions.append(Condition(operator, canonical, tuple(texts), test))
    return tuple(conditions)


def _test(operator: Operator, texts: list[str], at: str, indexed: bool, invalid: _Fault) -> _Test:
    """The listed values read as the operator's family expects."""

    def fault(k: int, problem: str) -> InvalidArgument:
        return invalid(f"{at}[{k}]" if indexed else at, f"{texts[k]!r} {problem}")

    family = operator.family
    if family is Family.STRING:
        return _Strings(frozenset(texts), fold=False)
    if family is Family.STRING_IGNORE_CASE:
        return _Strings(frozenset(t.casefold() for t in texts), fold=True)
    if family is Family.STRING_LIKE:
        return _Likes(tuple(texts))
    if family is Family.BOOL:
        bools: list[bool] = []
        for k, t in enumerate(texts):
            b = _bool(t)
            if b is None:
                raise fault(k, "is not true or false")
            bools.append(b)
        return _Bools(frozenset(bools))
    if family is Family.IP:
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for k, t in enumerate(texts):
            try:
                networks.append(ipaddress.ip_network(t.strip()))
            except ValueError as exc:
                raise fault(k, f"is not an IP address or CIDR block: {exc}") from None
        return _Networks(tuple(networks))
    bounds: list[Decimal] = []
    for k, t in enumerate(texts):
        if family is Family.NUMERIC:
            n = _number(t)
            if n is None:
                raise fault(k, "is not a decimal number")
        else:
            n = _instant(t)
            if n is None:
                raise fault(
                    k,
                    "is not an ISO-8601 time with a zone (2026-11-28T11:00:00Z) or epoch seconds",
                )
        bounds.append(n)
    return _Ordered(family, operator.comparison, tuple(bounds))


def _number(text: str) -> Decimal | None:
    return Decimal(text) if _NUMBER.fullmatch(text) else None


def _instant(text: str) -> Decimal | None:
    """Seconds since the epoch of an ISO-8601 time with a zone, or of epoch seconds."""
    if _EPOCH.fullmatch(text):
        return Decimal(text)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    if at.tzinfo is None or at.utcoffset() is None:
        return None
    micros = (at - _EPOCH_START) // timedelta(microseconds=1)
    return Decimal(micros).scaleb(-6)


def _bool(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text.strip().lower())


# Matching


def wildcard_match(pattern: str, text: str) -> bool:
    """Whether `text` matches `pattern` (`*` any run, `?` one character), case-sensitive.

    Linear backtracking to the last `*` only: O(len(pattern) * len(text)) at worst, where a
    regular expression could take exponential time on patterns like `*a*a*a*b`.
    """
    p = t = 0
    star = -1
    mark = 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif star >= 0:
            mark += 1
            p, t = star + 1, mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _resource_match(pattern: str, resource: str) -> bool:
    if pattern == "*":
        return True
    parts = resource.split(":", 4)
    if len(parts) != 5 or parts[0] != "acs" or parts[1] != "dataworks":
        return False
    return wildcard_match(pattern.split(":", 4)[4], parts[4])


def workspace_resource(project_id: int | None) -> str:
    """The resource of a call: its workspace's, or `acs:dataworks:*:*:*` outside one."""
    return ALL_RESOURCES if project_id is None else f"acs:dataworks:*:*:workspace/{project_id}"


def evaluate(
    policies: Sequence[tuple[str, Policy]],
    action: str,
    resource: str,
    context: Mapping[str, str],
) -> Decision:
    """Whether the named policies allow `action` (`dataworks:<ApiName>`) on `resource`
    (`workspace_resource`) in `context` (condition keys to values, any case)."""
    folded = {k.casefold(): v for k, v in context.items()}
    allowed_by: str | None = None
    for name, policy in policies:
        for statement in policy.statements:
            if statement.effect is Effect.ALLOW and allowed_by is not None:
                continue  # an Allow is already found: only a Deny can change the answer
            if statement.applies(action, resource, folded):
                if statement.effect is Effect.DENY:
                    return Decision(False, Reason.EXPLICIT_DENY, name)
                allowed_by = name
    if allowed_by is not None:
        return Decision(True, Reason.ALLOW, allowed_by)
    return Decision(False, Reason.IMPLICIT_DENY, None)


# Built-in policies

# The policies' text, shown to users, names actions: the reads by their Get*/List* names, the
# operations one by one, as the actions whose rule is OPERATE (api.registry declares each
# action; tests/api/test_action_registry.py fails when these disagree with it).
_READS = ["dataworks:Get*", "dataworks:List*"]
_OPERATIONS = [
    "dataworks:CreateWorkflowInstances",
    "dataworks:StartWorkflowInstances",
    "dataworks:StopWorkflowInstances",
    "dataworks:RerunWorkflowInstances",
    "dataworks:RerunTaskInstances",
    "dataworks:StopTaskInstances",
    "dataworks:SetSuccessTaskInstances",
    "dataworks:SuspendTaskInstances",
    "dataworks:ResumeTaskInstances",
    "dataworks:TriggerSchedulerTaskInstance",
    "dataworks:RemoveTaskInstanceDependencies",
]
# Custom alert rules (the actions whose rule is MONITOR): on-call operators keep them.
_ALERT_RULES = [
    "dataworks:CreateAlertRule",
    "dataworks:UpdateAlertRule",
    "dataworks:DeleteAlertRule",
]


def _allow(actions: str | list[str]) -> str:
    document = {
        "Version": VERSION,
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
    }
    return json.dumps(document, indent=2)


BUILTIN_DOCUMENTS: Mapping[str, str] = {
    "AdministratorAccess": _allow("*"),
    "ReadOnlyAccess": _allow(_READS),
    "WorkspaceOperatorAccess": _allow(_READS + _OPERATIONS + _ALERT_RULES),
}
BUILTIN_DESCRIPTIONS: Mapping[str, str] = {
    "AdministratorAccess": "Every action on every workspace and the tenant.",
    "ReadOnlyAccess": "Every Get* and List* action.",
    "WorkspaceOperatorAccess": (
        "Every Get* and List* action, and the operator actions: create, start, stop and rerun "
        "workflow instances; rerun, stop, set successful, suspend, resume and trigger task "
        "instances; create, update and delete custom alert rules."
    ),
}
BUILTIN: Mapping[str, Policy] = {
    name: parse_policy(text) for name, text in BUILTIN_DOCUMENTS.items()
}


def is_builtin(name: str) -> bool:
    """Whether `name` is a built-in policy's (exact spelling)."""
    return name in BUILTIN
