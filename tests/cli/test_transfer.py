"""`dwsched import` and `dwsched export`: JSON Lines of ListWorkflowInstances items, on SQLite
and PostgreSQL, in-process (CliRunner) and as a real process reading standard input.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from dwsched.clock import SystemClock
from dwsched.domain import flowspec
from dwsched.domain.models import EnvType
from dwsched.domain.queries import InstanceQuery, page, parse_tag_match
from dwsched.domain.schedule import Cycle, Trigger, cycles_on
from dwsched.domain.workflows import DeployedWorkflow
from dwsched.runtime.transfer import CHUNK, PARALLEL_FROM
from dwsched.store import Store
from dwsched.store.ids import TASK_INSTANCE_ID_BASE
from tests.cli.helpers import (
    DAY_MS,
    HOUR_MS,
    SHANGHAI_AFTERNOON_MS,
    SHANGHAI_DAY_MS,
    by_id,
    canonical_biz_date,
    clean_error,
    create_project,
    expected_export,
    export,
    invoke,
    jsonl,
    ok,
    parse_lines,
    record,
    run_cli,
    sdk_item_names,
    without,
    write_jsonl,
)

# 2025-03-30 17:00 UTC: 19:00 on the 30th in Berlin, 01:00 on the 31st in Shanghai.
BERLIN_EVENING_MS = 1_743_354_000_000
# 2018-11-04 12:00 in São Paulo, the day whose midnight a DST gap skipped (day starts 01:00).
SAO_PAULO_GAP_DAY_NOON_MS = 1_541_343_600_000
SAO_PAULO_GAP_DAY_START_MS = 1_541_300_400_000


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database, for behaviour that does not depend on the backend."""
    return f"sqlite:///{tmp_path / 'one.db'}"


def test_round_trip_gives_back_the_same_objects(db_url: str, tmp_path: Path) -> None:
    berlin = create_project(db_url, "berlin_ws", "Europe/Berlin")
    sao_paulo = create_project(db_url, "sao_paulo_ws", "America/Sao_Paulo")
    new = 9001  # unknown: import creates it in the default zone, Asia/Shanghai
    lines = [
        record(11, new, Tags=[{"Key": "team", "Value": "growth"}, {"Key": "层", "Value": "ödw"}]),
        record(12, new, EnvType="Dev", Type="SmokeTest", Status="Failure", Tags=[]),
        # Not run yet: no StartedTime/FinishedTime keys at all, no tags, no parameters.
        without(record(13, new, Status="NotRun"), "StartedTime", "FinishedTime", "Tags"),
        record(14, new, Status="Running", FinishedTime=None, WorkflowParameters=""),
        record(15, new, BizDate=SHANGHAI_DAY_MS + DAY_MS, Type="SupplementData"),
        record(
            2**62 + 1,
            new,
            Name="ads_report_\U0001d518nicode_daily",
            Tags=[{"Key": "k", "Value": ""}],
        ),
        record(21, berlin, BizDate=BERLIN_EVENING_MS, Type="ManualWorkflow"),
        record(22, berlin, BizDate=BERLIN_EVENING_MS + 6 * HOUR_MS, Status="WaitResource"),
        record(31, sao_paulo, BizDate=SAO_PAULO_GAP_DAY_NOON_MS, Type="TriggerWorkflow"),
    ]
    source = write_jsonl(tmp_path / "in.jsonl", lines)

    out = ok(invoke("import", "--db", db_url, str(source))).stdout
    assert "imported 9 instances" in out
    assert re.search(r"created workspaces \[9001\]", out), out

    zones = {new: "Asia/Shanghai", berlin: "Europe/Berlin", sao_paulo: "America/Sao_Paulo"}
    assert canonical_biz_date(SAO_PAULO_GAP_DAY_NOON_MS, zones[sao_paulo]) == (
        SAO_PAULO_GAP_DAY_START_MS
    )
    assert canonical_biz_date(BERLIN_EVENING_MS, "Europe/Berlin") == 1_743_289_200_000
    names = sdk_item_names() | {"TriggerTime"}
    exported: list[dict[str, Any]] = []
    for project_id, tz in zones.items():
        got = export(db_url, project_id)
        for item in got:
            assert set(item) == names
        want = [expected_export(r, tz) for r in lines if r["ProjectId"] == project_id]
        assert by_id(got) == by_id(want)
        exported += got

    # The export is itself valid input: importing it again (replacing) changes nothing.
    again = write_jsonl(tmp_path / "again.jsonl", exported)
    ok(invoke("import", "--db", db_url, "--replace", str(again)))
    assert by_id(x for p in zones for x in export(db_url, p)) == by_id(exported)


def test_import_from_standard_input_in_a_real_process(db_url: str) -> None:
    lines = [record(n, 4242, Name=f"ods_clicks_{n}") for n in (1, 2, 3)]
    lines[1] = without(lines[1], "StartedTime", "FinishedTime") | {"Status": "WaitTime"}
    data = jsonl(lines).replace("\n", "\r\n", 1).encode()  # a CRLF line is still a line

    done = run_cli("import", "--db", db_url, "-", input=data)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    assert b"imported 3 instances" in done.stdout
    got = export(db_url, 4242)
    assert by_id(got) == by_id(expected_export(r, "Asia/Shanghai") for r in lines)

    if not db_url.startswith("sqlite"):
        return  # the process's error path does not depend on the backend: once is enough
    # The real process's errors: exit code 1, a message naming line and field, no traceback.
    bad = jsonl([record(7, 4242), record(8, 4242, Status="Done")]).encode()
    failed = run_cli("import", "--db", db_url, "-", input=bad)
    assert failed.returncode != 0
    err = failed.stderr.decode()
    assert "Traceback" not in err
    assert re.search(r"line 2\b.*\$\.Status", err), err
    assert sorted(by_id(export(db_url, 4242))) == [1, 2, 3]


def _error_line(output: str, number: int) -> str:
    found = [ln for ln in output.splitlines() if re.match(rf"\s*line {number}\b", ln)]
    assert len(found) == 1, f"line {number} not reported once in:\n{output}"
    return found[0]


def test_errors_on_several_lines_reject_the_whole_file(db_url: str, tmp_path: Path) -> None:
    ok(invoke("import", "--db", db_url, "-", input=jsonl([record(1, 500), record(2, 500)])))
    before = export(db_url, 500)

    good = record(3, 501)  # a new workspace, which must not be created either
    text = "\n".join(
        [
            json.dumps(good),  # 1
            json.dumps(record(4, 500)),  # 2
            json.dumps(record(5, 500, Status="Succeeded")),  # 3
            "",  # 4: blank lines are skipped but counted
            json.dumps(record(6, 500, BizDate="2025-03-31")),  # 5
            json.dumps(without(record(7, 500), "Owner")),  # 6
            json.dumps(record(8, 500, Colour="red")),  # 7
            '{"Id": 9, "ProjectId": 500,',  # 8: not JSON
            json.dumps(record(10, 500, Tags=[{"Key": "", "Value": "x"}])),  # 9
            json.dumps(record(11, 500, StartedTime=None)),  # 10: finished, never started
            json.dumps(record(-12, 500)),  # 11
            json.dumps(record(13, 500, EnvType="prod")),  # 12
            json.dumps(record(14, 500, Type="Daily")),  # 13
            json.dumps(record(15, 500, BizDate=-1)),  # 14
        ]
    )
    path = tmp_path / "bad.jsonl"
    path.write_text(text + "\n", encoding="utf-8")

    result = clean_error(invoke("import", "--db", db_url, str(path)))
    output = result.output
    assert re.search(r"\b11 error", output), output
    assert "$.Status" in _error_line(output, 3)
    assert "$.BizDate" in _error_line(output, 5)
    assert "Owner" in _error_line(output, 6)
    assert "Colour" in _error_line(output, 7)
    assert "JSON" in _error_line(output, 8)
    assert "$.Tags[0].Key" in _error_line(output, 9)
    assert "StartedTime" in _error_line(output, 10)
    assert "$.Id" in _error_line(output, 11)
    assert "$.EnvType" in _error_line(output, 12)
    assert "$.Type" in _error_line(output, 13)
    assert "$.BizDate" in _error_line(output, 14)
    for fine in (1, 2, 4):
        assert not re.search(rf"line {fine}\b", output), output

    assert export(db_url, 500) == before
    clean_error(invoke("export", "--db", db_url, "--project", "501"), "501")


def test_duplicate_id_within_the_file(sqlite_url: str) -> None:
    lines = [record(40, 600), record(41, 600), record(40, 600, Name="other")]
    result = clean_error(invoke("import", "--db", sqlite_url, "-", input=jsonl(lines)))
    reported = _error_line(result.output, 3)
    assert "$.Id" in reported and "40" in reported and "line 1" in reported, reported
    clean_error(invoke("export", "--db", sqlite_url, "--project", "600"), "600")


def _with_tag(db_url: str, project_id: int, tag: str) -> list[int]:
    with Store.open(db_url) as store:
        _, page = store.list_instances(
            InstanceQuery(
                project_id=project_id,
                env_type=EnvType.PROD,
                biz_date_ms=SHANGHAI_DAY_MS,
                tags=(parse_tag_match(tag),),
            )
        )
    return sorted(i.id for i in page.items)


def test_replace_never_moves_an_instance_to_another_workspace(db_url: str) -> None:
    """Authorisation relies on an id staying in its workspace (docs/access.md)."""
    ok(invoke("import", "--db", db_url, "-", input=jsonl([record(60, 710)])))
    before = export(db_url, 710)
    moved = [record(61, 711), record(60, 711)]
    clean_error(
        invoke("import", "--db", db_url, "--replace", "-", input=jsonl(moved)),
        "Instance 60 belongs to workspace 710",
    )
    assert export(db_url, 710) == before
    # All or nothing: instance 61 and its new workspace were not made either.
    clean_error(invoke("export", "--db", db_url, "--project", "711"), "711")


def test_existing_id_is_an_error_unless_replace(db_url: str) -> None:
    first = [
        record(50, 700, Status="Running", FinishedTime=None, Tags=[{"Key": "v", "Value": "1"}]),
        record(51, 700),
    ]
    ok(invoke("import", "--db", db_url, "-", input=jsonl(first)))
    before = export(db_url, 700)

    second = [
        record(50, 700, BizDate=SHANGHAI_DAY_MS + DAY_MS, Tags=[{"Key": "v", "Value": "2"}]),
        record(52, 700),
    ]
    clean_error(invoke("import", "--db", db_url, "-", input=jsonl(second)), "50", "--replace")
    assert export(db_url, 700) == before
    assert _with_tag(db_url, 700, "v:1") == [50]

    ok(invoke("import", "--db", db_url, "--replace", "-", input=jsonl(second)))
    got = by_id(export(db_url, 700))
    assert sorted(got) == [50, 51, 52]
    assert got[50] == expected_export(second[0], "Asia/Shanghai")
    assert got[51] == expected_export(first[1], "Asia/Shanghai")
    # The old row and its tags are gone from its old BizDate; nothing stale is left to match.
    assert _with_tag(db_url, 700, "v:1") == []
    assert _with_tag(db_url, 700, "v") == []
    day2 = export(db_url, 700, "--biz-date", "2025-04-01")
    assert [i["Id"] for i in day2] == [50]


def _timezone_of(db_url: str, project_id: int) -> str:
    out = ok(invoke("projects", "show", "--db", db_url, str(project_id))).stdout
    m = re.search(r"\b([A-Z][A-Za-z_]+/[A-Za-z_/]+)\b", out)
    assert m, out
    return m.group(1)


def test_unknown_projects_get_the_default_timezone(db_url: str) -> None:
    ok(invoke("import", "--db", db_url, "-", input=jsonl([record(60, 801)])))
    assert _timezone_of(db_url, 801) == "Asia/Shanghai"

    ny = [record(61, 802, BizDate=SHANGHAI_AFTERNOON_MS)]
    ok(
        invoke(
            "import", "--db", db_url, "--default-timezone", "America/New_York", "-", input=jsonl(ny)
        )
    )
    assert _timezone_of(db_url, 802) == "America/New_York"
    # 15:00 in Shanghai on 03-31 is 03:00 on 03-31 in New York: that day's midnight there.
    assert export(db_url, 802)[0]["BizDate"] == canonical_biz_date(
        SHANGHAI_AFTERNOON_MS, "America/New_York"
    )
    assert export(db_url, 802)[0]["BizDate"] == 1_743_393_600_000

    env = {"DWSCHED_DEFAULT_TIMEZONE": "Europe/London"}
    ok(invoke("import", "--db", db_url, "-", input=jsonl([record(62, 803)]), env=env))
    assert _timezone_of(db_url, 803) == "Europe/London"

    # A workspace that exists keeps its zone, whatever the default.
    berlin = create_project(db_url, "keeps_zone", "Europe/Berlin")
    line = [record(63, berlin, BizDate=BERLIN_EVENING_MS)]
    ok(invoke("import", "--db", db_url, "--default-timezone", "Asia/Tokyo", "-", input=jsonl(line)))
    assert _timezone_of(db_url, berlin) == "Europe/Berlin"
    assert export(db_url, berlin)[0]["BizDate"] == 1_743_289_200_000

    # An invalid default is a clean error, and nothing is created.
    clean_error(
        invoke(
            "import",
            "--db",
            db_url,
            "--default-timezone",
            "Mars/Olympus",
            "-",
            input=jsonl([record(64, 8804)]),
        ),
        "Mars/Olympus",
    )
    clean_error(invoke("projects", "show", "--db", db_url, "8804"), "8804")


def test_ids_of_created_projects_do_not_collide_with_later_ones(db_url: str) -> None:
    ok(invoke("import", "--db", db_url, "-", input=jsonl([record(70, 3)])))
    first = create_project(db_url, "after_import_a")
    second = create_project(db_url, "after_import_b")
    assert len({3, first, second}) == 3
    assert export(db_url, first) == []
    assert [i["Id"] for i in export(db_url, 3)] == [70]


def test_export_filters(db_url: str, tmp_path: Path) -> None:
    lines = [
        record(80, 900),
        record(81, 900, EnvType="Dev"),
        record(82, 900, BizDate=SHANGHAI_DAY_MS + DAY_MS),
        record(83, 900, BizDate=SHANGHAI_DAY_MS + DAY_MS, EnvType="Dev"),
        record(84, 900, BizDate=SHANGHAI_DAY_MS - DAY_MS),
        record(85, 901),  # another workspace
    ]
    ok(invoke("import", "--db", db_url, "-", input=jsonl(lines)))

    def ids(*args: str) -> list[int]:
        return sorted(i["Id"] for i in export(db_url, 900, *args))

    assert ids() == [80, 81, 82, 83, 84]
    assert ids("--biz-date", "2025-03-31") == [80, 81]
    assert ids("--biz-date", "2025-04-01") == [82, 83]
    assert ids("--biz-date", "2025-03-30") == [84]
    assert ids("--biz-date", "2025-05-01") == []
    assert ids("--env", "Dev") == [81, 83]
    assert ids("--env", "Prod") == [80, 82, 84]
    assert ids("--env", "Dev", "--biz-date", "2025-04-01") == [83]

    target = tmp_path / "out.jsonl"
    result = ok(invoke("export", "--db", db_url, "--project", "900", "-o", str(target)))
    assert result.stdout == ""
    assert sorted(i["Id"] for i in parse_lines(target.read_text("utf-8"))) == [80, 81, 82, 83, 84]

    clean_error(invoke("export", "--db", db_url, "--project", "900", "--env", "Test"))
    clean_error(invoke("export", "--db", db_url, "--project", "900", "--biz-date", "31/03/2025"))


def test_export_of_an_unknown_project_is_a_clean_error(db_url: str) -> None:
    result = clean_error(invoke("export", "--db", db_url, "--project", "123456"), "123456")
    assert result.stdout == ""
    clean_error(invoke("export", "--db", db_url, "--project", "123456", "--biz-date", "2025-03-31"))


def test_empty_input_imports_nothing(sqlite_url: str) -> None:
    assert (
        "imported 0 instances" in ok(invoke("import", "--db", sqlite_url, "-", input="\n\n")).stdout
    )


# Values the format allows must import on every backend, or be refused as an input error.


def test_longest_values_the_format_allows_round_trip(db_url: str) -> None:
    rec = record(
        90,
        950,
        Name="n" * 512,
        Owner="o" * 64,
        CreateUser="c" * 64,
        ModifyUser="m" * 64,
        Tags=[{"Key": "k" * 128, "Value": "v" * 256}],
        WorkflowParameters="p" * 10_000,
    )
    ok(invoke("import", "--db", db_url, "-", input=jsonl([rec])))
    assert export(db_url, 950) == [expected_export(rec, "Asia/Shanghai")]


def _imported_or_refused(db_url: str, rec: dict[str, Any], field: str) -> bool:
    """Import one line: True when it imported and exports back as it was; False when it was
    refused cleanly, naming line 1 and the field, with nothing written."""
    result = invoke("import", "--db", db_url, "-", input=jsonl([rec]))
    if result.exit_code == 0:
        tz = _timezone_of(db_url, rec["ProjectId"])
        assert export(db_url, rec["ProjectId"]) == [expected_export(rec, tz)]
        return True
    clean_error(result, "line 1", field)
    clean_error(invoke("export", "--db", db_url, "--project", str(rec["ProjectId"])))
    return False


def test_text_with_a_nul_character(db_url: str) -> None:
    _imported_or_refused(db_url, record(91, 951, Name="ods\x00orders"), "$.Name")


def test_biz_date_at_the_end_of_the_range(sqlite_url: str) -> None:
    # 9999-12-31T23:59:59.999Z is allowed by the format; in Shanghai it is in the year 10000.
    _imported_or_refused(sqlite_url, record(92, 952, BizDate=253_402_300_799_999), "$.BizDate")


def test_export_of_an_early_biz_date_imports_again(sqlite_url: str) -> None:
    # The epoch is 1969-12-31 in Los Angeles: if accepted, its canonical BizDate is before 0.
    rec = record(93, 953, BizDate=0, TriggerTime=0, CreateTime=0, ModifyTime=0)
    rec = without(rec, "StartedTime", "FinishedTime")
    args = ("import", "--db", sqlite_url, "--default-timezone", "America/Los_Angeles", "-")
    result = invoke(*args, input=jsonl([rec]))
    if result.exit_code != 0:
        clean_error(result, "line 1", "$.BizDate")
        return
    exported = export(sqlite_url, 953)
    ok(invoke("import", "--db", sqlite_url, "--replace", "-", input=jsonl(exported)))
    assert export(sqlite_url, 953) == exported


def test_unknown_project_whose_default_name_is_taken(sqlite_url: str) -> None:
    create_project(sqlite_url, "project_960")  # a workspace with another id took the name
    ok(invoke("import", "--db", sqlite_url, "-", input=jsonl([record(94, 960)])))
    assert [i["Id"] for i in export(sqlite_url, 960)] == [94]


def test_name_whose_case_folding_is_longer(db_url: str) -> None:
    # 200 characters (within every limit), 600 once case-folded for the Name filter.
    rec = record(95, 970, Name="\ufb03" * 200)
    ok(invoke("import", "--db", db_url, "-", input=jsonl([rec])))
    assert export(db_url, 970) == [expected_export(rec, "Asia/Shanghai")]


def test_repeated_and_same_key_tags_round_trip(db_url: str) -> None:
    tags = [
        {"Key": "team", "Value": "growth"},
        {"Key": "team", "Value": "growth"},
        {"Key": "team", "Value": "finance"},
        {"Key": "sla", "Value": ""},
    ]
    rec = record(96, 980, Tags=tags)
    ok(invoke("import", "--db", db_url, "-", input=jsonl([rec, record(97, 980, Tags=[])])))
    assert export(db_url, 980)[0]["Tags"] == tags
    assert _with_tag(db_url, 980, "team:growth") == [96]
    assert _with_tag(db_url, 980, "team:finance") == [96]
    assert _with_tag(db_url, 980, "sla:") == [96]
    assert _with_tag(db_url, 980, "team") == [96]


def test_long_input_decoded_in_a_second_process(db_url: str, tmp_path: Path) -> None:
    """An input past the size that moves decoding to a worker process (PARALLEL_FROM,
    20,000 lines) by part of a chunk (21,000 lines: four full chunks of CHUNK, 5,000, and a
    partial fifth): every instance lands, across partitions and chunks; an error or a
    repeated id far into it still rejects everything and names its line."""
    # From the thresholds, so that the input stays past them should they change.
    count = PARALLEL_FROM + CHUNK // 5
    repeat = PARALLEL_FROM + 457  # in the last chunk, decoded after the first four
    assert PARALLEL_FROM < repeat < count and count % CHUNK
    days = [SHANGHAI_DAY_MS + d * DAY_MS for d in range(5)]
    lines = [
        record(
            n,
            4300 + n % 3,  # unknown workspaces, created by the import
            BizDate=days[n % 5],
            EnvType="Dev" if n % 7 == 0 else "Prod",
            Tags=[{"Key": "k", "Value": str(n % 4)}, {"Key": "k", "Value": str(n % 4)}],
        )
        for n in range(1, count + 1)
    ]
    bad = list(lines)
    bad[repeat - 1] = record(3, 4300)  # line `repeat` repeats the id of line 3
    bad[count - 1] = record(count, 4300, Status="Done")
    failed = run_cli("import", "--db", db_url, str(write_jsonl(tmp_path / "bad.jsonl", bad)))
    err = failed.stderr.decode()
    assert failed.returncode != 0 and "Traceback" not in err, err
    assert re.search(rf"line {repeat}\b.*\$\.Id.* 3 repeats line 3\b", err), err
    assert re.search(rf"line {count}\b.*\$\.Status", err), err
    assert "2 error(s)" in err, err
    clean_error(invoke("export", "--db", db_url, "--project", "4300"), "4300")

    done = run_cli("import", "--db", db_url, str(write_jsonl(tmp_path / "in.jsonl", lines)))
    assert done.returncode == 0, done.stderr.decode()
    assert f"imported {count} instances".encode() in done.stdout
    got: dict[int, dict[str, Any]] = {}
    for project_id in (4300, 4301, 4302):
        got.update(by_id(export(db_url, project_id)))
    assert len(got) == count
    for n in (1, 4999, 5000, 5001, 12_345, count):
        assert got[n] == expected_export(lines[n - 1], "Asia/Shanghai")
    with Store.open(db_url) as store:
        _, page = store.list_instances(
            InstanceQuery(
                project_id=4301,
                env_type=EnvType.PROD,
                biz_date_ms=days[1],
                tags=(parse_tag_match("k:1"),),
            )
        )
    expected = [
        n for n in range(1, count + 1) if n % 3 == 1 and n % 5 == 1 and n % 7 and n % 4 == 1
    ]
    assert page.total == len(expected)

    again = run_cli("import", "--db", db_url, str(tmp_path / "in.jsonl"))
    err = again.stderr.decode()
    assert again.returncode != 0
    assert re.search(r"line 1\b.*\$\.Id.* 1 exists already", err), err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def _deploy_hourly(store: Store, project_id: int) -> tuple[DeployedWorkflow, date, list[Cycle]]:
    text = json.dumps(
        {
            "version": "1.1.0",
            "kind": "CycleWorkflow",
            "spec": {
                "workflows": [
                    {
                        "name": "hourly_after_import",
                        "trigger": {"cron": "00 00 * * * ?", "timezone": "Asia/Shanghai"},
                        "nodes": [
                            {
                                "id": "a",
                                "name": "a",
                                "script": {"runtime": {"command": "VIRTUAL"}},
                                "outputs": {"nodeOutputs": [{"data": "a_out"}]},
                            }
                        ],
                    }
                ]
            },
        }
    )
    spec = flowspec.parse(text, "Asia/Shanghai")
    now = SystemClock().now_ms()
    with store.write() as tx:
        _, deployed = tx.definitions.create(project_id, text, spec, "tester", now, nodes=True)
    assert spec.trigger.cron is not None
    trigger = Trigger(
        spec.trigger.cron, "Asia/Shanghai", spec.trigger.start_ms, spec.trigger.end_ms
    )
    run_date = date(2025, 4, 1)
    return deployed, run_date, cycles_on(trigger, run_date)


def _all_instances(store: Store, project_id: int) -> list[Any]:
    _, found = store.list_instances(
        InstanceQuery(
            project_id=project_id,
            env_type=EnvType.PROD,
            biz_date_ms=SHANGHAI_DAY_MS,
            page=page(1, 100),
        )
    )
    return list(found.items)


def test_imported_ids_ahead_of_the_engine_never_collide_with_its_later_ids(db_url: str) -> None:
    """An import with ids far ahead of the engine's counters never collides with its later
    ids, in its own transaction: instances the engine makes afterwards get fresh ids
    (instance, UnifiedWorkflowInstanceId, WorkflowTaskInstanceId) and are written. Ids at or
    above the task instances' base (10**9) leave the workflow instances' numbering below it
    (store.ids.advance_ids); those below move it."""
    project_id = create_project(db_url, "ids_ws")
    with Store.open(db_url) as store:
        deployed, run_date, cycles = _deploy_hourly(store, project_id)
        # The engine has made instances already: its counters have a state to move.
        early = store.generate(deployed, [(run_date, cycles[:2])], None, SystemClock().now_ms())
        assert early == 2
        engine_made = {i.id for i in _all_instances(store, project_id)}
        assert max(engine_made) < 1000

    top = 5_000_000_000
    lines = [
        record(top, project_id, UnifiedWorkflowInstanceId=top + 7, WorkflowTaskInstanceId=top * 3),
        record(top - 1, project_id, UnifiedWorkflowInstanceId=top - 1),
        record(1000, project_id),  # behind the top: moves nothing back
    ]
    ok(invoke("import", "--db", db_url, "-", input=jsonl(lines)))

    with Store.open(db_url) as store:
        made = store.generate(deployed, [(run_date, cycles[2:])], None, SystemClock().now_ms())
        assert made == len(cycles) - 2
        items = _all_instances(store, project_id)
    new = [i for i in items if i.id not in engine_made and i.id not in {top, top - 1, 1000}]
    assert len(new) == len(cycles) - 2
    assert len({i.id for i in items}) == len(items) == len(cycles) + 3
    # Below the base, past the import's ids there (1000), apart from those above it.
    assert 1000 < min(i.id for i in new) and max(i.id for i in new) < TASK_INSTANCE_ID_BASE
    assert all(i.unified_workflow_instance_id == i.id for i in new)
    assert min(i.workflow_task_instance_id for i in new) > top * 3


def test_ids_just_ahead_of_the_engine_and_a_later_lower_import(db_url: str) -> None:
    """Ids the engine would hand out next are taken by an import: it hands out others; a
    later import of lower ids never moves its counters back."""
    project_id = create_project(db_url, "ids_next_ws")
    with Store.open(db_url) as store:
        deployed, run_date, cycles = _deploy_hourly(store, project_id)
        store.generate(deployed, [(run_date, cycles[:3])], None, SystemClock().now_ms())
        first = {i.id for i in _all_instances(store, project_id)}
    ahead = [max(first) + 1, max(first) + 2]
    ok(invoke("import", "--db", db_url, "-", input=jsonl(record(n, project_id) for n in ahead)))
    with Store.open(db_url) as store:
        assert store.generate(deployed, [(run_date, cycles[3:5])], None, SystemClock().now_ms())
        second = {i.id for i in _all_instances(store, project_id)} - first - set(ahead)
    assert len(second) == 2 and min(second) > max(ahead)

    ok(invoke("import", "--db", db_url, "-", input=jsonl([record(10_000, project_id)])))
    ok(invoke("import", "--db", db_url, "-", input=jsonl([record(9_000, project_id)])))
    with Store.open(db_url) as store:
        assert store.generate(deployed, [(run_date, cycles[5:7])], None, SystemClock().now_ms())
        items = _all_instances(store, project_id)
    third = {i.id for i in items} - first - set(ahead) - second - {9_000, 10_000}
    assert len(third) == 2 and min(third) > 10_000
    assert len(items) == 3 + 2 + 2 + 2 + 2
