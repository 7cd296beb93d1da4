"""Value objects for listing workflow instances (DESIGN.md §3), validated, free of SQL.

The parsing of DataWorks' text forms (`"StartedTime Desc"`, `"key:value"`) lives here too,
because the forms are the product's semantics, not transport details: the API, the CLI and
the web page all accept the same ones.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date

from dwsched.domain.calendar import day_of, day_window_ms
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.models import EnvType, InstanceType, Status, WorkflowInstance

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 10
MAX_IDS = 100
MAX_TAGS = 20
MAX_PAGE_NUMBER = 10_000_000


class SortField(enum.StrEnum):
    TRIGGER_TIME = "TriggerTime"
    STARTED_TIME = "StartedTime"
    FINISHED_TIME = "FinishedTime"
    CREATE_TIME = "CreateTime"
    ID = "Id"

    @property
    def nullable(self) -> bool:
        return self in (SortField.STARTED_TIME, SortField.FINISHED_TIME)


_SORT_FIELDS = {f.value.lower(): f for f in SortField}


@dataclass(frozen=True, slots=True)
class SortKey:
    field: SortField
    descending: bool


DEFAULT_SORT = (SortKey(SortField.ID, descending=True),)


def parse_sort(text: str, param: str = "SortBy") -> tuple[SortKey, ...]:
    """`"<Field> [Asc|Desc]"`, comma-separated for several keys; case-insensitive.

    An empty text is the default sort, `Id Desc`.
    """
    if not text.strip():
        return DEFAULT_SORT
    keys: list[SortKey] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise InvalidArgument(param, _sort_message(param, text))
        found = _SORT_FIELDS.get(words[0].lower())
        if found is None:
            raise InvalidArgument(param, _sort_message(param, text))
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise InvalidArgument(param, _sort_message(param, text))
        if any(k.field is found for k in keys):
            raise InvalidArgument(param, f"The parameter {param} names {found.value} twice.")
        keys.append(SortKey(found, direction == "desc"))
    return tuple(keys)


def _sort_message(param: str, text: str) -> str:
    fields = ", ".join(f.value for f in SortField)
    return (
        f"The parameter {param} is invalid: {text!r}. Expected '<Field> [Asc|Desc]' "
        f"(comma-separated for several keys) with Field one of {fields}."
    )


@dataclass(frozen=True, slots=True)
class TagMatch:
    """`key:value` matches exactly; `key:` an empty value; `key` any value."""

    key: str
    value: str | None

    def matches(self, key: str, value: str) -> bool:
        return key == self.key and (self.value is None or value == self.value)


def parse_tag_match(text: str, param: str = "Tags") -> TagMatch:
    key, colon, value = text.partition(":")
    if not key:
        raise InvalidArgument(
            param, f"The parameter {param} has an invalid tag {text!r}: expected 'key:value'."
        )
    return TagMatch(key, value if colon else None)


@dataclass(frozen=True, slots=True)
class Page:
    number: int = 1
    size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def page(number: int | None, size: int | None) -> Page:
    n = 1 if number is None else number
    s = DEFAULT_PAGE_SIZE if size is None else size
    if not 1 <= s <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            "PageSize", f"The parameter PageSize must be between 1 and {MAX_PAGE_SIZE}, got {s}."
        )
    if not 1 <= n <= MAX_PAGE_NUMBER:
        raise InvalidArgument(
            "PageNumber",
            f"The parameter PageNumber must be between 1 and {MAX_PAGE_NUMBER}, got {n}.",
        )
    return Page(n, s)


@dataclass(frozen=True, slots=True)
class InstanceQuery:
    """One ListWorkflowInstances question, confined to one (project, env, day) partition."""

    project_id: int
    env_type: EnvType
    biz_date_ms: int  # any instant of the wanted day; the day is taken in the project's zone
    type: InstanceType | None = None
    workflow_id: int | None = None
    unified_workflow_instance_id: int | None = None
    name: str | None = None
    ids: tuple[int, ...] | None = None
    owner: str | None = None
    tags: tuple[TagMatch, ...] = ()
    statuses: tuple[Status, ...] = ()
    execution_date_ms: int | None = None  # TriggerTime on this instant's day
    sort: tuple[SortKey, ...] = DEFAULT_SORT
    page: Page = field(default_factory=Page)

    def __post_init__(self) -> None:
        if self.ids is not None and len(self.ids) > MAX_IDS:
            raise InvalidArgument(
                "Ids", f"The parameter Ids takes at most {MAX_IDS} ids, got {len(self.ids)}."
            )
        if len(self.tags) > MAX_TAGS:
            raise InvalidArgument(
                "Tags", f"The parameter Tags takes at most {MAX_TAGS} tags, got {len(self.tags)}."
            )

    def biz_day(self, tz: str) -> date:
        return day_of(self.biz_date_ms, tz, "BizDate")

    def trigger_window(self, tz: str) -> tuple[int, int] | None:
        """[start, end) in epoch ms of the executionDate's day, if one is asked for."""
        if self.execution_date_ms is None:
            return None
        return day_window_ms(day_of(self.execution_date_ms, tz, "Filter.executionDate"), tz)


@dataclass(frozen=True, slots=True)
class InstancePage:
    total: int
    items: tuple[WorkflowInstance, ...]
