"""What a newcomer gets wrong about `--endpoint` and the key, said in one line each: a server
that is not dwsched, a bare port, nothing listening, a wrong secret (issue 16)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from dwsched.client import Client, base_url
from dwsched.domain.errors import DwschedError
from tests.cli.helpers import clean_error, invoke, ok
from tests.support.factories import project
from tests.support.server import LiveServer, free_port, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('endpoint') / 'dwsched.db'}"
    with running_server(url) as live:
        yield live


class _Page(http.server.BaseHTTPRequestHandler):
    """A web server that is not dwsched: an HTML page for GET, a 404 page for POST."""

    def _answer(self, status: int) -> None:
        body = b"<!doctype html><html><body><h1>It works!</h1></body></html>"
        self.send_response(status)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(200)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self._answer(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web_page() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _keys(server: LiveServer, secret: str | None = None) -> dict[str, str | None]:
    return {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": server.key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret or server.secret,
    }


def test_an_endpoint_that_is_not_dwsched_is_named(server: LiveServer, web_page: str) -> None:
    for args in (
        ("instances", "get", "1"),  # a GET: an HTML page, 200
        ("instances", "rerun", "1"),  # a POST: a 404 page
    ):
        result = clean_error(
            invoke(*args, "--endpoint", web_page, env=_keys(server)),
            f"http://{web_page} is not a dwsched server",
            "--endpoint",
        )
        assert "JSONDecodeError" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_bare_port_is_this_machines(server: LiveServer) -> None:
    p = project(server.store)
    port = server.endpoint.rsplit(":", 1)[1]
    for endpoint in (port, f":{port}"):
        ok(
            invoke(
                "instances",
                "list",
                "--endpoint",
                endpoint,
                "--project",
                str(p.id),
                "--biz-date",
                "today",
                env=_keys(server),
            )
        )
    assert base_url("8765") == "http://127.0.0.1:8765"
    assert base_url("localhost:8765") == "http://localhost:8765"
    assert base_url("https://dw.example.com/") == "https://dw.example.com/"


@pytest.mark.parametrize("endpoint", ["x:abc", "x:99999", "ftp://x", "http://", "::1"])
def test_an_endpoint_that_is_no_address_is_a_clean_error(endpoint: str) -> None:
    with pytest.raises(DwschedError) as caught:
        Client(endpoint, "id", "secret")
    assert "is not an address" in caught.value.message
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}
    clean_error(invoke("instances", "get", "1", "--endpoint", endpoint, env=env), "--endpoint")


def test_nothing_listening_is_a_refused_connection(server: LiveServer) -> None:
    port = free_port()
    result = clean_error(
        invoke("instances", "get", "1", "--endpoint", str(port), env=_keys(server)),
        f"cannot reach http://127.0.0.1:{port}: connection refused",
        "DWSCHED_ENDPOINT",
    )
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_wrong_secret_says_what_to_check(server: LiveServer) -> None:
    result = clean_error(
        invoke(
            "instances",
            "get",
            "1",
            "--endpoint",
            server.endpoint,
            env=_keys(server, secret="not-the-secret"),
        ),
        "SignatureDoesNotMatch",
        "check the AccessKeySecret and this machine's clock",
    )
    assert "not-the-secret" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_an_unknown_key_says_what_to_check(server: LiveServer) -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAInosuchkey", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "x"}
    clean_error(
        invoke("instances", "get", "1", "--endpoint", server.endpoint, env=env),
        "InvalidAccessKeyId.NotFound",
        "check the AccessKeyId",
    )
