"""The second floor: the minimal app plus only what every signed request must cost.

A bare ASGI app (no framework) that verifies the request's ACS3 signature with dwsched's
own signing functions and records its nonce in a SQLite file shared by every process (one
INSERT in WAL mode, the cheapest shared memory of nonces there is), then returns the same
fixed 2 KB JSON as `minimal_app`. No key lookup, no parameters, no listing: what dwsched can
never go below while it authenticates every request as issue 2 asks.

Settings from the environment: AUTH_FLOOR_DB (a SQLite file), AUTH_FLOOR_KEY_ID,
AUTH_FLOOR_SECRET.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from dwsched import signing
from minimal_app import BODY, HEADERS

_db = sqlite3.connect(os.environ["AUTH_FLOOR_DB"], isolation_level=None, check_same_thread=False)
_db.execute("PRAGMA journal_mode=WAL")
_db.execute("PRAGMA synchronous=NORMAL")
_db.execute(
    "CREATE TABLE IF NOT EXISTS nonces (key TEXT, nonce TEXT, expires INTEGER, "
    "PRIMARY KEY (key, nonce))"
)
_KEY_ID = os.environ["AUTH_FLOOR_KEY_ID"]
_SECRET = os.environ["AUTH_FLOOR_SECRET"]


async def _reply(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/healthz":
        await _reply(send, 200, b"{}", [])
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    fields = dict(
        part.strip().partition("=")[::2]
        for part in headers["authorization"].partition(" ")[2].split(",")
    )
    names = fields["SignedHeaders"].split(";")
    payload = headers["x-acs-content-sha256"]
    sts = signing.acs3_string_to_sign(scope["method"], scope["path"], {}, headers, names, payload)
    good = (
        fields["Credential"] == _KEY_ID
        and payload == signing.body_sha256(body)
        and signing.same(signing.acs3_signature(sts, _SECRET), fields["Signature"])
    )
    if not good:
        await _reply(send, 400, b'{"Code":"SignatureDoesNotMatch"}', [])
        return
    try:
        _db.execute(
            "INSERT INTO nonces VALUES (?, ?, 0)", (_KEY_ID, headers["x-acs-signature-nonce"])
        )
    except sqlite3.IntegrityError:
        await _reply(send, 400, b'{"Code":"SignatureNonceUsed"}', [])
        return
    await _reply(send, 200, BODY, HEADERS)
