"""Pure tests of DataWorks scheduling-parameter substitution (`dwsched.domain.parameters`)."""

from __future__ import annotations

import ast
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from dwsched.domain.errors import InvalidArgument
from dwsched.domain.execution import ConditionError, evaluate_condition
from dwsched.domain.parameters import (
    MAX_NAMES,
    MAX_VALUE,
    bash_safe,
    check_supplied,
    format_assignments,
    is_plain,
    parse_assignments,
    python_literal,
    resolve,
    substitute,
)

SHANGHAI = "Asia/Shanghai"
NEW_YORK = "America/New_York"
BIZ = date(2025, 3, 31)


def local_ms(
    tz: str, year: int, month: int, day: int, hour: int, minute: int, fold: int = 0
) -> int:
    at = datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz), fold=fold)
    return int(at.timestamp() * 1000)


CYC = local_ms(SHANGHAI, 2025, 4, 1, 2, 30)  # 2025-04-01 02:30:00 +08:00


def sub(text: str, params: dict[str, str] | None = None) -> str:
    return substitute(text, BIZ, CYC, SHANGHAI, params or {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$bizdate", "20250331"),
        ("$cyctime", "20250401023000"),
        ("$gmtdate", "20250401"),
        ("dt='$bizdate' and ts < $cyctime", "dt='20250331' and ts < 20250401023000"),
        ("$bizdate_x $bizdates", "$bizdate_x $bizdates"),
        ("$jobid $BIZDATE", "$jobid $BIZDATE"),
    ],
)
def test_builtins(text: str, expected: str) -> None:
    assert sub(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${yyyymmdd}", "20250331"),
        ("${yyyy-mm-dd}", "2025-03-31"),
        ("${yyyy/mm/dd}", "2025/03/31"),
        ("${yyyymm}", "202503"),
        ("${yyyy}", "2025"),
        ("${yy}", "25"),
        ("${mm}", "03"),
        ("${dd}", "31"),
        ("${yyyy年mm月dd日}", "2025年03月31日"),
        ("${ yyyymmdd }", "20250331"),
        # Day offsets, across the month end.
        ("${yyyymmdd-1}", "20250330"),
        ("${yyyymmdd+1}", "20250401"),
        ("${yyyy-mm-dd+7}", "2025-04-07"),
        ("${yyyy-mm-dd-31}", "2025-02-28"),
        ("${yyyymmdd-7*2}", "20250317"),
        ("${yyyymmdd - 1}", "20250330"),
        # Without dd the offset counts months; with only a year, years.
        ("${yyyymm-1}", "202502"),
        ("${yyyy-mm+1}", "2025-04"),
        ("${yyyymm-12}", "202403"),
        ("${mm-3}", "12"),
        ("${yyyy-1}", "2024"),
        ("${yy+1}", "26"),
    ],
)
def test_business_date_formats(text: str, expected: str) -> None:
    assert sub(text) == expected


@pytest.mark.parametrize(
    ("biz", "text", "expected"),
    [
        (
            date(2024, 12, 31),
            "${yyyymmdd+1} ${yyyymm+1} ${yyyy+1} $gmtdate",
            "20250101 202501 2025 20250101",
        ),
        (
            date(2025, 1, 1),
            "${yyyymmdd-1} ${yyyymm-1} ${yyyy-mm-dd-365}",
            "20241231 202412 2024-01-02",
        ),
        (date(2024, 2, 29), "${yyyymmdd+1} ${yyyymm+12} $gmtdate", "20240301 202502 20240301"),
        (date(2024, 3, 31), "${yyyymm-1}", "202402"),
    ],
)
def test_business_month_and_year_ends(biz: date, text: str, expected: str) -> None:
    assert substitute(text, biz, CYC, SHANGHAI, {}) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$[yyyymmddhh24miss]", "20250401023000"),
        ("$[yyyymmdd]", "20250401"),
        ("$[hh24miss]", "023000"),
        ("$[yyyy-mm-dd hh24:mi:ss]", "2025-04-01 02:30:00"),
        ("$[yy/mm/dd hh24]", "25/04/01 02"),
        # Offsets are in days; fractions of a day are hours and minutes.
        ("$[yyyymmdd-1]", "20250331"),
        ("$[yyyymmdd+30]", "20250501"),
        ("$[yyyymm-1]", "202503"),
        ("$[hh24miss-1/24]", "013000"),
        ("$[yyyymmddhh24miss-3/24]", "20250331233000"),
        ("$[hh24mi-30/24/60]", "0200"),
        ("$[hh24:mi:ss+1/24/60/60]", "02:30:01"),
        ("$[yyyy-mm-dd hh24:mi:ss-1/24*3]", "2025-03-31 23:30:00"),
        ("$[add_months(yyyymmdd,-1)]", "20250301"),
        ("$[add_months(yyyy-mm-dd hh24:mi, 12)]", "2026-04-01 02:30"),
    ],
)
def test_scheduled_time_formats(text: str, expected: str) -> None:
    assert sub(text) == expected


def test_scheduled_time_drops_milliseconds() -> None:
    assert substitute("$[hh24miss] $cyctime", BIZ, CYC + 999, SHANGHAI, {}) == (
        "023000 20250401023000"
    )


def test_add_months_clamps_to_the_month_end() -> None:
    cyc = local_ms(SHANGHAI, 2025, 3, 31, 0, 5)
    assert substitute("$[add_months(yyyymmdd,-1)]", BIZ, cyc, SHANGHAI, {}) == "20250228"
    assert substitute("$[add_months(yyyymmdd,-13)]", BIZ, cyc, SHANGHAI, {}) == "20240229"


def test_year_end_in_scheduled_time() -> None:
    cyc = local_ms(SHANGHAI, 2025, 1, 1, 0, 30)
    text = "$[yyyymmdd-1] $[yyyy-mm-dd hh24:mi-1/24] $[yyyymm-1]"
    assert substitute(text, date(2024, 12, 31), cyc, SHANGHAI, {}) == (
        "20241231 2024-12-31 23:30 202412"
    )


def test_hour_offsets_are_elapsed_time_across_spring_forward() -> None:
    # 2025-03-09 in New York: 02:00 EST jumps to 03:00 EDT.
    cyc = local_ms(NEW_YORK, 2025, 3, 9, 3, 30)
    text = "$[hh24miss] $[hh24miss-1/24] $[hh24mi-31/24/60] $[yyyymmdd hh24-1]"
    assert substitute(text, date(2025, 3, 8), cyc, NEW_YORK, {}) == (
        "033000 013000 0159 20250308 03"
    )


def test_hour_offsets_are_elapsed_time_across_fall_back() -> None:
    # 2025-11-02 in New York: 01:00-02:00 happens twice; this is the second 01:30 (EST).
    cyc = local_ms(NEW_YORK, 2025, 11, 2, 1, 30, fold=1)
    text = "$[hh24miss] $[hh24miss-1/24] $[hh24miss-2/24] $[hh24miss+1/24]"
    assert substitute(text, date(2025, 11, 1), cyc, NEW_YORK, {}) == ("013000 013000 003000 023000")


def test_day_offsets_move_the_calendar_not_24_hours() -> None:
    # 00:30 the day after spring forward: 24 elapsed hours earlier is 2025-03-08 23:30, but
    # "the previous day" is 2025-03-09.
    cyc = local_ms(NEW_YORK, 2025, 3, 10, 0, 30)
    text = "$[yyyymmdd-1] $[yyyymmdd hh24:mi-1] $[yyyymmdd hh24:mi-24/24]"
    assert substitute(text, date(2025, 3, 9), cyc, NEW_YORK, {}) == (
        "20250309 20250309 00:30 20250309 00:30"
    )


def test_parameters_are_substituted_recursively() -> None:
    params = {
        "bizdate": "$bizdate",
        "day": "${yyyy-mm-dd}",
        "prev": "${yyyymmdd-1}",
        "hour": "$[hh24-1/24]",
        "table": "ods_log_${day}",
        "plain": "abc",
        "empty": "",
    }
    text = "${bizdate}|${day}|${prev}|${hour}|${table}|${plain}|${empty}|${ plain }"
    assert sub(text, params) == "20250331|2025-03-31|20250330|01|ods_log_2025-03-31|abc||abc"


def test_a_parameter_hides_a_date_format_of_the_same_name() -> None:
    assert sub("${yyyymmdd} ${dd}", {"yyyymmdd": "x", "dd": "${dd+1}"}) == "x 01"


def test_parameter_values_are_not_substituted_twice() -> None:
    # A value containing "${" after substitution is not read again.
    assert sub("${a}", {"a": "$${b}", "b": "x"}) == "$x"
    assert sub("${a}", {"a": "${b}", "b": "${c}", "c": "$bizdate"}) == "20250331"


def test_self_referencing_parameters_stop() -> None:
    assert sub("${a}", {"a": "<${a}>"}) == "<${a}>"
    assert sub("${x}", {"x": "${y}", "y": "${x}"}) == "${x}"


@pytest.mark.parametrize(
    "text",
    [
        "${unknown}",
        "${hh24}",
        "${yyyymmddhh24}",
        "${yyyymmddx}",
        "${yyyymmdd-x}",
        "${yyyymmdd-1/24}",
        "${yyyymmdd/0}",
        "${}",
        "$[]",
        "$[unknown]",
        "$[hh24-1/0]",
        "$[add_months(yyyymmdd)]",
        "$[add_months(yyyymmdd,1/2)]",
        "${yyyy-9000}",
        "$[yyyymmdd+3000000]",
        "$bizdate_",
        "$ {yyyy}",
        "${yyyy",
        "no parameters at all",
        "cost: $5 {x} [y]",
    ],
)
def test_unknown_text_is_left_alone(text: str) -> None:
    assert sub(text) == text


def test_substitute_rejects_a_bad_zone_and_range() -> None:
    with pytest.raises(InvalidArgument) as exc:
        substitute("$bizdate", BIZ, CYC, "Mars/Olympus", {})
    assert exc.value.param == "TimeZone"
    with pytest.raises(InvalidArgument) as exc:
        substitute("$bizdate", BIZ, -1, SHANGHAI, {})
    assert exc.value.param == "CycTime"


def test_parse_assignments() -> None:
    assert parse_assignments("") == {}
    assert parse_assignments("  bizdate=$bizdate\tday=${yyyy-mm-dd}\n x= q=a=b ") == {
        "bizdate": "$bizdate",
        "day": "${yyyy-mm-dd}",
        "x": "",
        "q": "a=b",
    }


def test_format_assignments_is_what_parse_assignments_reads() -> None:
    pairs = [("bizdate", "$bizdate"), ("x", ""), ("q", "a=b")]
    assert format_assignments([]) == ""
    assert format_assignments(pairs) == "bizdate=$bizdate x= q=a=b"
    assert list(parse_assignments(format_assignments(pairs)).items()) == pairs


@pytest.mark.parametrize("text", ["novalue", "=x", "1a=x", "a-b=x", "a=1 a=2", "a = b"])
def test_parse_assignments_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_assignments(text, param="Parameters")
    assert exc.value.param == "Parameters"


def test_parsed_assignments_feed_substitute() -> None:
    params = parse_assignments("bizdate=$bizdate last_month=${yyyymm-1} hour=$[hh24]")
    assert sub("${bizdate} ${last_month} ${hour}", params) == "20250331 202502 02"


# Supplied values are data (issue 12): rendered, never read as code.


def test_a_supplied_value_is_rendered_and_a_deployed_one_is_text() -> None:
    params = {"own": "$(date)", "given": "a'b", "both": "x_${given}"}

    def show(name: str, value: str) -> str:
        return f"<{name}:{value}>"

    text = "${own} ${given} ${both} ${yyyy-mm-dd}"
    assert substitute(text, BIZ, CYC, SHANGHAI, params, {"given"}, show) == (
        "$(date) <given:a'b> x_<given:a'b> 2025-03-31"
    )
    # A supplied value gets its dates, never another parameter (so that no request can
    # make values grow by cross-reference), and is rendered once.
    params = {"given": "${day}_${yyyymmdd}", "day": "$(id)"}
    assert substitute("${given}", BIZ, CYC, SHANGHAI, params, {"given", "day"}, show) == (
        "<given:${day}_20250331>"
    )
    assert resolve(BIZ, CYC, SHANGHAI, params, {"given"}) == {
        "given": "${day}_20250331",
        "day": "$(id)",
    }
    # A deployed value refers to a supplied one: the supplied one is not expanded further.
    params = {"own": "x_${given}", "given": "${own}${own}"}
    assert resolve(BIZ, CYC, SHANGHAI, params, {"given"})["own"] == "x_${own}${own}"


def test_resolve_gives_every_parameter_its_value() -> None:
    params = {"d": "$bizdate", "x": "${d}-1", "loop": "${loop}"}
    assert resolve(BIZ, CYC, SHANGHAI, params) == {
        "d": "20250331",
        "x": "20250331-1",
        "loop": "${loop}",
    }


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("2025-03-31", True),
        ("a_b.c:d,e+f/g%h", True),
        ("", True),
        ("a--b", False),
        ("a b", False),
        ("$x", False),
        ("it's", False),
        ("é", False),
        ("a=b", False),
    ],
)
def test_plain_values(value: str, plain: bool) -> None:
    assert is_plain(value) is plain


@pytest.mark.parametrize(
    "value",
    [
        "');__import__('os').system('id');#",
        '"""+__import__("os").system("id")+"""',
        "a\nb\\c\x7f{x}",
        "é中😀",
    ],
)
def test_a_python_literal_reads_back_exactly_in_any_quotes(value: str) -> None:
    shown = python_literal("x", value)
    for quote in ("'", '"', "'''", '"""'):
        assert ast.literal_eval(f"{quote}{shown}{quote}") == value
    assert eval(f'f"{shown}"') == value  # an f-string's text part: still only text
    with pytest.raises(SyntaxError):
        ast.parse(shown)  # outside a literal it is not code
    assert evaluate_condition(f"'{shown}' == {value!r}")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({f"n{i}": "1" for i in range(MAX_NAMES + 1)}, "at most 100"),
        ({"v": "x" * (MAX_VALUE + 1)}, "the value of v"),
        ({"v": "a\x00b"}, "NUL"),
    ],
)
def test_supplied_values_are_bounded(values: dict[str, str], message: str) -> None:
    check_supplied({"v": "x" * MAX_VALUE}, "TaskParameters")
    with pytest.raises(InvalidArgument) as exc:
        check_supplied(values, "TaskParameters")
    assert exc.value.param == "TaskParameters" and message in exc.value.message


def test_supplied_values_cannot_grow_by_referring_to_each_other() -> None:
    """40 references a level over 4 levels would be 40**3 copies of 4,000 characters; a
    supplied value never refers to another parameter, so each stays as it came."""
    params = {"a": "${b}" * 40, "b": "${c}" * 40, "c": "${d}" * 40, "d": "x" * 4000}
    values = resolve(BIZ, CYC, SHANGHAI, params, set(params))
    assert values == params
    assert len(substitute("${a}", BIZ, CYC, SHANGHAI, params, set(params), None)) == 160


def test_a_condition_too_deep_to_evaluate_is_a_condition_error() -> None:
    with pytest.raises(ConditionError, match="too deeply nested"):
        evaluate_condition("+".join(["1"] * 5000))


@pytest.mark.parametrize(
    ("value", "safe"), [("2025-01-31", True), ("a'b;c|d", True), ("$x", False), ("`id`", False)]
)
def test_what_bash_may_hold_as_data(value: str, safe: bool) -> None:
    assert bash_safe(value) is safe
