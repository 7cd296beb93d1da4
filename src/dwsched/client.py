"""A small signed client for the DataWorks RPC protocol (ACS3-HMAC-SHA256), for the CLI.

Arrays and objects are sent as JSON text, as the official SDK does.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from dwsched import signing
from dwsched.domain.errors import DwschedError

VERSION = "2024-05-18"


class ApiError(DwschedError):
    def __init__(self, status: int, code: str, message: str, request_id: str) -> None:
        super().__init__(f"{code}: {message} (HTTP {status}, RequestId {request_id})")
        self.status = status
        self.code = code
        self.request_id = request_id


class Client:
    def __init__(
        self, endpoint: str, access_key_id: str, access_key_secret: str, timeout: float = 30
    ) -> None:
        base = endpoint if "://" in endpoint else f"http://{endpoint}"
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
        except httpx.HTTPError as exc:
            raise DwschedError(f"cannot reach {self.host}: {exc}") from exc
        data: dict[str, Any] = response.json()
        if response.status_code >= 400:
            raise ApiError(
                response.status_code,
                str(data.get("Code")),
                str(data.get("Message")),
                str(data.get("RequestId")),
            )
        return data
