"""Outgoing mail: SMTP with aiosmtplib, or `.eml` files in DATA_DIR/outbox when no SMTP is set.

A route that mails (forgot password, verification, a sign-up attempt on a taken address)
writes the message to the mail outbox (`queue_mail`: a `mail` row of the job queue) in the
transaction of the change that caused it, and answers at once and in the same time whether
or not an account exists. A job worker sends it (`Mailer.send`), retrying with backoff
(app/jobs/worker.py), so a slow or broken mail server holds no request and a mail outlives
a restart. Each try is counted in `chatkeep_mail_total`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.metrics import MAIL_MESSAGES
from app.mail.repository import MailOutbox, OutgoingMail

logger = logging.getLogger("app.mail")

STARTTLS_MODES = {"auto": None, "require": True, "false": False}


@dataclass(frozen=True)
class SmtpTarget:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None  # None: when the server offers it


def parse_smtp_url(url: str) -> SmtpTarget:
    """smtp://[user:pass@]host[:port][?starttls=auto|require|false] or smtps://host[:port]."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://user:pass@host:587 or smtps://host:465")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    mode = query.get("starttls", "auto").lower()
    if mode not in STARTTLS_MODES:
        raise ValueError("SMTP_URL: starttls must be auto, require or false")
    tls = parts.scheme == "smtps"
    return SmtpTarget(
        hostname=parts.hostname,
        port=parts.port or (465 if tls else 587),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=tls,
        start_tls=False if tls else STARTTLS_MODES[mode],
    )


def build_message(*, sender: str, to: str, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    # Plain 7-bit text when it is ASCII, so the .eml in the outbox shows the link as it is
    # (quoted-printable would wrap it and escape its "=").
    message.set_content(text, cte="7bit" if text.isascii() else "quoted-printable")
    return message


async def queue_mail(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    mail: OutgoingMail,
    now: datetime,
    settings: Settings,
) -> uuid.UUID:
    """Puts `mail` in the outbox in the session's transaction: nothing goes out unless that
    commits, and it goes out once it has, whether or not a worker runs at the time. A mail
    no worker took within JOB_RESULT_TTL_HOURS is purged unsent."""
    return await MailOutbox(session, user_id).add(
        mail, now=now, expires_at=now + timedelta(hours=settings.job_result_ttl_hours)
    )


def is_permanent(exc: BaseException) -> bool:
    """The server refused for good (a 5xx answer): trying again would not help."""
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500


class Mailer:
    """Sends one message at a time for the outbox's worker; `send` raises on a failure."""

    def __init__(
        self,
        *,
        smtp_url: str | None,
        sender: str,
        outbox: Path,
        timeout_seconds: float,
    ) -> None:
        self.target = parse_smtp_url(smtp_url) if smtp_url else None
        self.sender = sender
        self.outbox = outbox
        self.timeout_seconds = timeout_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer:
        return cls(
            smtp_url=settings.smtp_url,
            sender=settings.mail_from,
            outbox=settings.data_dir / "outbox",
            timeout_seconds=settings.mail_timeout_seconds,
        )

    async def send(self, mail: OutgoingMail) -> None:
        """One try: the SMTP server accepted it (or it was written to the .eml outbox) when
        this returns."""
        message = build_message(
            sender=self.sender, to=mail.to, subject=mail.subject, text=mail.text
        )
        if self.target is None:
            path = await asyncio.to_thread(self._write_eml, message)
            MAIL_MESSAGES.labels(mail.kind, "written").inc()
            logger.warning("mail (%s) for %s written to %s", mail.kind, message["To"], path)
            return
        t = self.target
        await aiosmtplib.send(
            message,
            hostname=t.hostname,
            port=t.port,
            username=t.username,
            password=t.password,
            use_tls=t.use_tls,
            start_tls=t.start_tls,
            timeout=self.timeout_seconds,
        )
        MAIL_MESSAGES.labels(mail.kind, "sent").inc()

    def _write_eml(self, message: EmailMessage) -> Path:
        self.outbox.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.outbox / f"{stamp}-{secrets.token_hex(4)}.eml"
        path.write_bytes(bytes(message))
        return path.resolve()
