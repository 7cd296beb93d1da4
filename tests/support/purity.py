"""tests/domain stays pure: a run of only its tests imports no SDK, server, HTTP or database code.

When every path pytest is given lies under tests/domain, this plugin watches imports and, at the
end of the session, fails the run if one of `FORBIDDEN` was imported, naming the file that first
imported it. It does not block anything (an optional import elsewhere behaves as usual), and it
is inactive in any wider run, where other directories import those modules on purpose.
Under pytest-xdist the collecting processes are not watched: `scripts/check-domain-tests`
runs tests/domain in one process.
"""

from __future__ import annotations

import importlib.abc
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DOMAIN_TESTS = Path(__file__).resolve().parent.parent / "domain"

# Top-level packages, and dwsched's packages above `domain`.
FORBIDDEN = (
    "alibabacloud_dataworks_public20240518",
    "alibabacloud_tea_openapi",
    "Tea",
    "darabonba",
    "uvicorn",
    "starlette",
    "httpx",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "dwsched.store",
    "dwsched.api",
    "dwsched.engine",
    "dwsched.runtime",
    "dwsched.web",
    "dwsched.cli",
    "dwsched.client",
)


def _root(name: str) -> str:
    """`sqlalchemy.orm` -> `sqlalchemy`; `dwsched.store.engine` -> `dwsched.store`."""
    parts = name.split(".")
    return ".".join(parts[:2] if parts[0] == "dwsched" else parts[:1])


def forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


class _Watch(importlib.abc.MetaPathFinder):
    """Records, for each forbidden module, where its import came from; finds nothing itself."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if forbidden(fullname) and fullname not in self.first:
            frames = [
                f
                for f in traceback.extract_stack()
                if not f.filename.startswith("<frozen") and f.filename != __file__
            ]
            where = frames[-1] if frames else None
            self.first[fullname] = f"{where.filename}:{where.lineno}" if where else "?"
        return None


def _only_domain(config: pytest.Config) -> bool:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: see the module docstring
        return False
    base = config.invocation_params.dir
    paths = [(base / arg.split("::", 1)[0]).resolve() for arg in config.args]
    return bool(paths) and all(p == DOMAIN_TESTS or DOMAIN_TESTS in p.parents for p in paths)


_state: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    if _only_domain(config):
        watch = _Watch()
        sys.meta_path.insert(0, watch)
        _state["watch"] = watch
        _state["before"] = {m for m in sys.modules if forbidden(m)}


def pytest_sessionfinish(session: pytest.Session) -> None:
    watch = _state.get("watch")
    if watch is None:
        return
    sys.meta_path.remove(watch)
    loaded = sorted(m for m in sys.modules if forbidden(m))
    if loaded:
        roots = sorted({_root(m) for m in loaded})
        lines = [
            f"{r} (first imported from {watch.first.get(r, 'before the tests were collected')})"
            for r in roots
        ]
        _state["offenders"] = lines
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    offenders = _state.get("offenders")
    if offenders:
        terminalreporter.write_sep("!", "tests/domain IS NOT PURE", red=True, bold=True)
        terminalreporter.write_line(
            "Running only tests/domain imported modules it must not need "
            "(SDK, server, HTTP, database, or dwsched above domain):",
            red=True,
        )
        for line in offenders:
            terminalreporter.write_line(f"  {line}", red=True)
