"""The mail outbox: a mail is a `mail` row of the job queue, committed with the request,
sent by a job worker through a real SMTP server (aiosmtpd on loopback), with retries."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlmodel import col

from app.encryption.crypto import generate_key_line
from app.jobs.models import Job, JobKind, JobStatus
from app.jobs.worker import JobWorker, running_job_worker
from tests.auth.conftest import Inbox, link_token
from tests.conftest import drain_mail, register
from tests.processes import free_port

NEW_PASSWORD = "violet tractor under moonlight"


class FlakyInbox(Inbox):
    """Answers DATA with the queued refusals first, then keeps the messages."""

    def __init__(self, port: int, refusals: list[str]) -> None:
        super().__init__(port=port)
        self.refusals = refusals
        self.tries = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.tries += 1
        if self.refusals:
            return self.refusals.pop(0)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def refusals() -> list[str]:
    return []


@pytest.fixture
def flaky_smtp(refusals):
    inbox = FlakyInbox(free_port(), refusals)
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def settings_update() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(settings, flaky_smtp, settings_update):
    return settings.model_copy(
        update={
            **settings_update,
            "smtp_url": flaky_smtp.url,
            "public_url": "https://chat.example.org",
            "encryption_keys": generate_key_line("mail1"),
            "mail_retry_seconds": 0.05,
            "mail_max_tries": 3,
        }
    )


async def _mail_jobs(app) -> list[Job]:
    async with app.state.sessionmaker() as db:
        rows = await db.execute(sa.select(Job).where(col(Job.kind) == JobKind.MAIL.value))
        return list(rows.scalars())


async def test_a_reset_mail_arrives_through_the_outbox_sealed(client, app, flaky_smtp, clock):
    email = "outbox@example.com"
    await register(client, email)
    r = await client.post("/auth/forgot-password", json={"email": email})
    assert r.status_code == 202
    [message] = await flaky_smtp.wait_for(email)
    token = link_token(message, "reset-password")
    await drain_mail(app)

    [job] = await _mail_jobs(app)
    assert job.status == JobStatus.DONE.value
    assert job.result == {"tries": 1}
    # Stored sealed: neither the address nor the token is readable in the row.
    assert set(job.params) == {"mailKind", "keyId", "sealed"}
    assert token not in str(job.params) and email not in str(job.params)
    # Kept a short while once sent, then the job purge deletes it.
    assert job.expires_at == clock.now() + timedelta(minutes=app.state.settings.mail_keep_minutes)

    r = await client.post("/auth/reset-password", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("refusals", [["451 4.3.0 Try again later"]])
async def test_a_refused_mail_is_delivered_once_after_a_retry(client, app, flaky_smtp, caplog):
    email = "retry@example.com"
    await register(client, email)
    with caplog.at_level(logging.WARNING, logger="app.jobs"):
        r = await client.post("/auth/forgot-password", json={"email": email})
        assert r.status_code == 202
        await drain_mail(app)

    [job] = await _mail_jobs(app)
    assert job.status == JobStatus.DONE.value
    assert job.result == {"tries": 2}
    assert flaky_smtp.tries == 2
    assert len([m for m in flaky_smtp.messages if m["To"] == email]) == 1
    assert "try 1 of 3 failed" in caplog.text


@pytest.mark.parametrize(
    "refusals",
    [["451 4.3.0 Busy", "451 4.3.0 Busy", "451 4.3.0 Busy"], ["550 5.1.1 No such user"]],
)
async def test_an_undeliverable_mail_fails_with_its_reason(
    client, app, flaky_smtp, refusals, caplog
):
    expected_tries = len(refusals)
    email = "never@example.com"
    await register(client, email)
    with caplog.at_level(logging.ERROR, logger="app.jobs"):
        r = await client.post("/auth/forgot-password", json={"email": email})
        assert r.status_code == 202
        await drain_mail(app)

    [job] = await _mail_jobs(app)
    assert job.status == JobStatus.FAILED.value
    assert job.error is not None and job.error["code"] == "mail_undeliverable"
    assert flaky_smtp.tries == expected_tries  # a 5xx answer is not tried again
    assert flaky_smtp.messages == []
    assert f"not delivered after {expected_tries} tries: mail_undeliverable" in caplog.text


@pytest.mark.parametrize("settings_update", [{"job_worker_enabled": False}])
async def test_a_mail_waits_for_a_worker(client, app, flaky_smtp, settings, clock):
    email = "later@example.com"
    await register(client, email)
    r = await client.post("/auth/forgot-password", json={"email": email})
    assert r.status_code == 202
    # No worker runs in this app: the mail waits, committed, in the outbox.
    [job] = await _mail_jobs(app)
    assert job.status == JobStatus.QUEUED.value
    assert flaky_smtp.tries == 0

    worker = JobWorker(
        sessionmaker=app.state.sessionmaker,
        bus=None,
        clock=clock,
        settings=settings,
        mailer=lambda: app.state.mailer,
    )
    async with running_job_worker(worker):
        [message] = await flaky_smtp.wait_for(email)
        await drain_mail(app)
    token = link_token(message, "reset-password")
    r = await client.post("/auth/reset-password", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    [job] = await _mail_jobs(app)
    assert job.status == JobStatus.DONE.value
