"""Mail through a real SMTP server (aiosmtpd) started by the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dwsched.domain.notices import ChannelKind, Notice, Target
from dwsched.engine.notify import NotifySettings, SmtpSettings, SmtpTls, send
from tests.notify.conftest import CONSOLE
from tests.notify.receivers import SmtpReceiver, free_port

TO = Target(ChannelKind.MAIL, "oncall@example.test")

# aiosmtpd warns, on each connection, that a login without TLS is unsafe: a test server.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def smtp_settings(port: int, **options: object) -> NotifySettings:
    smtp = SmtpSettings(
        host="127.0.0.1",
        port=port,
        from_address="dwsched@example.test",
        tls=SmtpTls.NONE,
        timeout_s=2,
        **options,  # type: ignore[arg-type]
    )
    return NotifySettings(smtp=smtp)


@pytest.fixture
def guarded_smtp() -> Iterator[SmtpReceiver]:
    server = SmtpReceiver(password="right-password").start()
    yield server
    server.stop()


def test_a_mail_arrives_with_its_subject_body_and_console_link(smtp: SmtpReceiver, notice: Notice):
    outcome = send(notice, TO, smtp_settings(smtp.port))

    assert outcome.delivered, outcome.detail
    assert outcome.detail == f"accepted by the SMTP server 127.0.0.1:{smtp.port} for {TO.address}"
    [(envelope, message)] = smtp.messages
    assert envelope.mail_from == "dwsched@example.test"
    assert envelope.rcpt_tos == ["oncall@example.test"]
    assert message["Subject"] == "[dwsched] Error: extract_orders in orders_chain (growth)"
    assert message["From"] == "dwsched <dwsched@example.test>"
    assert message["To"] == "oncall@example.test"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "text/plain"
    body = message.get_payload(decode=True).decode("utf-8")
    assert f"Console: {CONSOLE}" in body
    assert "BizDate: 2024-05-17" in body and "Task instance: 9001" in body
    assert "Started: 2024-05-18 09:00:00+08:00" in body
    assert body.rstrip().endswith("ERROR: relation orders does not exist")


def test_a_login_is_used_when_configured(guarded_smtp: SmtpReceiver, notice: Notice):
    settings = smtp_settings(guarded_smtp.port, user="alerts", password="right-password")
    assert send(notice, TO, settings).delivered
    assert len(guarded_smtp.messages) == 1


def test_a_refused_login_is_not_retried_and_not_shown(guarded_smtp: SmtpReceiver, notice: Notice):
    settings = smtp_settings(guarded_smtp.port, user="alerts", password="wrong-password")

    outcome = send(notice, TO, settings)

    assert not outcome.delivered and not outcome.retryable
    assert (
        outcome.detail == f"the SMTP server 127.0.0.1:{guarded_smtp.port} refused the login (535)"
    )
    assert guarded_smtp.messages == []


def test_a_server_that_is_down_may_be_retried(notice: Notice):
    port = free_port()
    outcome = send(notice, TO, smtp_settings(port))
    assert not outcome.delivered and outcome.retryable
    assert outcome.detail.startswith(f"the SMTP server 127.0.0.1:{port} could not be reached")


def test_starttls_against_a_server_without_it_is_not_retried(smtp: SmtpReceiver, notice: Notice):
    settings = NotifySettings(
        smtp=SmtpSettings(
            host="127.0.0.1", port=smtp.port, from_address="d@example.test", timeout_s=2
        )
    )
    outcome = send(notice, TO, settings)
    assert not outcome.delivered and not outcome.retryable
    assert "STARTTLS" in outcome.detail and smtp.messages == []


def test_mail_without_an_smtp_server_is_refused(notice: Notice):
    outcome = send(notice, TO, NotifySettings())
    assert not outcome.delivered and not outcome.retryable
    assert outcome.detail.startswith("Mail is not configured on this server")


def test_the_smtp_password_never_appears_in_settings_or_outcomes(notice: Notice):
    settings = smtp_settings(free_port(), user="alerts", password="hunter2-secret")
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in send(notice, TO, settings).detail
