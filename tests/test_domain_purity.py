"""tests/domain collects without the SDK, a server or a database (tests/support/purity.py).

Only collection, in a fresh process, to stay cheap inside the whole suite; a full run of
tests/domain alone (`scripts/check-domain-tests`) also watches what the tests import as they run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_domain_tests_collect_without_sdk_server_or_database() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "-q",
            "--collect-only",
            "tests/domain",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "tests/domain IS NOT PURE" not in run.stdout
