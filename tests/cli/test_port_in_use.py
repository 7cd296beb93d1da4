"""`serve` and `demo` on a port that is taken: one line naming `--port`, said before a
database, a key file, a password or a key is made (issue 16)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import clean_error, invoke


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another server listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_a_taken_port_stops_before_anything_is_made(
    command: str, taken: int, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'dwsched-demo.db'}"
    result = clean_error(
        invoke(command, "--db", db, "--port", str(taken)),
        f"127.0.0.1:{taken} is already in use",
    )
    assert re.search(r"with --port (\d+|N)$", result.output.strip()), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "password" not in result.output and "AccessKey" not in result.output
    assert list(tmp_path.iterdir()) == [], "made before the port was checked"


def test_an_address_that_cannot_be_listened_on_is_a_clean_error(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    clean_error(invoke("serve", "--db", db, "--host", "192.0.2.1"), "cannot listen on 192.0.2.1")
    assert list(tmp_path.iterdir()) == []
