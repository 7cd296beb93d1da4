"""`dwsched users passwd`: the console password, stored as an Argon2id hash; bad input
refused with one `Error:` line and nothing changed; the new password signs in and the old
one no longer does."""

from __future__ import annotations

from pathlib import Path

import httpx
from click.testing import Result

from dwsched.store import Store
from tests.cli.helpers import clean_error, invoke, ok
from tests.support.server import running_server


def run(db: str, *args: str, input: str | None = None) -> Result:
    return invoke(*args, "--db", db, input=input)


def refused(result: Result, *needles: str) -> None:
    clean_error(result, *needles)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("Error: ")


def test_passwd_sets_a_hashed_password_that_signs_in(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    ok(run(db, "users", "create", "lee"))
    refused(run(db, "users", "passwd", "lee", "--password-stdin", input="short\n"), "8 to 1024")
    refused(run(db, "users", "passwd", "nobody", "--password-stdin", input="long enough pw\n"))
    with Store.open(db) as store, store.read() as tx:
        assert tx.users.password_of("lee") is None  # nothing was set
    ok(run(db, "users", "passwd", "lee", "--password-stdin", input="first password\n"))
    # Interactive: asked twice; a mismatch is asked again.
    prompted = run(
        db,
        "users",
        "passwd",
        "lee",
        input="second password\nsecond passwor\nsecond password\nsecond password\n",
    )
    ok(prompted)
    assert "second password" not in prompted.output  # hidden input
    with Store.open(db) as store:
        with store.read() as tx:
            found = tx.users.password_of("lee")
        assert found is not None and found[1].startswith("$argon2id$")
        assert "second password" not in found[1]
    with running_server(db) as live:
        http = httpx.Client(base_url=f"http://{live.endpoint}", timeout=30)
        try:
            old = http.post(
                "/console/api/signin", json={"UserName": "lee", "Password": "first password"}
            )
            assert old.status_code == 401
            new = http.post(
                "/console/api/signin", json={"UserName": "lee", "Password": "second password"}
            )
            assert new.status_code == 200
        finally:
            http.close()


def test_signout_ends_every_console_session_of_the_user(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    for name in ("lee", "kim"):
        ok(run(db, "users", "create", name))
        ok(run(db, "users", "passwd", name, "--password-stdin", input="a long password\n"))
        ok(run(db, "policies", "attach", "ReadOnlyAccess", "--user", name))
    with running_server(db) as live:
        clients = {
            key: httpx.Client(base_url=f"http://{live.endpoint}", timeout=30)
            for key in ("lee laptop", "lee phone", "kim")
        }
        try:
            for key, http in clients.items():
                body = {"UserName": key.split()[0], "Password": "a long password"}
                assert http.post("/console/api/signin", json=body).status_code == 200
                assert http.get("/console/api/session").status_code == 200
            done = ok(run(db, "users", "signout", "lee"))
            assert done.stdout.strip() == "ended 2 console session(s) of lee"
            assert clients["lee laptop"].get("/console/api/session").status_code == 401
            assert clients["lee phone"].get("/console/api/session").status_code == 401
            assert clients["kim"].get("/console/api/session").status_code == 200
            again = ok(run(db, "users", "signout", "lee"))
            assert again.stdout.strip() == "ended 0 console session(s) of lee"
            refused(run(db, "users", "signout", "nobody"), "nobody")
            assert clients["kim"].get("/console/api/session").status_code == 200
        finally:
            for http in clients.values():
                http.close()
