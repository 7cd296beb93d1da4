"""The worked signing examples of reference/dataworks-api.md §5, verified against the SDK."""

from __future__ import annotations

from urllib.parse import urlencode

from dwsched import signing

KEY_ID = "AKIDEXAMPLE"
SECRET = "SECRETEXAMPLE"
DATE = "2024-06-01T00:00:00Z"
NONCE = "3156853299f313e23d1673dc12e1703d"
USER_AGENT = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"
HOST = "127.0.0.1:18765"
# ListWorkflowInstances(ProjectId=123, BizDate=1743350400000, Ids=[1,2], Tags=["a:b"]), as
# the SDK form-encodes it.
PARAMS = {"BizDate": "1743350400000", "Ids": "[1,2]", "ProjectId": "123", "Tags": '["a:b"]'}
BODY = b"BizDate=1743350400000&Ids=%5B1%2C2%5D&ProjectId=123&Tags=%5B%22a%3Ab%22%5D"
BODY_SHA256 = "1e0d086052d77ae861de9ceefa8619b95752f258cefe99515b86c8afde1aa22f"


def _acs3_headers(action: str, payload_hash: str, content_type: str | None) -> dict[str, str]:
    headers = {
        "accept": "application/json",
        "host": HOST,
        "user-agent": USER_AGENT,
        "x-acs-action": action,
        "x-acs-content-sha256": payload_hash,
        "x-acs-credentials-provider": "static_ak",
        "x-acs-date": DATE,
        "x-acs-signature-nonce": NONCE,
        "x-acs-version": "2024-05-18",
    }
    if content_type:
        headers["content-type"] = content_type
    return headers


def test_the_form_body_and_its_hash() -> None:
    assert urlencode(PARAMS).encode() == BODY
    assert signing.body_sha256(BODY) == BODY_SHA256
    assert signing.EMPTY_SHA256 == signing.body_sha256(b"")
    assert signing.EMPTY_SHA256.startswith("e3b0c442")


def test_acs3_post_example() -> None:
    headers = _acs3_headers(
        "ListWorkflowInstances", BODY_SHA256, "application/x-www-form-urlencoded"
    )
    signed = sorted(headers)
    assert ";".join(signed) == (
        "accept;content-type;host;user-agent;x-acs-action;x-acs-content-sha256;"
        "x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version"
    )
    string_to_sign = signing.acs3_string_to_sign("POST", "/", {}, headers, signed, BODY_SHA256)
    assert string_to_sign == (
        "ACS3-HMAC-SHA256\ne2bcbbbaaab82d1326e579f246da0106bf7327fdac90fced5585168e444dd202"
    )
    signature = signing.acs3_signature(string_to_sign, SECRET)
    assert signature == "c672e502f7ada6a77781d129fb4ebe00a2f9b09a0c87855424a009685015a733"
    assert signing.acs3_authorization(KEY_ID, signed, signature) == (
        f"ACS3-HMAC-SHA256 Credential={KEY_ID},SignedHeaders={';'.join(signed)},"
        f"Signature={signature}"
    )


def test_acs3_get_example() -> None:
    headers = _acs3_headers("GetWorkflowInstance", signing.EMPTY_SHA256, None)
    signed = sorted(headers)
    assert ";".join(signed) == (
        "accept;host;user-agent;x-acs-action;x-acs-content-sha256;"
        "x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version"
    )
    string_to_sign = signing.acs3_string_to_sign(
        "GET", "/", {"Id": "42"}, headers, signed, signing.EMPTY_SHA256
    )
    assert signing.acs3_signature(string_to_sign, SECRET) == (
        "1cb797e57ed63f293fd1bdd84071480053b5662fce555c6453c4c4002f7c93ff"
    )


def test_acs3_headers_are_trimmed_and_the_method_upper_cased() -> None:
    headers = _acs3_headers("GetWorkflowInstance", signing.EMPTY_SHA256, None)
    signed = sorted(headers)
    padded = {k: f"  {v} " for k, v in headers.items()}
    reference = signing.acs3_string_to_sign(
        "GET", "/", {"Id": "42"}, headers, signed, signing.EMPTY_SHA256
    )
    assert (
        signing.acs3_string_to_sign("get", "", {"Id": "42"}, padded, signed, signing.EMPTY_SHA256)
        == reference
    )


def test_the_canonical_query_is_rfc3986_of_the_decoded_values() -> None:
    # The URL carries Name=a+b%2Bc%2A~%2F%C3%A9%27%21%28%29; the server decodes it and
    # re-encodes it with RFC 3986 rules (space as %20, `~` kept).
    assert signing.canonical_query({"Name": "a b+c*~/é'!()"}) == (
        "Name=a%20b%2Bc%2A~%2F%C3%A9%27%21%28%29"
    )
    assert signing.canonical_query({"b": "2", "a": "1", "B": "3"}) == "B=3&a=1&b=2"
    assert signing.canonical_query({}) == ""


def test_v1_rpc_example() -> None:
    query = {
        "Action": "ListWorkflowInstances",
        "Format": "json",
        "Version": "2024-05-18",
        "Timestamp": DATE,
        "SignatureNonce": NONCE,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "AccessKeyId": KEY_ID,
    }
    string_to_sign = signing.rpc_string_to_sign("POST", {**query, **PARAMS})
    assert string_to_sign == (
        "POST&%2F&AccessKeyId%3DAKIDEXAMPLE%26Action%3DListWorkflowInstances%26BizDate%3D"
        "1743350400000%26Format%3Djson%26Ids%3D%255B1%252C2%255D%26ProjectId%3D123%26"
        "SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3156853299f313e23d1673dc12e1703d%26"
        "SignatureVersion%3D1.0%26Tags%3D%255B%2522a%253Ab%2522%255D%26Timestamp%3D"
        "2024-06-01T00%253A00%253A00Z%26Version%3D2024-05-18"
    )
    assert signing.rpc_signature(string_to_sign, SECRET) == "MUuNnSb79Y+kOhrZtddwF5gk0Lg="
    # The Signature parameter itself is never part of what is signed.
    with_signature = {**query, **PARAMS, "Signature": "MUuNnSb79Y+kOhrZtddwF5gk0Lg="}
    assert signing.rpc_string_to_sign("POST", with_signature) == string_to_sign


def test_signatures_compare_exactly() -> None:
    assert signing.same("abc", "abc")
    assert not signing.same("abc", "abd")
    assert not signing.same("abc", "ABC")
    assert not signing.same("abc", "abc ")
