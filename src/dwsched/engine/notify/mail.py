"""Mail through the operator's SMTP server, with apprise.

apprise builds the message (`NotifyEmail.prepare_emails`: headers, encoding, Message-ID,
Date) and holds the SMTP session (`AppriseSMTPController`: connect, SSL or STARTTLS,
login). They are used directly rather than through `Apprise.notify`, which answers only
True or False: the session's exceptions say whether the server was down (worth a retry) or
refused the login (not). The SMTP server is the operator's, so the outbound guard, which is
about addresses users give, does not apply to it.
"""

from __future__ import annotations

import smtplib

from apprise.common import NotifyFormat
from apprise.exception import AppriseImproperlyConfigured
from apprise.plugins.email import NotifyEmail
from apprise.plugins.email.smtp import AppriseSMTPController, SMTPSecureMode

from dwsched.domain.notices import Notice, Outcome
from dwsched.engine.notify.errors import Undeliverable
from dwsched.engine.notify.settings import SmtpSettings, SmtpTls

_SECURE_MODES = {
    SmtpTls.NONE: SMTPSecureMode.INSECURE,
    SmtpTls.STARTTLS: SMTPSecureMode.STARTTLS,
    SmtpTls.SSL: SMTPSecureMode.SSL,
}

NOT_CONFIGURED = (
    "Mail is not configured on this server: the operator sets the SMTP server "
    "(docs/alerts.md, Channels)"
)


def send_mail(notice: Notice, address: str, smtp: SmtpSettings | None) -> Outcome:
    """Send `notice` to `address` through `smtp`."""
    if smtp is None:
        raise Undeliverable(NOT_CONFIGURED)
    server = f"the SMTP server {_literal(smtp.host)}:{smtp.port}"
    try:
        _deliver(notice, address, smtp)
    except smtplib.SMTPAuthenticationError as exc:
        raise Undeliverable(f"{server} refused the login ({exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        retry = 400 <= exc.smtp_code < 500
        raise Undeliverable(f"{server} answered {exc.smtp_code}", retryable=retry) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise Undeliverable(f"{server} cannot be used: {str(exc)[:120]}") from None
    except TimeoutError:
        raise Undeliverable(
            f"{server} did not answer within {smtp.timeout_s:g}s", retryable=True
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        detail = f"{server} could not be reached ({type(exc).__name__})"
        raise Undeliverable(detail, retryable=True) from None
    except (RuntimeError, AppriseImproperlyConfigured) as exc:
        raise Undeliverable(f"{server} cannot be used: {str(exc)[:120]}") from None
    return Outcome.ok(f"accepted by {server} for {address}")


def _deliver(notice: Notice, address: str, smtp: SmtpSettings) -> None:
    messages = NotifyEmail.prepare_emails(
        subject=" ".join(notice.title.split()),
        body=notice.body,
        from_addr=(smtp.from_name, smtp.from_address),
        to=[("", address)],
        smtp_host=_literal(smtp.host),  # the Message-ID's right part
        notify_format=NotifyFormat.TEXT,
        headers={"X-Application": "dwsched", "Auto-Submitted": "auto-generated"},
    )
    session = AppriseSMTPController(
        host=smtp.host,
        port=smtp.port,
        secure_mode=_SECURE_MODES[smtp.tls],
        user=smtp.user or None,
        password=smtp.password or None,
        verify_certificate=smtp.verify_certificate,
        socket_connect_timeout=smtp.timeout_s,  # type: ignore[arg-type]  # a float works
    )
    server = f"the SMTP server {_literal(smtp.host)}:{smtp.port}"
    with session as connection:
        for message in messages:
            if not connection.sendmail(smtp.from_address, message.to_addrs, message.body):
                raise Undeliverable(
                    f"{server} did not accept the message for {address}", retryable=True
                )


def _literal(host: str) -> str:
    """`host` as a mail or URL authority spells it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host
