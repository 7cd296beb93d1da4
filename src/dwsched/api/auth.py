"""Authentication of signed requests: ACS3-HMAC-SHA256 and the v1 HMAC-SHA1 RPC signature.

Order of checks: the form of the signature, the key, the body hash, the signature, then the
time window and the nonce (a nonce is recorded only for a correctly signed request, so a
forger cannot burn nonces).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from dwsched import signing
from dwsched.domain.errors import (
    AccessKeyInactive,
    AccessKeyNotFound,
    IncompleteSignature,
    NonceUsed,
    SignatureMismatch,
    TimestampExpired,
    TimestampInvalid,
)
from dwsched.domain.models import AccessKey, KeyStatus
from dwsched.store import KeySession, Store

WINDOW_MS = 15 * 60 * 1000
KEY_ID = re.compile(r"[\x21-\x7e]{1,64}")
NONCE = re.compile(r"[\x21-\x7e]{1,128}")
_V1_PARAMS = ("AccessKeyId", "Signature", "SignatureMethod", "Timestamp", "SignatureNonce")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    form: Mapping[str, str]


def signed_by_headers(headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """True for ACS3 (an Authorization header), False for the v1 signature (a Signature
    parameter); IncompleteSignature for an unsigned request."""
    if headers.get("authorization"):
        return True
    if "Signature" in query:
        return False
    raise IncompleteSignature(
        "The request is not signed: send an ACS3-HMAC-SHA256 Authorization header or the "
        "v1 RPC signature parameters (AccessKeyId, Signature, Timestamp, SignatureNonce)."
    )


def authenticate(store: Store, request: SignedRequest, now_ms: int, wait: bool = True) -> str:
    """The AccessKeyId that signed the request, or an AuthenticationError. `wait` false:
    StoreBusy rather than queueing behind another SQLite writer to record the nonce."""
    if signed_by_headers(request.headers, request.query):
        return _acs3(store, request, request.headers["authorization"], now_ms, wait)
    return _rpc(store, request, now_ms, wait)


def _acs3(store: Store, request: SignedRequest, authorization: str, now_ms: int, wait: bool) -> str:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != signing.ACS3:
        raise IncompleteSignature(
            f"The signature algorithm {algorithm!r} is not supported; use {signing.ACS3}."
        )
    parts = dict(item.strip().partition("=")[::2] for item in rest.split(",") if item.strip())
    credential, names, signature = (
        parts.get("Credential"),
        parts.get("SignedHeaders"),
        parts.get("Signature"),
    )
    if not credential or not names or not signature:
        raise IncompleteSignature(
            "The Authorization header must carry Credential, SignedHeaders and Signature."
        )
    signed = [h.strip().lower() for h in names.split(";")]
    for needed in (
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ):
        if needed not in signed or needed not in request.headers:
            raise IncompleteSignature(f"The header {needed} must be sent and signed.")
    if request.form and "content-type" not in signed:
        raise IncompleteSignature("The header content-type must be signed when a body is sent.")
    payload_hash = request.headers["x-acs-content-sha256"]
    if not KEY_ID.fullmatch(credential):
        raise AccessKeyNotFound(credential[:64])
    with store.key_session(credential, wait) as session:
        key = _enabled(session.key, credential)
        if payload_hash != signing.body_sha256(request.body):
            raise SignatureMismatch(
                "The header x-acs-content-sha256 does not match the request body."
            )
        string_to_sign = signing.acs3_string_to_sign(
            request.method, request.path, request.query, request.headers, signed, payload_hash
        )
        if not signing.same(signing.acs3_signature(string_to_sign, key.secret), signature):
            raise SignatureMismatch(
                "Specified signature does not match our calculation. "
                f"server StringToSign is [{string_to_sign.replace(chr(10), ' ')}]"
            )
        _check_time_and_nonce(
            session,
            request.headers["x-acs-date"],
            request.headers["x-acs-signature-nonce"],
            now_ms,
        )
    return key.id


def _rpc(store: Store, request: SignedRequest, now_ms: int, wait: bool) -> str:
    params = {**request.form, **request.query}
    for name in _V1_PARAMS:
        if not params.get(name):
            raise IncompleteSignature(f"The v1 signature parameter {name} is missing.")
    if params["SignatureMethod"] != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
        raise IncompleteSignature(
            "The v1 signature must be SignatureMethod=HMAC-SHA1, SignatureVersion=1.0."
        )
    access_key_id = params["AccessKeyId"]
    if not KEY_ID.fullmatch(access_key_id):
        raise AccessKeyNotFound(access_key_id[:64])
    with store.key_session(access_key_id, wait) as session:
        key = _enabled(session.key, access_key_id)
        string_to_sign = signing.rpc_string_to_sign(request.method, params)
        if not signing.same(signing.rpc_signature(string_to_sign, key.secret), params["Signature"]):
            raise SignatureMismatch(
                "Specified signature is not matched with our calculation. "
                f"server string to sign is {string_to_sign}"
            )
        _check_time_and_nonce(session, params["Timestamp"], params["SignatureNonce"], now_ms)
    return key.id


def _enabled(key: AccessKey | None, access_key_id: str) -> AccessKey:
    if key is None:
        raise AccessKeyNotFound(access_key_id)
    if key.status is not KeyStatus.ENABLED:
        raise AccessKeyInactive(f"The AccessKeyId {access_key_id} is disabled.")
    return key


def _check_time_and_nonce(session: KeySession, timestamp: str, nonce: str, now_ms: int) -> None:
    try:
        if len(timestamp) != 20 or timestamp[10] != "T" or timestamp[19] != "Z":
            raise ValueError(timestamp)
        at = datetime.fromisoformat(timestamp[:19]).replace(tzinfo=UTC)
    except ValueError as exc:
        raise TimestampInvalid(
            f"The timestamp {timestamp!r} is not in the format yyyy-MM-ddTHH:mm:ssZ (UTC)."
        ) from exc
    at_ms = int(at.timestamp() * 1000)
    if abs(now_ms - at_ms) > WINDOW_MS:
        raise TimestampExpired(
            f"The timestamp {timestamp} is more than 15 minutes away from the server time."
        )
    if not NONCE.fullmatch(nonce):
        raise IncompleteSignature(
            "The signature nonce must be 1 to 128 printable ASCII characters."
        )
    if not session.remember_nonce(nonce, at_ms + WINDOW_MS, now_ms):
        raise NonceUsed(f"The signature nonce {nonce} has been used already.")
