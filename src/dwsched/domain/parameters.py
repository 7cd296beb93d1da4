"""DataWorks scheduling parameters: the text a task runs, with `$bizdate`, `${...}` and `$[...]`
replaced by values of its cycle.

A cycle has a business date (`biz_day`) and a scheduled instant (`cyc_time_ms`, shown in the
workspace's zone `tz`). `substitute` replaces, in one left-to-right pass:

- `$bizdate`: the business date, yyyymmdd. `$cyctime`: the scheduled time, yyyymmddhh24miss.
  `$gmtdate`: the run date (the day after the business date), yyyymmdd. A longer word
  (`$bizdate_x`) is not one of these and is left alone.
- `${name}` for a name in `params`: that parameter's value, itself substituted first, so
  `bizdate=$bizdate` or `day=${yyyy-mm-dd}` work. A parameter whose value refers back to itself,
  directly or through others, leaves the inner reference as it is. Parameters take precedence
  over date formats: a parameter called `yyyymmdd` hides the format.
- `${format}` and `${format±N}`: the business date in `format`, built from `yyyy`, `yy`, `mm`,
  `dd` and separators (any character but an ASCII letter or digit, e.g. `-`, `/`, `:`, `年`).
  N (digits, optionally multiplied: `7*2`) counts the format's smallest unit, as DataWorks
  documents: days when the format has `dd` (`${yyyymmdd-1}`), months when its smallest part is
  `mm` (`${yyyymm-1}`, `${mm+1}`), years when only a year is shown (`${yyyy-1}`). Month and
  year offsets clamp the day to the target month (2024-03-31 - 1 month is 2024-02-29), which
  matters only for formats that show no day anyway.
- `$[format]` and `$[format±N]`: the scheduled time in `tz`, in `format` built from `yyyy`,
  `yy`, `mm`, `dd`, `hh24`, `mi`, `ss` and separators. N is always in days (Oracle-style date
  arithmetic, as in DataWorks): `$[yyyymmdd-1]`, `$[hh24miss-1/24]` (an hour),
  `$[hh24mi-30/24/60]` (30 minutes); `/` divides and `*` multiplies, left to right.
  A whole number of days moves the calendar and keeps the wall-clock time (across a
  daylight-saving change `$[yyyymmdd hh24-1]` is still the previous day at the same hour); an
  offset with a fraction of a day is elapsed time (`-1/24` is the instant one real hour earlier,
  shown in `tz`, so 03:30 just after a spring-forward gap minus 1/24 is 01:30).
  `$[add_months(format,N)]` moves the calendar by N months (clamping the day) and keeps the
  time.

Anything else between `${` `}` or `$[` `]` (an unknown name, `${hh24}`, a date the offset would
push out of the years 1..9999) is left unchanged, as DataWorks leaves unknown text alone.
Formats are lower case; surrounding spaces inside the brackets are ignored.

Values are code or data. What a Developer deploys (the node's code, its `script.parameters`,
the workflow's `parameters`) is code, substituted as text. What a run request supplies
(TaskParameters, WorkflowParameters: operate rights) is data: `substitute` takes the names of
such parameters in `data` and a `render` that decides the text standing for each value in the
code (engine.runner knows each language: a shell variable, an escaped Python literal). A
value that is `plain` (letters, digits and `_.:,+/%-`, no `--`) means the same in every
language dwsched runs, so every renderer inserts it as it is and what Developers write keeps
working when an operator overrides a date or a region.

Pure: no I/O and no clock; every instant is an argument.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

from dwsched.domain.calendar import MAX_MS, MIN_MS, zone
from dwsched.domain.errors import InvalidArgument

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_DAY = 86_400_000_000

_REFERENCE = re.compile(
    r"\$\{(?P<brace>[^{}$]*)\}"
    r"|\$\[(?P<bracket>[^\[\]$]*)\]"
    r"|\$(?P<builtin>bizdate|cyctime|gmtdate)(?![A-Za-z0-9_])"
)
_OFFSET = re.compile(
    r"(?P<format>.*?)\s*(?P<sign>[+-])\s*(?P<amount>[0-9]+(?:\s*[*/]\s*[0-9]+)*)", re.DOTALL
)
_ADD_MONTHS = re.compile(
    r"add_months\s*\(\s*(?P<format>[^,()]*?)\s*,\s*(?P<sign>[+-]?)\s*"
    r"(?P<amount>[0-9]+(?:\s*\*\s*[0-9]+)*)\s*\)"
)
_FACTOR = re.compile(r"([*/])\s*([0-9]+)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN = re.compile(r"[A-Za-z0-9_.:,+/%-]*")

PARAM_PREFIX = "DWSCHED_PARAM_"  # a task's parameters in its environment: DWSCHED_PARAM_<name>
BASH_TYPES = frozenset({"DIDE_SHELL", "SHELL"})  # task types whose code bash runs
# What bash may run when it meets a value in an arithmetic context ($(( )), [[ -eq ]], let,
# declare -i, array subscripts, ${x:n}) or an indirect expansion: it expands array subscripts
# inside values, and a command substitution needs `$` or a backtick.
BASH_CODE = ("$", "`")
MAX_VALUE = 4_096  # characters in one value a run request supplies
MAX_NAMES = 100  # parameters one run request's text may set

Render = Callable[[str, str], str]
"""(name, value) -> the text that stands for a supplied value in code."""

_DATE_FIELDS = ("yyyy", "yy", "mm", "dd")
_TIME_FIELDS = ("yyyy", "yy", "mm", "dd", "hh24", "mi", "ss")
_CYCTIME = ("yyyy", "mm", "dd", "hh24", "mi", "ss")
_RENDER: dict[str, Callable[[datetime], str]] = {
    "yyyy": lambda t: f"{t.year:04d}",
    "yy": lambda t: f"{t.year % 100:02d}",
    "mm": lambda t: f"{t.month:02d}",
    "dd": lambda t: f"{t.day:02d}",
    "hh24": lambda t: f"{t.hour:02d}",
    "mi": lambda t: f"{t.minute:02d}",
    "ss": lambda t: f"{t.second:02d}",
}


def substitute(
    text: str,
    biz_day: date,
    cyc_time_ms: int,
    tz: str,
    params: Mapping[str, str],
    data: Collection[str] = (),
    render: Render | None = None,
) -> str:
    """`text` with the scheduling parameters of the cycle (`biz_day`, `cyc_time_ms` in `tz`)
    replaced, as described in the module docstring.

    A `${name}` whose name is in `data` becomes `render(name, value)`, the value being the
    parameter's own text substituted (as in `resolve`); without `render`, the value itself.
    Such a value is never read as code, so references inside it are not rendered again.

    InvalidArgument when `tz` is not an IANA zone (param `TimeZone`) or `cyc_time_ms` is
    outside the representable range (param `CycTime`); never for the text itself.
    """
    cycle = _Cycle(biz_day, _cyc(cyc_time_ms, tz), params, frozenset(data), render)
    return cycle.expand(text, frozenset())


def resolve(
    biz_day: date,
    cyc_time_ms: int,
    tz: str,
    params: Mapping[str, str],
    data: Collection[str] = (),
) -> dict[str, str]:
    """Every parameter's value in the cycle: its text substituted, in the order of `params`
    (what a task gets in its environment and as its arguments). A value named in `data` (a
    run request supplied it) has its dates substituted but never refers to another
    parameter, so that no request can make its values grow by cross-reference."""
    cyc = _cyc(cyc_time_ms, tz)
    supplied = frozenset(data)
    cycle = _Cycle(biz_day, cyc, params, frozenset(), None, supplied)
    return {
        name: _supplied_value(biz_day, cyc, value)
        if name in supplied
        else cycle.expand(value, frozenset({name}))
        for name, value in params.items()
    }


def _supplied_value(biz_day: date, cyc: datetime, text: str) -> str:
    """A supplied value as a task gets it: `$bizdate`, `${yyyymmdd}`, `$[hh24]` and the
    like substituted, and nothing else (no parameter of the task)."""
    return _Cycle(biz_day, cyc, {}, frozenset(), None).expand(text, frozenset())


def is_plain(value: str) -> bool:
    """Whether `value` means the same as text in every language dwsched runs: ASCII letters,
    digits and `_.:,+/%-`, without `--` (an SQL comment)."""
    return _PLAIN.fullmatch(value) is not None and "--" not in value


def python_literal(name: str, value: str) -> str:
    """A Render for Python source (and branch conditions): a plain value as it is; otherwise
    every other character as an escape (`\\x27`), so that inside a string literal the value
    reads back exactly and anywhere else it is a syntax error, never code."""
    if is_plain(value):
        return value
    return "".join(ch if is_plain(ch) else _escape(ch) for ch in value)


def check_supplied(values: Mapping[str, str], param: str) -> None:
    """InvalidArgument naming `param` when a run request supplies more than MAX_NAMES values
    or a value longer than MAX_VALUE characters, or one holding NUL or a lone surrogate
    (which no process argument or environment variable can carry)."""
    if len(values) > MAX_NAMES:
        raise InvalidArgument(
            param, f"The parameter {param} sets {len(values)} parameters; at most {MAX_NAMES}."
        )
    for name, value in values.items():
        if len(value) > MAX_VALUE:
            raise InvalidArgument(
                param,
                f"The parameter {param}: the value of {name} has {len(value)} characters; "
                f"at most {MAX_VALUE}.",
            )
        if "\x00" in value:
            raise InvalidArgument(
                param, f"The parameter {param}: the value of {name} holds a NUL character."
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgument(
                param, f"The parameter {param}: the value of {name} is not valid Unicode text."
            ) from None


def bash_safe(value: str) -> bool:
    """Whether bash can hold `value` as data in every context, arithmetic included: it has
    no `$` and no backtick (see BASH_CODE)."""
    return not any(c in value for c in BASH_CODE)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _cyc(cyc_time_ms: int, tz: str) -> datetime:
    if not MIN_MS <= cyc_time_ms <= MAX_MS:
        raise InvalidArgument(
            "CycTime",
            f"The parameter CycTime must be epoch milliseconds between {MIN_MS} and {MAX_MS}.",
        )
    return (_EPOCH + timedelta(milliseconds=cyc_time_ms)).astimezone(zone(tz))


def is_name(text: str) -> bool:
    """Whether `text` is a parameter name that `${name}` can refer to."""
    return _NAME.fullmatch(text) is not None


def parse_assignments(text: str, param: str = "Parameters") -> dict[str, str]:
    """The parameters in DataWorks' string form `"k1=v1 k2=v2"`, in order.

    Pairs are separated by whitespace, so a value cannot contain spaces; a value may be empty
    (`k=`) or contain `=` (only the first `=` separates). Names are letters, digits and `_`,
    not starting with a digit, so that `${name}` can refer to them.

    InvalidArgument naming `param` for a pair without `=`, a name that is not a name, or a
    name given twice: the caller validating a node's parameters needs to reject these, since
    substitution would otherwise silently ignore them.
    """
    result: dict[str, str] = {}
    for item in text.split():
        name, sep, value = item.partition("=")
        if not sep or not is_name(name):
            raise InvalidArgument(
                param,
                f"The parameter {param} must be space-separated name=value pairs (e.g. "
                f"bizdate=$bizdate day=${{yyyy-mm-dd}}); {item!r} is not one.",
            )
        if name in result:
            raise InvalidArgument(param, f"The parameter {param} names {name!r} twice.")
        result[name] = value
    return result


def format_assignments(pairs: Iterable[tuple[str, str]]) -> str:
    """`pairs` in DataWorks' string form `"k1=v1 k2=v2"`, in order (what parse_assignments
    reads back)."""
    return " ".join(f"{name}={value}" for name, value in pairs)


@dataclass(frozen=True, slots=True)
class _Cycle:
    biz_day: date
    cyc: datetime  # aware, in the workspace's zone
    params: Mapping[str, str]
    data: frozenset[str]  # names whose values are data: rendered, never read as code
    render: Render | None
    supplied: frozenset[str] = frozenset()  # (resolve) values expanded as _supplied_value

    def expand(self, text: str, active: frozenset[str]) -> str:
        """`text` substituted; `active` holds the parameters being expanded (a cycle guard)."""

        def replace(match: re.Match[str]) -> str:
            builtin, bracket, brace = match["builtin"], match["bracket"], match["brace"]
            value: str | None
            if builtin is not None:
                value = self.builtin(builtin)
            elif bracket is not None:
                value = _scheduled(bracket.strip(), self.cyc)
            else:
                key = brace.strip()
                if key in self.params and key not in active:
                    if key in self.data:
                        value = _supplied_value(self.biz_day, self.cyc, self.params[key])
                        return value if self.render is None else self.render(key, value)
                    if key in self.supplied:
                        return _supplied_value(self.biz_day, self.cyc, self.params[key])
                    return self.expand(self.params[key], active | {key})
                value = _business(key, self.biz_day)
            return match[0] if value is None else value

        return _REFERENCE.sub(replace, text)

    def builtin(self, name: str) -> str:
        if name == "bizdate":
            return f"{self.biz_day:%Y%m%d}"
        if name == "gmtdate":
            return f"{self.biz_day + timedelta(days=1):%Y%m%d}"
        return _render(_CYCTIME, self.cyc)


def _business(expr: str, biz_day: date) -> str | None:
    """`${expr}` for a business date: the date in `expr`'s format moved by its offset, or None
    when `expr` is not a date format (or the result is out of range)."""
    fmt, offset = _split_offset(expr)
    pieces = _pieces(fmt, _DATE_FIELDS)
    if pieces is None or offset is None or offset.denominator != 1:
        return None
    n = int(offset)
    try:
        if "dd" in pieces:
            day = biz_day + timedelta(days=n)
        elif "mm" in pieces:
            day = _add_months(biz_day, n)
        else:
            day = _add_months(biz_day, 12 * n)
    except (OverflowError, ValueError):
        return None
    return _render(pieces, datetime.combine(day, time()))


def _scheduled(expr: str, cyc: datetime) -> str | None:
    """`$[expr]` for a scheduled time `cyc` (aware, in the workspace's zone): the time in
    `expr`'s format moved by its offset in days, or None when `expr` is not a time format."""
    local = cyc.replace(tzinfo=None)
    months = _ADD_MONTHS.fullmatch(expr)
    try:
        if months is not None:
            pieces = _pieces(months["format"], _TIME_FIELDS)
            n = _amount(months["amount"])
            if pieces is None or n is None or n.denominator != 1:
                return None
            n = -n if months["sign"] == "-" else n
            moved = datetime.combine(_add_months(local.date(), int(n)), local.time())
            return _render(pieces, moved)
        fmt, offset = _split_offset(expr)
        pieces = _pieces(fmt, _TIME_FIELDS)
        if pieces is None or offset is None:
            return None
        if offset.denominator == 1:
            moved = local + timedelta(days=int(offset))
        else:
            elapsed = timedelta(microseconds=round(offset * _US_PER_DAY))
            moved = (cyc.astimezone(UTC) + elapsed).astimezone(cyc.tzinfo).replace(tzinfo=None)
    except (OverflowError, ValueError):
        return None
    return _render(pieces, moved)


def _split_offset(expr: str) -> tuple[str, Fraction | None]:
    """(format, signed offset); offset 0 when there is none, None when it divides by zero."""
    match = _OFFSET.fullmatch(expr)
    if match is None:
        return expr, Fraction(0)
    amount = _amount(match["amount"])
    if amount is None:
        return match["format"], None
    return match["format"], -amount if match["sign"] == "-" else amount


def _amount(text: str) -> Fraction | None:
    """`12`, `7*2`, `30/24/60`: evaluated left to right; None on a division by zero."""
    first = re.match(r"[0-9]+", text)
    if first is None:
        return None
    value = Fraction(int(first[0]))
    for op, number in _FACTOR.findall(text, first.end()):
        if op == "*":
            value *= int(number)
        elif int(number) == 0:
            return None
        else:
            value /= int(number)
    return value


def _pieces(fmt: str, fields: tuple[str, ...]) -> tuple[str, ...] | None:
    """`fmt` split into fields and one-character separators; None unless it is a format (at
    least one field, no other ASCII letters or digits)."""
    pieces: list[str] = []
    i = 0
    while i < len(fmt):
        field = next((f for f in fields if fmt.startswith(f, i)), None)
        if field is not None:
            pieces.append(field)
            i += len(field)
            continue
        ch = fmt[i]
        if ch.isascii() and ch.isalnum():
            return None
        pieces.append(ch)
        i += 1
    if not any(piece in _RENDER for piece in pieces):
        return None
    return tuple(pieces)


def _render(pieces: tuple[str, ...], at: datetime) -> str:
    return "".join(_RENDER[p](at) if p in _RENDER else p for p in pieces)


def _add_months(day: date, months: int) -> date:
    """`day` moved by whole months, the day clamped to the target month's length."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))
