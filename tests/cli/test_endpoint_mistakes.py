"""More of a newcomer's `--endpoint` mistakes, each said in one line: the console's address
(a path) given as the endpoint, https:// to the plain-HTTP server; and a wrong secret's
error without the server's StringToSign."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dwsched.client import base_url
from dwsched.domain.errors import DwschedError
from tests.cli.helpers import clean_error, invoke
from tests.support.server import LiveServer, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('mistakes') / 'dwsched.db'}"
    with running_server(url) as live:
        yield live


def _env(server: LiveServer, secret: str | None = None) -> dict[str, str | None]:
    return {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": server.key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret or server.secret,
    }


def _host_port(server: LiveServer) -> str:
    return server.endpoint.removeprefix("http://").rstrip("/")


@pytest.mark.parametrize("path", ["/console/", "/console", "/?Action=x", "/api"])
def test_an_endpoint_with_a_path_is_refused_before_any_request(
    server: LiveServer, path: str
) -> None:
    where = _host_port(server)
    result = clean_error(
        invoke("instances", "get", "1", "--endpoint", where + path, env=_env(server)),
        "the endpoint is host:port, without a path",
        f"(--endpoint {where})",
    )
    assert "is not a dwsched server" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_url_keeps_its_scheme_in_the_suggestion() -> None:
    with pytest.raises(DwschedError, match=r"\(--endpoint https://dw.example.com:8443\)$"):
        base_url("https://dw.example.com:8443/console/")
    assert base_url("http://127.0.0.1:8765/") == "http://127.0.0.1:8765/"


def test_https_to_the_plain_http_server_says_use_http(server: LiveServer) -> None:
    where = _host_port(server)
    result = clean_error(
        invoke("instances", "get", "1", "--endpoint", f"https://{where}", env=_env(server)),
        "the server speaks plain HTTP: use http://",
        f"(--endpoint http://{where})",
    )
    assert "WRONG_VERSION_NUMBER" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_wrong_secret_leaves_out_the_servers_string_to_sign(server: LiveServer) -> None:
    result = clean_error(
        invoke(
            "instances",
            "get",
            "1",
            "--endpoint",
            server.endpoint,
            env=_env(server, secret="not-the-secret"),
        ),
        "SignatureDoesNotMatch: Specified signature does not match our calculation. (HTTP",
        "check the AccessKeySecret and this machine's clock",
    )
    assert "StringToSign" not in result.output and "ACS3-HMAC-SHA256" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
