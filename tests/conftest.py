"""The root of the tests: only what every directory needs, and nothing heavy.

Fixtures for a database (`db_url`, `store`) and a live server (`live`) live in tests/support
and are loaded by the conftests of the directories that use them, so that tests/domain runs
without the SDK, a server or a database (tests.support.purity checks that it does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.settings import PG_SKIP

pytest_plugins = ["tests.support.purity"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not Path("/usr/bin/chromium").exists():
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            "/usr/bin/chromium is missing: the web console's browser tests were skipped. "
            "Install Debian's chromium package (.ci/run does).",
            red=True,
        )
    # Read from the skip reports, which reach this process from pytest-xdist's workers too.
    skipped = terminalreporter.stats.get("skipped", [])
    if any(PG_SKIP in str(report.longrepr) for report in skipped):
        terminalreporter.write_sep("!", "POSTGRESQL TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            f"{PG_SKIP}: every PostgreSQL test was skipped. Start it or set "
            "DWSCHED_TEST_POSTGRES_URL.",
            red=True,
        )
