"""With ENCRYPTION_KEYS set, a job's stored input and result are sealed like every other
column of user data, and come back whole."""

from __future__ import annotations

import io
import zipfile

import pytest
import sqlalchemy as sa

from app.core.config import Settings
from app.encryption.crypto import generate_key_line
from tests.conftest import chat, register
from tests.jobs.test_api import _export_file, _until_finished

pytestmark = pytest.mark.storage


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"encryption_keys": generate_key_line("jobs1")})


async def test_results_and_uploads_are_sealed_at_rest(client, app, clock):
    headers = await register(client)
    clock.advance(60)
    await chat(client, headers, "a secret about the garden party")

    worker = app.state.jobs
    await worker.stop()  # the upload waits in the queue: see how it is stored
    try:
        r = await client.post("/api/import/jobs", headers=headers, content=_export_file(1))
        assert r.status_code == 202
        async with app.state.sessionmaker() as db:
            stored = (
                await db.execute(sa.text("SELECT key_id, data FROM job_chunk WHERE part = 'input'"))
            ).all()
        assert [key_id for key_id, _ in stored] == ["jobs1"]
        assert b"Imported 0" not in bytes(stored[0][1])
    finally:
        worker.start()
    imported = await _until_finished(client, headers, r.json()["jobId"])
    assert imported["status"] == "done" and imported["result"]["imported"] == 1

    job_id = (await client.post("/api/export/jobs", headers=headers)).json()["jobId"]
    job = await _until_finished(client, headers, job_id)
    assert job["status"] == "done", job["error"]
    async with app.state.sessionmaker() as db:
        rows = (
            await db.execute(sa.text("SELECT key_id, data FROM job_chunk WHERE part = 'result'"))
        ).all()
    assert rows and all(key_id == "jobs1" for key_id, _ in rows)
    assert not bytes(rows[0][1]).startswith(b"PK")  # not the ZIP as such

    r = await client.get(job["downloadUrl"], headers=headers)
    assert r.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert b"a secret about the garden party" in zf.read("conversations.json")
