"""What the test run is given from outside: the PostgreSQL server and whether it is required.

PostgreSQL tests run against DWSCHED_TEST_POSTGRES_URL (default: the local server). When it
is unreachable they are skipped, loudly, unless DWSCHED_REQUIRE_POSTGRES=1 (as in CI), when
they fail. Light on purpose: the root conftest reads it for every run, tests/domain included.
"""

from __future__ import annotations

import os

PG_URL = os.environ.get(
    "DWSCHED_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("DWSCHED_REQUIRE_POSTGRES") == "1"
PG_SKIP = f"PostgreSQL unreachable at {PG_URL}"
