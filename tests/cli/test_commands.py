"""`dwsched keys`, `projects`, `instances`, the database choice and the options' help."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException

from dwsched.domain.models import EnvType, InstanceType, Status
from tests.cli.helpers import (
    SHANGHAI_DAY_MS,
    clean_error,
    create_project,
    db_url_of,
    invoke,
    ok,
    option_blocks,
    sdk,
    sdk_list,
)
from tests.support.factories import DAY, instance, project, put, tags
from tests.support.server import LiveServer, free_port


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database, for behaviour that does not depend on the backend."""
    return f"sqlite:///{tmp_path / 'one.db'}"


# Keys


def _new_key(db: str) -> tuple[str, str]:
    result = ok(invoke("keys", "create", "--db", db, "--json", "--name", "ci"))
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    data = json.loads(lines[0])
    assert set(data) == {"AccessKeyId", "AccessKeySecret"}
    assert all(isinstance(v, str) and v for v in data.values())
    return data["AccessKeyId"], data["AccessKeySecret"]


def test_keys_create_json_prints_one_line_of_two_keys(sqlite_url: str) -> None:
    result = ok(invoke("keys", "create", "--db", sqlite_url, "--json"))
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n")
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert set(data) == {"AccessKeyId", "AccessKeySecret"}
    assert data["AccessKeyId"] != data["AccessKeySecret"]
    assert len(data["AccessKeySecret"]) >= 20
    again = json.loads(ok(invoke("keys", "create", "--db", sqlite_url, "--json")).stdout)
    assert again["AccessKeyId"] != data["AccessKeyId"]
    assert again["AccessKeySecret"] != data["AccessKeySecret"]

    plain = ok(invoke("keys", "create", "--db", sqlite_url))
    assert "AccessKeyId" in plain.stdout and "AccessKeySecret" in plain.stdout


def test_keys_list_shows_ids_never_secrets(sqlite_url: str) -> None:
    made = [_new_key(sqlite_url) for _ in range(2)]
    out = ok(invoke("keys", "list", "--db", sqlite_url)).output
    for key_id, secret in made:
        assert key_id in out
        assert secret not in out
    ok(invoke("keys", "disable", "--db", sqlite_url, made[0][0]))
    out = ok(invoke("keys", "list", "--db", sqlite_url)).output
    row = next(line for line in out.splitlines() if made[0][0] in line)
    assert "Disabled" in row
    assert made[0][1] not in out


def test_keys_disable_enable_delete_against_a_live_server(live: LiveServer) -> None:
    db = db_url_of(live.store)
    p = project(live.store)
    put(live.store, [instance(p.id)])
    key_id, secret = _new_key(db)
    client = sdk(live.endpoint, key_id, secret)
    assert sdk_list(client, p.id, SHANGHAI_DAY_MS).total_count == 1

    assert key_id in ok(invoke("keys", "disable", "--db", db, key_id)).stdout
    with pytest.raises(ClientException) as denied:
        sdk_list(client, p.id, SHANGHAI_DAY_MS)
    assert denied.value.code == "InvalidAccessKeyId.Inactive"
    # Another key is not affected.
    assert sdk_list(live.sdk(), p.id, SHANGHAI_DAY_MS).total_count == 1

    ok(invoke("keys", "enable", "--db", db, key_id))
    assert sdk_list(client, p.id, SHANGHAI_DAY_MS).total_count == 1

    ok(invoke("keys", "delete", "--db", db, key_id))
    with pytest.raises(ClientException) as gone:
        sdk_list(client, p.id, SHANGHAI_DAY_MS)
    assert gone.value.code == "InvalidAccessKeyId.NotFound"
    assert key_id not in ok(invoke("keys", "list", "--db", db)).output


@pytest.mark.parametrize("action", ["disable", "enable", "delete"])
def test_unknown_key_id_is_a_clean_error(action: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    clean_error(invoke("keys", action, "--db", db, "LTAInoSuchKey000000000"), "LTAInoSuchKey")


# Workspaces


def test_projects_create_list_show_set_timezone(db_url: str) -> None:
    result = ok(
        invoke(
            "projects",
            "create",
            "--db",
            db_url,
            "--name",
            "berlin_team",
            "--timezone",
            "Europe/Berlin",
            "--description",
            "ETL",
        )
    )
    m = re.search(r"created workspace (\d+) \(berlin_team, Europe/Berlin\)", result.stdout)
    assert m, result.stdout
    berlin = int(m.group(1))
    shanghai = create_project(db_url, "default_zone")
    assert shanghai != berlin

    listed = ok(invoke("projects", "list", "--db", db_url)).stdout
    rows = {ln.split("│")[2].strip(): ln for ln in listed.splitlines() if ln.count("│") > 4}
    assert set(rows) == {"berlin_team", "default_zone"}
    assert "Europe/Berlin" in rows["berlin_team"] and str(berlin) in rows["berlin_team"]
    assert "Asia/Shanghai" in rows["default_zone"]

    shown = ok(invoke("projects", "show", "--db", db_url, str(berlin))).stdout
    assert "berlin_team" in shown and "Europe/Berlin" in shown and "default_zone" not in shown

    out = ok(invoke("projects", "set-timezone", "--db", db_url, str(berlin), "America/Chicago"))
    assert "America/Chicago" in out.stdout
    shown = ok(invoke("projects", "show", "--db", db_url, str(berlin))).stdout
    assert "America/Chicago" in shown and "Europe/Berlin" not in shown

    # The default zone of new workspaces: flag, then environment variable.
    env = {"DWSCHED_DEFAULT_TIMEZONE": "Asia/Tokyo"}
    tokyo = ok(invoke("projects", "create", "--db", db_url, "--name", "tokyo_ws", env=env))
    assert "Asia/Tokyo" in tokyo.stdout
    flagged = invoke(
        "projects",
        "create",
        "--db",
        db_url,
        "--name",
        "lisbon_ws",
        "--default-timezone",
        "Europe/Lisbon",
        env=env,
    )
    assert "Europe/Lisbon" in ok(flagged).stdout


def test_projects_errors_are_clean(sqlite_url: str) -> None:
    first = create_project(sqlite_url, "unique_name")
    clean_error(
        invoke(
            "projects", "create", "--db", sqlite_url, "--name", "bad_zone", "--timezone", "Nope/X"
        ),
        "Nope/X",
    )
    clean_error(
        invoke("projects", "create", "--db", sqlite_url, "--name", "unique_name"), "unique_name"
    )
    clean_error(invoke("projects", "show", "--db", sqlite_url, "987654"), "987654")
    clean_error(invoke("projects", "set-timezone", "--db", sqlite_url, "987654", "UTC"), "987654")
    clean_error(
        invoke("projects", "set-timezone", "--db", sqlite_url, str(first), "Europe/Nowhere"),
        "Europe/Nowhere",
    )
    clean_error(invoke("projects", "create", "--db", sqlite_url))  # --name is required

    listed = ok(invoke("projects", "list", "--db", sqlite_url)).stdout
    assert "bad_zone" not in listed
    assert "Asia/Shanghai" in ok(invoke("projects", "show", "--db", sqlite_url, str(first))).stdout


@pytest.mark.parametrize("name", ["has space", "semi;colon", "", "x" * 200])
def test_projects_create_refuses_names_the_help_does_not_allow(name: str, tmp_path: Path) -> None:
    # --help: "Workspace name (letters, digits, underscores)"; CreateProject refuses these too.
    db = f"sqlite:///{tmp_path / 'n.db'}"
    clean_error(invoke("projects", "create", "--db", db, "--name", name))
    assert "│" not in ok(invoke("projects", "list", "--db", db)).stdout  # no row


# Which database


def _key_ids(db: str) -> str:
    return ok(invoke("keys", "list", "--db", db)).stdout


def test_database_from_flag_then_environment_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cwd_db = f"sqlite:///{tmp_path / 'dwsched.db'}"
    env_db = f"sqlite:///{tmp_path / 'from_env.db'}"
    flag_db = f"sqlite:///{tmp_path / 'from_flag.db'}"

    plain = json.loads(ok(invoke("keys", "create", "--json")).stdout)["AccessKeyId"]
    assert (tmp_path / "dwsched.db").exists()
    env = {"DWSCHED_DATABASE_URL": env_db}
    via_env = json.loads(ok(invoke("keys", "create", "--json", env=env)).stdout)["AccessKeyId"]
    assert (tmp_path / "from_env.db").exists()
    via_flag = json.loads(ok(invoke("keys", "create", "--json", "--db", flag_db, env=env)).stdout)[
        "AccessKeyId"
    ]

    assert plain in _key_ids(cwd_db)
    assert via_env not in _key_ids(cwd_db) and via_flag not in _key_ids(cwd_db)
    assert via_env in _key_ids(env_db)
    assert plain not in _key_ids(env_db) and via_flag not in _key_ids(env_db)
    assert via_flag in _key_ids(flag_db)
    assert plain not in _key_ids(flag_db) and via_env not in _key_ids(flag_db)

    # Every command that takes --db reads the same variable.
    assert via_env in ok(invoke("keys", "list", env=env)).stdout
    pid = create_project(env_db, "env_chosen")
    assert "env_chosen" in ok(invoke("projects", "list", env=env)).stdout
    assert "env_chosen" not in ok(invoke("projects", "list")).stdout
    clean_error(invoke("export", "--project", str(pid)), str(pid))
    assert ok(invoke("export", "--project", str(pid), env=env)).stdout == ""
    assert "head" in ok(invoke("db", "current", env=env)).stdout


def test_database_url_from_environment_on_both_backends(db_url: str) -> None:
    env = {"DWSCHED_DATABASE_URL": db_url}
    key_id = json.loads(ok(invoke("keys", "create", "--json", env=env)).stdout)["AccessKeyId"]
    assert key_id in _key_ids(db_url)
    up = ok(invoke("db", "upgrade", env=env)).stdout
    current = ok(invoke("db", "current", env=env)).stdout
    revision = re.search(r"at revision (\S+)", up)
    assert revision, up
    assert re.search(rf"database: {re.escape(revision.group(1))}\s+head: ", current), current


def test_unusable_database_is_a_clean_error(tmp_path: Path) -> None:
    clean_error(invoke("keys", "list", "--db", "mysql://root@localhost/x"), "mysql")
    missing_dir = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    clean_error(invoke("keys", "list", "--db", missing_dir))
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    clean_error(invoke("keys", "list", "--db", closed))


# Every option names its environment variable


ENV_VARS = {
    ("serve",): {
        "--db": "DWSCHED_DATABASE_URL",
        "--host": "DWSCHED_HOST",
        "--port": "DWSCHED_PORT",
        "--default-timezone": "DWSCHED_DEFAULT_TIMEZONE",
        "--log-level": "DWSCHED_LOG_LEVEL",
        "--workers": "DWSCHED_WORKERS",
        "--engine": "DWSCHED_ENGINE",
        "--slots": "DWSCHED_SLOTS",
        "--group-slots": "DWSCHED_GROUP_SLOTS",
    },
    ("demo",): {
        "--db": "DWSCHED_DATABASE_URL",
        "--host": "DWSCHED_HOST",
        "--port": "DWSCHED_PORT",
        "--default-timezone": "DWSCHED_DEFAULT_TIMEZONE",
    },
    ("instances", "list"): {
        "--access-key-id": "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "--access-key-secret": "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "--endpoint": "DWSCHED_ENDPOINT",
    },
    ("instances", "get"): {
        "--access-key-id": "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "--access-key-secret": "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "--endpoint": "DWSCHED_ENDPOINT",
    },
    ("import",): {"--db": "DWSCHED_DATABASE_URL", "--default-timezone": "DWSCHED_DEFAULT_TIMEZONE"},
    ("export",): {"--db": "DWSCHED_DATABASE_URL"},
    ("projects", "create"): {
        "--db": "DWSCHED_DATABASE_URL",
        "--default-timezone": "DWSCHED_DEFAULT_TIMEZONE",
    },
    **{
        tuple(cmd.split()): {"--db": "DWSCHED_DATABASE_URL"}
        for cmd in (
            "projects list",
            "projects show",
            "projects set-timezone",
            "keys create",
            "keys list",
            "keys disable",
            "keys enable",
            "keys delete",
            "db upgrade",
            "db current",
        )
    },
}


@pytest.mark.parametrize("command", sorted(ENV_VARS), ids=" ".join)
def test_help_names_each_options_environment_variable(command: tuple[str, ...]) -> None:
    blocks = option_blocks(ok(invoke(*command, "--help")).stdout)
    for option, variable in ENV_VARS[command].items():
        assert option in blocks, f"{option} missing from {' '.join(command)} --help"
        assert f"env var: {variable}" in blocks[option], blocks[option]


# instances list / get against a live server


@pytest.fixture(scope="module")
def listed(live: LiveServer) -> dict[str, int]:
    """A workspace with eight instances on DAY (and one on the day after, one in Dev)."""
    p = project(live.store)
    base = SHANGHAI_DAY_MS + 86_400_000 + 2 * 3_600_000
    rows = [
        instance(
            p.id,
            name="ods_orders_daily",
            status=Status.SUCCESS,
            started_time=base + 5,
            tags=tags("team:growth", "layer:ods"),
            owner="203045001",
        ),
        instance(
            p.id,
            name="dwd_ORDERS_detail",
            status=Status.FAILURE,
            started_time=base + 9,
            tags=tags("team:finance", "layer:dwd"),
            owner="203045002",
        ),
        instance(
            p.id,
            name="dws_payments_daily",
            status=Status.RUNNING,
            started_time=base + 1,
            finished_time=None,
            tags=tags("team:growth", "layer:dws"),
        ),
        instance(
            p.id,
            name="ads_report_hourly",
            status=Status.NOT_RUN,
            started_time=None,
            finished_time=None,
            tags=tags("layer:ads"),
        ),
        instance(
            p.id,
            name="ods_users_daily",
            status=Status.FAILURE,
            started_time=base + 3,
            type=InstanceType.SUPPLEMENT_DATA,
            tags=tags("team:"),
        ),
        instance(
            p.id,
            name="ods_clicks_daily",
            status=Status.WAIT_TIME,
            started_time=None,
            finished_time=None,
            workflow_id=4242,
        ),
        instance(p.id, name="ods_refunds_daily", status=Status.SUCCESS, started_time=base + 7),
        instance(p.id, name="ods_ads_daily", status=Status.SUCCESS, started_time=base + 2),
        instance(p.id, name="next_day_only", biz_day=DAY + timedelta(days=1)),
        instance(p.id, name="dev_only", env_type=EnvType.DEV),
    ]
    put(live.store, rows)
    ids = {i.name: i.id for i in rows}
    ids["project"] = p.id
    return ids


def _list(live: LiveServer, project_id: int, *args: str) -> dict[str, object]:
    result = ok(
        invoke(
            "instances",
            "list",
            "--endpoint",
            live.endpoint,
            "--access-key-id",
            live.key_id,
            "--access-key-secret",
            live.secret,
            "--project",
            str(project_id),
            *args,
        )
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    data: dict[str, object] = json.loads(lines[0])
    return data


def _names(data: dict[str, object]) -> list[str]:
    paging = data["PagingInfo"]
    assert isinstance(paging, dict)
    return [i["Name"] for i in paging["WorkflowInstances"]]


def test_instances_list_json(live: LiveServer, listed: dict[str, int]) -> None:
    data = _list(live, listed["project"], "--biz-date", "2025-03-31", "--json")
    assert "RequestId" in data
    paging = data["PagingInfo"]
    assert isinstance(paging, dict)
    assert paging["TotalCount"] == 8
    assert paging["PageNumber"] == 1 and paging["PageSize"] == 20
    items = paging["WorkflowInstances"]
    day_names = [n for n in listed if n not in ("project", "next_day_only", "dev_only")]
    # The CLI's default: the latest started first, those not started last (by Id Desc).
    started = [i["StartedTime"] for i in items if i["StartedTime"] is not None]
    assert started == sorted(started, reverse=True) and len(started) == 6, items
    assert [i["StartedTime"] for i in items[6:]] == [None, None], items
    assert {i["BizDate"] for i in items} == {SHANGHAI_DAY_MS}
    # The API's own default on asking for it.
    by_id = _list(
        live, listed["project"], "--biz-date", "2025-03-31", "--json", "--sort", "Id Desc"
    )
    assert [i["Id"] for i in by_id["PagingInfo"]["WorkflowInstances"]] == sorted(  # type: ignore[index]
        (listed[n] for n in day_names), reverse=True
    )

    nxt = _list(live, listed["project"], "--biz-date", "2025-04-01", "--json")
    assert _names(nxt) == ["next_day_only"]
    dev = _list(live, listed["project"], "--biz-date", "2025-03-31", "--env", "Dev", "--json")
    assert _names(dev) == ["dev_only"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--status", "Failure"], {"dwd_ORDERS_detail", "ods_users_daily"}),
        (
            ["--status", "Failure", "--status", "Running"],
            {"dwd_ORDERS_detail", "ods_users_daily", "dws_payments_daily"},
        ),
        (["--tag", "team:growth"], {"ods_orders_daily", "dws_payments_daily"}),
        (["--tag", "team:"], {"ods_users_daily"}),
        (
            ["--tag", "team"],
            {"ods_orders_daily", "dwd_ORDERS_detail", "dws_payments_daily", "ods_users_daily"},
        ),
        (["--tag", "layer:ads", "--tag", "layer:dwd"], {"ads_report_hourly", "dwd_ORDERS_detail"}),
        (["--name", "orders"], {"ods_orders_daily", "dwd_ORDERS_detail"}),
        (["--name", "ORDERS", "--status", "Failure"], {"dwd_ORDERS_detail"}),
        (["--type", "SupplementData"], {"ods_users_daily"}),
        (["--workflow", "4242"], {"ods_clicks_daily"}),
        (["--owner", "203045002"], {"dwd_ORDERS_detail"}),
        (["--name", "no_such_thing"], set()),
    ],
)
def test_instances_list_filters(
    live: LiveServer, listed: dict[str, int], args: list[str], expected: set[str]
) -> None:
    data = _list(live, listed["project"], "--biz-date", "2025-03-31", "--json", *args)
    assert set(_names(data)) == expected
    paging = data["PagingInfo"]
    assert isinstance(paging, dict) and paging["TotalCount"] == len(expected)


def test_instances_list_sort_and_pages(live: LiveServer, listed: dict[str, int]) -> None:
    pid = listed["project"]
    by_start = _names(
        _list(live, pid, "--biz-date", "2025-03-31", "--json", "--sort", "StartedTime Desc")
    )
    started = [
        "dwd_ORDERS_detail",
        "ods_refunds_daily",
        "ods_orders_daily",
        "ods_users_daily",
        "ods_ads_daily",
        "dws_payments_daily",
    ]
    assert by_start[:6] == started
    not_started = sorted(["ads_report_hourly", "ods_clicks_daily"], key=listed.__getitem__)
    assert by_start[6:] == not_started[::-1]  # no StartedTime: last, ties by Id Desc

    asc = _names(_list(live, pid, "--biz-date", "2025-03-31", "--json", "--sort", "startedtime"))
    assert asc[:6] == started[::-1]

    pages = [
        _list(
            live,
            pid,
            "--biz-date",
            "2025-03-31",
            "--json",
            "--sort",
            "StartedTime Desc",
            "--page-size",
            "3",
            "--page",
            str(n),
        )
        for n in (1, 2, 3, 4)
    ]
    for n, page in enumerate(pages, start=1):
        paging = page["PagingInfo"]
        assert isinstance(paging, dict)
        assert (paging["PageNumber"], paging["PageSize"], paging["TotalCount"]) == (n, 3, 8)
    assert [_names(p) for p in pages] == [by_start[0:3], by_start[3:6], by_start[6:8], []]


def _table(live: LiveServer, project_id: int, columns: str, *args: str) -> str:
    result = invoke(
        "instances",
        "list",
        "--project",
        str(project_id),
        "--biz-date",
        "2025-03-31",
        *args,
        env={
            "DWSCHED_ENDPOINT": live.endpoint,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": live.key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": live.secret,
            "COLUMNS": columns,
        },
    )
    return ok(result).stdout


TABLE_NAMES = ("ods_orders_daily", "dwd_ORDERS_detail", "dws_payments_daily", "ods_ads_daily")


def test_instances_list_table(live: LiveServer, listed: dict[str, int]) -> None:
    out = _table(live, listed["project"], "160")
    for name in TABLE_NAMES:
        assert name in out, out
    assert "next_day_only" not in out and "dev_only" not in out
    assert "2025-03-31" in out and "Asia/Shanghai" in out
    assert re.search(r"page 1 of 1 . 8 workflow instances . the latest started first", out), out
    assert "Failure" in out and "Running" in out and "SupplementData" in out

    paged = _table(live, listed["project"], "160", "--page-size", "3", "--page", "2")
    assert re.search(r"page 2 of 3 . 8 workflow instances", paged), paged


def test_instances_list_table_shows_whole_names_at_80_columns(
    live: LiveServer, listed: dict[str, int]
) -> None:
    # 80 columns: a terminal's usual width, and what rich assumes when output is piped.
    out = _table(live, listed["project"], "80")
    for name in TABLE_NAMES:
        assert name in out, out


def test_instances_list_days_in_the_workspace_zone(live: LiveServer) -> None:
    tz = "America/Los_Angeles"
    p = project(live.store, tz=tz)
    today = datetime.now(ZoneInfo(tz)).date()
    put(
        live.store,
        [
            instance(p.id, name="la_yesterday", biz_day=today - timedelta(days=1)),
            instance(p.id, name="la_today", biz_day=today),
            instance(p.id, name="la_fixed", biz_day=DAY),
        ],
    )
    la_midnight = int(datetime(2025, 3, 31, tzinfo=ZoneInfo(tz)).timestamp() * 1000)
    fixed = _list(live, p.id, "--biz-date", "2025-03-31", "--json")
    assert _names(fixed) == ["la_fixed"]
    paging = fixed["PagingInfo"]
    assert isinstance(paging, dict)
    assert paging["WorkflowInstances"][0]["BizDate"] == la_midnight
    assert _names(_list(live, p.id, "--biz-date", "yesterday", "--json")) == ["la_yesterday"]
    assert _names(_list(live, p.id, "--biz-date", "today", "--json")) == ["la_today"]


def test_instances_list_errors_are_clean(live: LiveServer, listed: dict[str, int]) -> None:
    common = ["--access-key-id", live.key_id, "--project", str(listed["project"])]
    day = ["--biz-date", "2025-03-31"]
    list_ = ["instances", "list", "--endpoint", live.endpoint]
    clean_error(invoke(*list_, *common, "--access-key-secret", "wrong", *day), "SignatureDoesNot")
    clean_error(
        invoke(
            *list_,
            "--access-key-id",
            live.key_id,
            "--access-key-secret",
            live.secret,
            "--project",
            "98765432",
            *day,
        ),
        "ProjectNotExist",
    )
    clean_error(
        invoke(*list_, *common, "--access-key-secret", live.secret, *day, "--sort", "Nme Desc"),
        "InvalidParameter",
    )
    clean_error(invoke(*list_, *common, *day), "--access-key-secret")
    nowhere = f"127.0.0.1:{free_port()}"
    clean_error(
        invoke(
            "instances",
            "list",
            "--endpoint",
            nowhere,
            *common,
            "--access-key-secret",
            live.secret,
            *day,
        ),
        nowhere,
    )


def test_instances_list_bad_biz_date_names_the_option(live: LiveServer) -> None:
    result = invoke(
        "instances",
        "list",
        "--endpoint",
        live.endpoint,
        "--access-key-id",
        live.key_id,
        "--access-key-secret",
        live.secret,
        "--project",
        "1",
        "--biz-date",
        "31.03.2025",
    )
    clean_error(result, "YYYY-MM-DD", "--biz-date")


def test_instances_get(live: LiveServer, listed: dict[str, int]) -> None:
    auth = [
        "--endpoint",
        live.endpoint,
        "--access-key-id",
        live.key_id,
        "--access-key-secret",
        live.secret,
    ]
    wanted = listed["dwd_ORDERS_detail"]
    item = json.loads(ok(invoke("instances", "get", *auth, str(wanted))).stdout)
    assert item["Id"] == wanted
    assert item["Name"] == "dwd_ORDERS_detail"
    assert item["Status"] == "Failure"
    assert item["ProjectId"] == listed["project"]
    assert item["BizDate"] == SHANGHAI_DAY_MS
    assert {"Key": "team", "Value": "finance"} in item["Tags"]

    missing = 10**15 + int(uuid.uuid4().int % 1000)
    clean_error(invoke("instances", "get", *auth, str(missing)), str(missing))
