"""Outgoing mail: SMTP with aiosmtplib, or `.eml` files in DATA_DIR/outbox when no SMTP is set.

Messages are sent from a background task, never inside a request: a route that mails
(forgot password, verification) answers at once and in the same time whether or not an
account exists, and a slow or broken mail server cannot hold a request or a database
connection. A failure is logged and counted in `chatkeep_mail_total{outcome="failed"}`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from app.core.metrics import MAIL_MESSAGES

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


class Mailer:
    """Sends in the background; `drain()` waits for what is still on its way."""

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
        self._pending: set[asyncio.Task[None]] = set()

    def send_later(self, *, to: str, subject: str, text: str, kind: str) -> None:
        message = build_message(sender=self.sender, to=to, subject=subject, text=text)
        task = asyncio.get_running_loop().create_task(self._deliver(message, kind))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _deliver(self, message: EmailMessage, kind: str) -> None:
        try:
            if self.target is None:
                path = await asyncio.to_thread(self._write_eml, message)
                MAIL_MESSAGES.labels(kind, "written").inc()
                logger.warning("mail (%s) for %s written to %s", kind, message["To"], path)
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
            MAIL_MESSAGES.labels(kind, "sent").inc()
        except Exception as exc:
            MAIL_MESSAGES.labels(kind, "failed").inc()
            logger.error("mail (%s) could not be sent: %s: %s", kind, type(exc).__name__, exc)

    def _write_eml(self, message: EmailMessage) -> Path:
        self.outbox.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.outbox / f"{stamp}-{secrets.token_hex(4)}.eml"
        path.write_bytes(bytes(message))
        return path.resolve()
