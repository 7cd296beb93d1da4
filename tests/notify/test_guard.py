"""The outbound guard holds for every webhook request: scheme, credentials, the addresses
a name resolves to, redirects, time and size. Refusals make no connection and name the
rule that refused."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Sequence

import pytest

from dwsched.domain.notices import ChannelKind, Notice, Target
from dwsched.engine.notify import (
    DEFAULT_DENY,
    NotifySettings,
    OutboundPolicy,
    parse_ranges,
    send,
)
from tests.notify.receivers import HttpReceiver

SETTINGS = NotifySettings(connect_timeout_s=1, total_timeout_s=1.5)


class FakeDns:
    """A resolver answering from a table, counting its lookups."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int, seconds: float) -> Sequence[str]:
        self.lookups.append(host)
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


def webhook(url: str) -> Target:
    return Target(ChannelKind.WEBHOOK, url)


def settings(deny: str = "default", allow: str = "", dns: FakeDns | None = None) -> NotifySettings:
    policy = OutboundPolicy(parse_ranges(deny, "operator deny"), parse_ranges(allow, "operator"))
    if dns is None:
        return NotifySettings(guard=policy, connect_timeout_s=1, total_timeout_s=1.5)
    return NotifySettings(guard=policy, connect_timeout_s=1, total_timeout_s=1.5, resolve=dns)


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("169.254.169.254", "169.254.169.254/32 (cloud metadata service)"),
        ("100.100.100.200", "100.100.100.200/32 (Alibaba Cloud metadata service)"),
        ("fd00:ec2::254", "fd00:ec2::254/128 (cloud metadata service)"),
        ("169.254.10.1", "169.254.0.0/16 (link-local)"),
        ("fe80::1", "fe80::/10 (link-local)"),
        ("::ffff:169.254.169.254", "169.254.169.254/32 (cloud metadata service)"),
        ("2002:a9fe:a9fe::1", "169.254.169.254/32 (cloud metadata service)"),
        ("0.0.0.0", "0.0.0.0/8 (this host (unspecified))"),
    ],
)
def test_metadata_and_link_local_are_refused_by_default_naming_the_range(
    notice: Notice, address: str, rule: str
):
    dns = FakeDns([address])
    outcome = send(notice, webhook("http://hooks.example.test/x"), settings(dns=dns))
    assert not outcome.delivered and not outcome.retryable
    assert outcome.detail.startswith("refused by the outbound guard: ")
    assert outcome.detail.endswith(f" is in the denied range {rule}")


def test_a_name_with_one_denied_address_among_good_ones_is_refused_without_connecting(
    receiver: HttpReceiver, notice: Notice
):
    dns = FakeDns(["127.0.0.1", "169.254.169.254"])
    url = receiver.url(host="hooks.example.test")

    outcome = send(notice, webhook(url), settings(dns=dns))

    assert not outcome.delivered and "169.254.169.254" in outcome.detail
    assert receiver.connections == 0


def test_loopback_is_allowed_by_default(receiver: HttpReceiver, notice: Notice):
    assert send(notice, webhook(receiver.url()), SETTINGS).delivered
    assert receiver.connections == 1


def test_loopback_is_refused_when_the_operator_denies_it(
    alias_receiver: HttpReceiver, notice: Notice
):
    outcome = send(notice, webhook(alias_receiver.url()), settings(deny="default loopback"))

    assert not outcome.delivered and not outcome.retryable
    assert "127.0.0.2 is in the denied range 127.0.0.0/8 (loopback)" in outcome.detail
    assert alias_receiver.connections == 0


def test_an_operator_range_is_named_in_the_refusal(alias_receiver: HttpReceiver, notice: Notice):
    outcome = send(notice, webhook(alias_receiver.url()), settings(deny="default, 127.0.0.2/32"))
    assert "127.0.0.2/32 (operator deny)" in outcome.detail
    assert alias_receiver.connections == 0


def test_a_host_name_resolving_to_a_denied_address_is_refused(
    receiver: HttpReceiver, notice: Notice
):
    outcome = send(
        notice, webhook(receiver.url(host="localhost")), settings(deny="default loopback")
    )
    assert not outcome.delivered and "(loopback)" in outcome.detail
    assert receiver.connections == 0


def test_an_allow_list_refuses_everything_outside_it(receiver: HttpReceiver, notice: Notice):
    outcome = send(notice, webhook(receiver.url()), settings(allow="10.0.0.0/8"))
    assert "127.0.0.1 is in no allowed range (10.0.0.0/8 (operator))" in outcome.detail
    assert receiver.connections == 0


def test_deny_wins_over_a_broad_allow(notice: Notice):
    dns = FakeDns(["169.254.169.254"])
    target = webhook("http://hooks.example.test/x")
    outcome = send(notice, target, settings(allow="0.0.0.0/0", dns=dns))
    assert "cloud metadata service" in outcome.detail


def test_the_connection_goes_to_the_checked_address_not_a_second_answer(
    receiver: HttpReceiver, notice: Notice
):
    """DNS rebinding: the first answer is checked, a later one would be the metadata service;
    the name is resolved once and the request goes to the checked address, with the URL's
    host name in the Host header."""
    dns = FakeDns(["127.0.0.1"], ["169.254.169.254"])
    url = receiver.url(host="hooks.example.test")

    outcome = send(notice, webhook(url), settings(dns=dns))

    assert outcome.delivered, outcome.detail
    assert dns.lookups == ["hooks.example.test"]
    assert receiver.requests[0].headers["Host"] == f"hooks.example.test:{receiver.port}"


def test_a_redirect_to_another_host_is_not_followed(
    receiver: HttpReceiver, alias_receiver: HttpReceiver, notice: Notice
):
    url = receiver.url(f"/redirect?to={alias_receiver.url()}")

    outcome = send(notice, webhook(url), SETTINGS)

    assert not outcome.delivered and not outcome.retryable
    assert "HTTP 302, a redirect, which is not followed" in outcome.detail
    assert alias_receiver.connections == 0


def test_a_server_that_never_answers_times_out_within_the_bound(
    receiver: HttpReceiver, notice: Notice
):
    started = time.monotonic()
    outcome = send(notice, webhook(receiver.url("/hang")), SETTINGS)
    took = time.monotonic() - started

    assert not outcome.delivered and outcome.retryable
    assert "did not answer within 1.5s" in outcome.detail
    assert 1.4 < took < 2.5


def test_a_huge_answer_is_cut(receiver: HttpReceiver, notice: Notice):
    started = time.monotonic()
    outcome = send(notice, webhook(receiver.url("/huge")), SETTINGS)

    assert outcome.delivered and outcome.detail.endswith("(answer cut)")
    assert time.monotonic() - started < 1.0
    assert receiver.huge_sent < 50 * 1024 * 1024


def test_a_body_over_the_request_bound_is_not_sent(receiver: HttpReceiver, notice: Notice):
    small = NotifySettings(max_request_bytes=100)
    outcome = send(notice, webhook(receiver.url()), small)
    assert not outcome.delivered and "over the 100-byte limit" in outcome.detail
    assert receiver.connections == 0


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1:70/", "javascript:1"]
)
def test_only_http_and_https_are_sent(notice: Notice, url: str):
    dns = FakeDns(["127.0.0.1"])
    outcome = send(notice, webhook(url), settings(dns=dns))
    assert not outcome.delivered and not outcome.retryable
    assert outcome.detail == "refused by the outbound guard: only http and https URLs are sent"
    assert dns.lookups == []


def test_a_url_with_credentials_is_refused(receiver: HttpReceiver, notice: Notice):
    url = f"http://user:pa55@127.0.0.1:{receiver.port}/hook"
    outcome = send(notice, webhook(url), SETTINGS)
    assert outcome.detail == "refused by the outbound guard: the URL carries a user or password"
    assert "pa55" not in outcome.detail and receiver.connections == 0


class FailingDns:
    def __init__(self, error: int) -> None:
        self.error = error

    def __call__(self, host: str, port: int, seconds: float) -> Sequence[str]:
        raise socket.gaierror(self.error, "lookup failed")


@pytest.mark.parametrize(
    ("error", "retryable"), [(socket.EAI_NONAME, False), (socket.EAI_AGAIN, True)]
)
def test_a_name_that_does_not_resolve_is_retried_only_when_the_failure_is_temporary(
    notice: Notice, error: int, retryable: bool
):
    dns = NotifySettings(resolve=FailingDns(error))
    outcome = send(notice, webhook("http://hooks.example.test/x"), dns)
    assert not outcome.delivered and outcome.retryable is retryable
    assert outcome.detail == "hooks.example.test does not resolve (lookup failed)"


def test_default_deny_covers_every_metadata_address():
    policy = OutboundPolicy()
    for text in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254", "64:ff9b::a9fe:a9fe"):
        assert policy.refusal(ipaddress.ip_address(text)), text
    for text in ("127.0.0.1", "::1", "10.1.2.3", "192.168.0.10", "8.8.8.8"):
        assert policy.refusal(ipaddress.ip_address(text)) is None, text
    assert policy.deny == DEFAULT_DENY


def test_parse_ranges_names_a_bad_entry():
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not an address range"):
        parse_ranges("loopback 10.0.0.0/33", "operator")


def test_the_next_checked_address_is_tried_when_one_refuses(receiver: HttpReceiver, notice: Notice):
    dns = FakeDns(["127.0.0.3", "127.0.0.1"])  # nothing listens on 127.0.0.3
    url = receiver.url(host="hooks.example.test")
    assert send(notice, webhook(url), settings(dns=dns)).delivered
    assert receiver.connections == 1
