"""The mail outbox's statements: a mail is a row of the job queue's `job` table, kind
"mail", owned by the account it goes to, written in the transaction of the change that
caused it. Its address, subject and text (which hold reset and verification links) are
sealed with the primary key of ENCRYPTION_KEYS when it is set.

The mail layer sits below the job queue, so the row is written through a table clause of
the columns it needs rather than the queue's model (app/jobs/models.py owns the table).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.encryption.crypto import associated_data, keyring_of, open_or_refuse

MAIL_JOB_KIND = "mail"

_job = sa.table(
    "job",
    sa.column("id", sa.Uuid),
    sa.column("user_id", sa.Uuid),
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("params", JSONB),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("expires_at", sa.DateTime(timezone=True)),
)


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    text: str
    kind: str  # reset, verify, signup: the metric's label


def _aad(user_id: uuid.UUID, job_id: uuid.UUID) -> bytes:
    return associated_data("job", "params", user_id, str(job_id))


class MailOutbox:
    """The outbox rows of one account."""

    def __init__(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        self.session = session
        self.user_id = user_id

    async def add(self, mail: OutgoingMail, *, now: datetime, expires_at: datetime) -> uuid.UUID:
        """Queues `mail` in the session's transaction: it is sent once that commits."""
        job_id = uuid.uuid4()
        body = json.dumps({"to": mail.to, "subject": mail.subject, "text": mail.text}).encode()
        params: dict[str, Any] = {"mailKind": mail.kind}
        keyring = keyring_of(self.session)
        if keyring is None:
            params["message"] = body.decode()
        else:
            key_id, sealed = keyring.seal(body, _aad(self.user_id, job_id))
            params["keyId"] = key_id
            params["sealed"] = base64.b64encode(sealed).decode()
        await self.session.execute(
            sa.insert(_job).values(
                id=job_id,
                user_id=self.user_id,
                kind=MAIL_JOB_KIND,
                status="queued",
                params=params,
                created_at=now,
                expires_at=expires_at,
            )
        )
        return job_id

    def open(self, job_id: uuid.UUID, params: dict[str, Any]) -> OutgoingMail:
        """The mail a queued row holds, opened when it was sealed."""
        if "sealed" in params:
            body = open_or_refuse(
                keyring_of(self.session),
                params["keyId"],
                base64.b64decode(params["sealed"]),
                _aad(self.user_id, job_id),
            )
        else:
            body = params["message"].encode()
        fields = json.loads(body)
        return OutgoingMail(
            to=fields["to"], subject=fields["subject"], text=fields["text"], kind=params["mailKind"]
        )
