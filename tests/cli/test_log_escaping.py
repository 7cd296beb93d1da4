"""What tasks print and what users name reaches an operator's terminal escaped: `dwsched
tasks logs` (whole and --follow), `instances list`, `workflows list|show` show control
sequences (ESC, BEL, a bare carriage return, C1 controls, bidi overrides) as visible escapes,
never raw; newlines and tabs of a log are kept. A real task on a live server (SQLite).
"""

from __future__ import annotations

import json
from datetime import date

import httpx

from dwsched.cli.terminal import json_text, visible, visible_log
from dwsched.clock import SystemClock
from dwsched.domain.models import ProjectChanges
from tests.cli.helpers import db_url_of, invoke, ok
from tests.cli.test_operations import deploy, dw, env, live, shell, smoke_test
from tests.support.factories import project
from tests.support.server import LiveServer

__all__ = ["live"]  # the live server and engine of test_operations, one for this module

# ESC ] 0 ; title BEL (the window title), ESC [ 2 J (clear the screen), a bare CR that
# would overwrite the line with "fake"; then a C1 CSI (U+009B) and a right-to-left override.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\rfake"
SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J\\rfake"
RAW = ("\x1b", "\x07", "\r", "\x9b", "\u202e", "\u2066")


def assert_no_raw(text: str) -> None:
    for char in RAW:
        assert char not in text, (char, text)


def test_visible_escapes_controls_and_keeps_plain_text() -> None:
    assert visible(HOSTILE) == SHOWN
    assert visible("a\tb\nc\x00\x7f\x85\u202e\u2069é漢 \\x1b") == (
        "a\\tb\\nc\\x00\\x7f\\x85\\u202e\\u2069é漢 \\x1b"
    )
    assert visible_log("line 1\r\n\tline 2\n\x9b31m\u202dx\r") == (
        "line 1\n\tline 2\n\\x9b31m\\u202dx\\r"
    )
    text = json_text({"Name": "a\x1bb\x9b\u202ec\u2028é"})
    assert_no_raw(text)
    assert "\u2028" not in text and "é" in text
    assert json.loads(text) == {"Name": "a\x1bb\x9b\u202ec\u2028é"}


def test_logs_show_control_sequences_escaped(live: LiveServer) -> None:
    p = project(live.store)
    script = (
        r"printf '\033]0;pwned\007\033[2J\rfake\n'" + "\n"
        r"printf 'tab\there\n'" + "\n"
        r"printf 'c1 \302\23331m bidi \342\200\256reversed\n'"
    )
    w = deploy(live, p.id, [shell("hostile", script)])
    _, tasks = smoke_test(live, w, date(2025, 7, 1))
    ti = str(tasks["hostile"]["Id"])

    followed = ok(dw(live, "tasks", "logs", ti, "--follow")).stdout
    whole = ok(dw(live, "tasks", "logs", ti)).stdout
    for out in (followed, whole):
        assert_no_raw(out)
        assert SHOWN + "\n" in out, out
        assert "tab\there\n" in out  # tabs and newlines are kept
        assert "c1 \\x9b31m bidi \\u202ereversed\n" in out
    assert whole.endswith("\n")


def test_names_show_control_sequences_escaped(live: LiveServer) -> None:
    day = date(2025, 7, 2)
    p = project(live.store)
    w = deploy(live, p.id, [shell("n\x1b[31mred", "true")])
    hostile = "run \x1b]8;;http://x\x07[link=http://x]click[/link]\r\u202eevil"
    args = ("run", str(w["Id"]), "--biz-date", day.isoformat(), "--name", hostile)
    ran = ok(dw(live, *args))
    assert_no_raw(ran.output)

    # Wide enough for the whole name on one line (at 80 columns a long name folds).
    listing = ("instances", "list", "--project", str(p.id), "--biz-date", day.isoformat())
    listed = ok(invoke(*listing, env={**env(live), "COLUMNS": "200"})).stdout
    assert_no_raw(listed)
    assert "\\x1b]8;;http://x\\x07[link=http://x]click[/link]\\r\\u202eevil" in listed, listed

    as_json = ok(
        dw(
            live,
            "instances",
            "list",
            "--project",
            str(p.id),
            "--biz-date",
            day.isoformat(),
            "--json",
        )
    ).stdout
    assert_no_raw(as_json)
    items = json.loads(as_json)["PagingInfo"]["WorkflowInstances"]
    assert [i["Name"] for i in items] == [hostile]

    shown = ok(dw(live, "workflows", "show", str(w["Id"]))).stdout
    assert_no_raw(shown)
    assert "n\\x1b[31mred" in shown, shown
    # A trigger without an effective period reads as such, not as 1970 → 9999.
    assert "always in effect" in shown and "9999" not in shown, shown


def test_audit_and_workspaces_show_typed_text_escaped(live: LiveServer) -> None:
    """A failed console sign-in records whatever user name was typed, by anyone: `dwsched
    audit` shows it escaped; so does `projects list` a workspace's description."""
    typed = "\x1b]0;pwned\x07[link=http://x]op[/link]\r\u202e"
    with httpx.Client(base_url=f"http://{live.endpoint}", timeout=30) as http:
        answer = http.post("/console/api/signin", json={"UserName": typed, "Password": "x" * 9})
    assert answer.status_code == 401
    p = project(live.store)
    with live.store.write() as tx:
        tx.projects.update(p.id, ProjectChanges(description=typed), SystemClock().now_ms())
    url = db_url_of(live.store)

    table = ok(invoke("audit", "--db", url, "--action", "ConsoleSignIn")).stdout
    lines = ok(invoke("audit", "--db", url, "--action", "ConsoleSignIn", "--json")).stdout
    workspaces = ok(invoke("projects", "list", "--db", url)).stdout
    for out in (table, lines, workspaces):
        assert_no_raw(out)
    # The tables are narrow here (80 columns): the cells are cut, but start visibly.
    assert "\\x1b]0;" in table and "\\x1b]0;" in workspaces, (table, workspaces)
    assert typed in [json.loads(line)["User"] for line in lines.splitlines()]
