"""A small signed client for the DataWorks RPC protocol (ACS3-HMAC-SHA256), for the CLI.

Arrays and objects are sent as JSON text, as the official SDK does. Every failure is a
DwschedError of one line: a server that cannot be reached, an answer that is not dwsched's
(an HTML page, a 404 of another server), an https:// endpoint of this plain-HTTP server,
or the server's error envelope (ApiError), with a hint for the errors a newcomer makes (a
wrong AccessKeySecret, a skewed clock).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from dwsched import signing
from dwsched.config import ENDPOINT_ENV
from dwsched.domain.errors import DwschedError

VERSION = "2024-05-18"
LOCALHOST = "127.0.0.1"

# What to check when the server answers these codes: the mistakes of a first call.
HINTS = {
    "SignatureDoesNotMatch": "check the AccessKeySecret and this machine's clock",
    "IncompleteSignature": "check the AccessKeySecret and this machine's clock",
    "InvalidAccessKeyId.NotFound": "check the AccessKeyId (dwsched keys list)",
    "InvalidAccessKeyId.Inactive": "the AccessKey is disabled (dwsched keys enable ID)",
    "InvalidTimeStamp.Expired": "check this machine's clock",
}

# What the server's SignatureDoesNotMatch message adds for a signer to compare its own with:
# noise in a one-line CLI error (the hint says what to check).
_STRING_TO_SIGN = re.compile(r"\s*server StringToSign is \[[^\]]*\]")
# What OpenSSL says when the server answers a TLS ClientHello in plain HTTP.
_PLAIN_HTTP = ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure")


class ApiError(DwschedError):
    """The server's error envelope (`Code`, `Message`, `RequestId`)."""

    def __init__(self, status: int, code: str, message: str, request_id: str) -> None:
        message = _STRING_TO_SIGN.sub("", message).rstrip()
        text = f"{code}: {message} (HTTP {status}, RequestId {request_id})"
        hint = HINTS.get(code)
        super().__init__(f"{text}; {hint}" if hint else text)
        self.status = status
        self.code = code
        self.request_id = request_id


def base_url(endpoint: str) -> str:
    """The URL of `--endpoint`: a URL, `host:port` (http), or a bare port (`8765`,
    `:8765`: this machine's, 127.0.0.1). DwschedError when it is none of these, or has a
    path (`host:port/console/`: the API is at `/`)."""
    text = endpoint.strip()
    if re.fullmatch(r":?[0-9]+", text):
        text = f"{LOCALHOST}:{text.lstrip(':')}"
    url = text if "://" in text else f"http://{text}"
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number, or out of range
        valid = False
    if not valid:
        raise DwschedError(
            f"--endpoint {endpoint!r} is not an address: expected host:port, a URL "
            f"(http://host:port/), or a port of this machine"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        bare = f"{parts.scheme}://{parts.netloc}" if "://" in text else parts.netloc
        raise DwschedError(
            f"--endpoint {endpoint!r} has a path: the endpoint is host:port, without a path "
            f"(--endpoint {bare})"
        )
    return url


class Client:
    def __init__(
        self, endpoint: str, access_key_id: str, access_key_secret: str, timeout: float = 30
    ) -> None:
        base = base_url(endpoint)
        self.url = base
        self.host = urlsplit(base).netloc
        self.access_key_id = access_key_id
        self.secret = access_key_secret
        self.http = httpx.Client(base_url=base, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, action: str, params: dict[str, Any], method: str = "POST") -> dict[str, Any]:
        values = {
            k: json.dumps(v, separators=(",", ":")) if isinstance(v, list | dict) else str(v)
            for k, v in params.items()
            if v is not None
        }
        query = values if method == "GET" else {}
        body = b"" if method == "GET" else urlencode(values).encode()
        headers = {
            "accept": "application/json",
            "host": self.host,
            "x-acs-action": action,
            "x-acs-version": VERSION,
            "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": uuid.uuid4().hex,
            "x-acs-content-sha256": signing.body_sha256(body),
        }
        if body:
            headers["content-type"] = "application/x-www-form-urlencoded"
        signed = sorted(headers)
        string_to_sign = signing.acs3_string_to_sign(
            method, "/", query, headers, signed, headers["x-acs-content-sha256"]
        )
        headers["authorization"] = signing.acs3_authorization(
            self.access_key_id, signed, signing.acs3_signature(string_to_sign, self.secret)
        )
        try:
            response = self.http.request(method, "/", params=query, content=body, headers=headers)
        except httpx.ConnectError as exc:
            if self.url.startswith("https://") and any(t in str(exc) for t in _PLAIN_HTTP):
                plain = "http://" + self.url.removeprefix("https://")
                raise DwschedError(
                    f"cannot reach {self.url}: the TLS handshake failed, the server speaks "
                    f"plain HTTP: use http:// (--endpoint {plain})"
                ) from exc
            raise DwschedError(
                f"cannot reach {self.url}: {_reason(exc)} (is dwsched serving there? "
                f"--endpoint or {ENDPOINT_ENV} names the server)"
            ) from exc
        except httpx.HTTPError as exc:
            raise DwschedError(f"cannot reach {self.url}: {_reason(exc)}") from exc
        data = _envelope(response)
        if data is None:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise DwschedError(
                f"{self.url} is not a dwsched server: it answered HTTP {response.status_code} "
                f"({kind}) without a DataWorks RequestId (check --endpoint or {ENDPOINT_ENV})"
            )
        if response.status_code >= 400:
            raise ApiError(
                response.status_code,
                str(data.get("Code")),
                str(data.get("Message")),
                str(data.get("RequestId")),
            )
        return data


def _envelope(response: httpx.Response) -> dict[str, Any] | None:
    """The answer's JSON object if it is a DataWorks one (every answer, success or error,
    carries a RequestId); None for anything else."""
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict) or "RequestId" not in data:
        return None
    return data


def _reason(exc: httpx.HTTPError) -> str:
    """The cause of a transport error in a few words (httpx's text, else its kind)."""
    text = str(exc).strip()
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({text or type(exc).__name__})"
    if "Connection refused" in text:
        return "connection refused"
    return text or type(exc).__name__
