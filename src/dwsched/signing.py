"""Alibaba Cloud request signatures, shared by the server (verify) and the client (sign).

Two schemes (reference/dataworks-api.md §5):
- ACS3-HMAC-SHA256: a canonical request over the method, path, query, the headers the
  client names in `SignedHeaders`, and the body's SHA-256.
- v1 RPC (HMAC-SHA1): a string to sign over every query and form parameter.
Pure functions, standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

ACS3 = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the SDK does it: everything but unreserved characters."""
    return quote(value, safe="~")


def canonical_query(query: Mapping[str, str]) -> str:
    return "&".join(f"{k}={percent_encode(query[k])}" for k in sorted(query))


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def acs3_string_to_sign(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload_hash: str,
) -> str:
    """`headers` keyed by lower-case name; `signed_headers` lower-case, in the client's order."""
    canonical_headers = "".join(f"{h}:{headers.get(h, '').strip()}\n" for h in signed_headers)
    canonical_request = "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(query),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash,
        ]
    )
    return f"{ACS3}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def acs3_signature(string_to_sign: str, secret: str) -> str:
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def acs3_authorization(access_key_id: str, signed_headers: list[str], signature: str) -> str:
    return (
        f"{ACS3} Credential={access_key_id},SignedHeaders={';'.join(signed_headers)},"
        f"Signature={signature}"
    )


def rpc_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """v1: every parameter but `Signature`, sorted, encoded twice as the SDK does."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(params[k])}"
        for k in sorted(params)
        if k != "Signature"
    )
    return f"{method.upper()}&%2F&{percent_encode(canonical)}"


def rpc_signature(string_to_sign: str, secret: str) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two signatures."""
    return hmac.compare_digest(a.encode(), b.encode())
