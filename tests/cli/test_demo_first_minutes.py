"""A newcomer's first ten minutes (issue 16), against one `dwsched demo` process: what it
prints works as printed (the SDK snippet, the README's example), its terminal shows tasks
run, fail and retry, and git ignores every file the demo writes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dwsched.cli import banner
from tests.cli.helpers import ROOT, Process, dwsched_process
from tests.cli.test_feed import LINE
from tests.support.server import free_port


@dataclass
class Demo:
    process: Process
    directory: Path
    port: int

    @property
    def banner(self) -> str:
        return self.process.stdout

    def field(self, name: str) -> str:
        m = re.search(rf"^\s*{name}\s+(\S+)\s*$", self.banner, re.MULTILINE)
        assert m, f"{name} not in\n{self.banner}"
        return m.group(1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    directory = tmp_path_factory.mktemp("first-minutes")
    port = free_port()
    db = f"sqlite:///{directory / 'dwsched-demo.db'}"
    with dwsched_process("demo", "--db", db, "--port", str(port)) as process:
        process.wait_for(lambda: "Ctrl-C" in process.stdout, "the demo banner")
        process.wait_listening(port)
        yield Demo(process, directory, port)
        code = process.interrupt()
    assert code == 0, process.stderr
    assert "Traceback" not in process.stdout + process.stderr, process.stderr


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, cwd=os.getcwd()
    )


def test_the_printed_sdk_snippet_runs_as_printed(demo: Demo) -> None:
    m = re.search(r"^(\S+ - <<'EOF'\n.*?\nEOF)$", demo.banner, re.MULTILINE | re.DOTALL)
    assert m, demo.banner
    assert "installed; paste this into a shell" in demo.banner
    done = _run("bash", "-c", m.group(1))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 5, done.stdout  # page_size=5 of today's runs
    assert all(re.fullmatch(r"\d+ \w+ \w+", line) for line in lines), done.stdout


def test_the_readme_sdk_example_runs_as_written(demo: Demo) -> None:
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"## Using the official SDK\n.*?```python\n(.*?)```", readme, re.DOTALL)
    assert m, "no python block under 'Using the official SDK'"
    code = m.group(1)
    # Only the placeholders change: the key, the secret, and the demo's port.
    for placeholder, value in (
        ('access_key_id="LTAI..."', f'access_key_id="{demo.field("AccessKeyId")}"'),
        ('access_key_secret="..."', f'access_key_secret="{demo.field("AccessKeySecret")}"'),
        ('endpoint="127.0.0.1:8765"', f'endpoint="127.0.0.1:{demo.port}"'),
    ):
        assert code.count(placeholder) == 1, f"{placeholder} not once in\n{code}"
        code = code.replace(placeholder, value)
    assert "project_id=1," in code  # the demo workspace of a new database
    done = _run(sys.executable, "-c", code)
    assert done.returncode == 0, done.stderr


def test_the_feed_shows_tasks_fail_and_retry(demo: Demo) -> None:
    """flaky_load fails its first attempt and succeeds 15 s later, on its second."""
    task = r"flaky_load/ods_payments_load\s+cycle \d\d:\d\d"
    demo.process.wait_for(
        lambda: (
            re.search(
                rf"^\d\d:\d\d:\d\d  Running\s+{task}  attempt 1  task \d+$", demo.banner, re.M
            )
            is not None
        ),
        "a first attempt in the feed",
        timeout=30,
    )
    demo.process.wait_for(
        lambda: (
            re.search(rf"  Failure, retrying\s+{task}  attempt 1  task \d+$", demo.banner, re.M)
            is not None
        ),
        "a failure and its retry in the feed",
        timeout=30,
    )
    demo.process.wait_for(
        lambda: (
            re.search(rf"  Success\s+{task}  attempt 2  task \d+$", demo.banner, re.M) is not None
        ),
        "the retry's success in the feed",
        timeout=40,
    )
    feed = demo.banner.split("--quiet: none):", 1)[1].strip().splitlines()
    assert all(len(line) <= 110 for line in feed), feed
    assert all(re.fullmatch(LINE, line) or line.lstrip().startswith("...") for line in feed), feed
    # planning (a task made ready, a dry run ending) and workflow statuses are left out
    assert not [line for line in feed if "WaitResource" in line or "WaitTime" in line]


def test_git_ignores_every_file_the_demo_writes(demo: Demo, tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("no git")
    written = sorted(p.name for p in demo.directory.iterdir())
    assert {"dwsched-demo.db", "dwsched-demo.db.key"} <= set(written), written
    # and what rotating its server key writes beside it
    names = [*written, "dwsched-demo.db.key.old", "dwsched-demo.db.key.new"]
    names.append(".dwsched-demo.db.key.123.abcd1234.tmp")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    for name in names:
        (repo / name).write_text("x")
    subprocess.run([git, "init", "-q"], cwd=repo, check=True)
    status = subprocess.run(
        [git, "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout.splitlines() == ["?? .gitignore"], status.stdout


# What the banner says, without a process


def _banner(feed: bool) -> str:
    return banner.Banner(
        1, "Asia/Shanghai", "sqlite:///d.db", "127.0.0.1:1", "u", "p", "K", "S", feed
    ).text()


def test_the_banner_gives_the_pip_command_when_the_sdk_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(banner, "sdk_installed", lambda: False)
    text = _banner(feed=True)
    python = banner.shown_path(sys.executable)
    assert (
        f"install it first: {python} -m pip install alibabacloud-dataworks-public20240518" in text
    )
    assert "Live, one line per task" in text
    assert "Live" not in _banner(feed=False)


def test_scripts_demo_installs_the_sdk() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(d.startswith(banner.SDK_PACKAGE) for d in extras["sdk"])
    assert any(d.startswith("alibabacloud-tea-openapi") for d in extras["sdk"])
    assert "dwsched[sdk]" in extras["test"]
    assert "scripts/bootstrap sdk" in (ROOT / "scripts" / "demo").read_text()
