"""Jobs over HTTP: the ZIP and imports started as jobs, followed, downloaded, purged."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile

import pytest
import sqlalchemy as sa

from tests.conftest import chat, register

pytestmark = pytest.mark.storage


async def _until_finished(client, headers, job_id: str, *, seen: list | None = None) -> dict:
    """The job once it is done or failed (waits on the condition, not on a time)."""
    for _ in range(3000):
        r = await client.get(f"/api/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        if seen is not None:
            seen.append(body)
        if body["status"] in {"done", "failed"}:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"the job did not finish: {body}")


async def _conversations(client, headers, clock, n: int) -> list[str]:
    ids = []
    for i in range(n):
        clock.advance(60)
        ids.append((await chat(client, headers, f"conversation number {i}")).json()["sessionId"])
    return ids


async def test_an_export_job_makes_the_zip_and_anyone_else_gets_404(client, clock):
    owner = await register(client)
    stranger = await register(client)
    ids = await _conversations(client, owner, clock, 3)

    r = await client.post("/api/export/jobs?status=all", headers=owner)
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "queued"
    assert r.headers["location"] == started["statusUrl"] == f"/api/jobs/{started['jobId']}"

    job = await _until_finished(client, owner, started["jobId"])
    assert job["status"] == "done", job["error"]
    assert job["kind"] == "export" and job["error"] is None
    assert job["progress"]["total"] == 6 and job["progress"]["done"] == 6  # read + laid out
    assert job["downloadUrl"] == f"/api/jobs/{started['jobId']}/result"
    assert job["result"]["mediaType"] == "application/zip"

    r = await client.get(job["downloadUrl"], headers=owner)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert int(r.headers["content-length"]) == job["result"]["size"] == len(r.content)
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert zf.testzip() is None
    doc = json.loads(zf.read("conversations.json"))
    assert sorted(c["id"] for c in doc["conversations"]) == sorted(ids)

    # Another user's job is a missing one, result included.
    for path in (started["statusUrl"], job["downloadUrl"]):
        r = await client.get(path, headers=stranger)
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "job_not_found"
    assert (await client.get(started["statusUrl"])).status_code == 401


async def test_a_job_result_expires_and_is_purged(client, clock, app, settings):
    headers = await register(client)
    await _conversations(client, headers, clock, 1)
    job_id = (await client.post("/api/export/jobs", headers=headers)).json()["jobId"]
    job = await _until_finished(client, headers, job_id)
    assert job["status"] == "done"

    worker = app.state.jobs
    # Not yet: a minute before the expiry the job and its file stay.
    clock.advance(settings.job_result_ttl_hours * 3600 - 60)
    assert await worker.purge() == 0
    assert (await client.get(job["downloadUrl"], headers=headers)).status_code == 200

    clock.advance(120)
    assert await worker.purge() == 1
    assert (await client.get(f"/api/jobs/{job_id}", headers=headers)).status_code == 404
    assert (await client.get(job["downloadUrl"], headers=headers)).status_code == 404
    async with app.state.sessionmaker() as db:
        left = (await db.execute(sa.text("SELECT count(*) FROM job_chunk"))).scalar_one()
    assert left == 0


def _export_file(n: int) -> bytes:
    return json.dumps(
        {
            "format": "chatkeep.export",
            "version": 1,
            "exportedAt": "2026-01-01T00:00:00Z",
            "conversations": [
                {
                    "id": f"source-{i}",
                    "title": f"Imported {i}",
                    "status": "active",
                    "createdAt": "2026-01-01T00:00:00Z",
                    "lastActivityAt": "2026-01-01T00:00:00Z",
                    "messageCount": 2,
                    "messages": [
                        {
                            "seq": 1,
                            "role": "user",
                            "content": f"hello {i}",
                            "createdAt": "2026-01-01T00:00:00Z",
                        },
                        {
                            "seq": 2,
                            "role": "assistant",
                            "content": f"hi {i}",
                            "createdAt": "2026-01-01T00:00:01Z",
                        },
                    ],
                }
                for i in range(n)
            ],
        }
    ).encode()


async def test_an_import_job_imports_and_answers_like_the_import_route(client):
    headers = await register(client)
    stranger = await register(client)
    r = await client.post(
        "/api/import/jobs",
        headers=headers,
        files={"file": ("export.json", _export_file(3), "application/json")},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["jobId"]
    assert (await client.get(f"/api/jobs/{job_id}", headers=stranger)).status_code == 404

    job = await _until_finished(client, headers, job_id)
    assert job["status"] == "done", job["error"]
    assert job["kind"] == "import" and job["downloadUrl"] is None
    assert job["result"]["imported"] == 3 and job["result"]["failed"] == []
    listed = (await client.get("/api/sessions?status=all", headers=headers)).json()
    titles = sorted(s["title"] for s in listed["items"])
    assert titles == ["Imported 0", "Imported 1", "Imported 2"]
    # An import has no file to download.
    r = await client.get(f"/api/jobs/{job_id}/result", headers=headers)
    assert r.status_code == 404

    # The same file again adds nothing, as with POST /api/import.
    r = await client.post("/api/import/jobs", headers=headers, content=_export_file(3))
    again = await _until_finished(client, headers, r.json()["jobId"])
    assert again["result"]["imported"] == 0 and again["result"]["skipped"] == 3


async def test_a_refused_import_fails_the_job_with_the_reason_and_keeps_nothing(client, app):
    headers = await register(client)
    r = await client.post("/api/import/jobs", headers=headers, content=b'{"hello": "world"}')
    assert r.status_code == 202, r.text
    job = await _until_finished(client, headers, r.json()["jobId"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "unsupported_format", job
    assert job["result"] is None
    async with app.state.sessionmaker() as db:
        inputs = (await db.execute(sa.text("SELECT count(*) FROM job_chunk"))).scalar_one()
    assert inputs == 0  # the upload is dropped with the job's end
    listed = (await client.get("/api/sessions?status=all", headers=headers)).json()
    assert listed["items"] == []


async def test_a_result_is_not_ready_before_the_job_is_done(client, app):
    headers = await register(client)
    worker = app.state.jobs
    await worker.stop()  # nothing takes the job
    try:
        job_id = (await client.post("/api/export/jobs", headers=headers)).json()["jobId"]
        job = (await client.get(f"/api/jobs/{job_id}", headers=headers)).json()
        assert job["status"] == "queued" and job["progress"] == {"done": 0, "total": None}
        r = await client.get(f"/api/jobs/{job_id}/result", headers=headers)
        assert r.status_code == 409 and r.json()["code"] == "job_not_done"
    finally:
        worker.start()
    assert (await _until_finished(client, headers, job_id))["status"] == "done"


async def test_a_job_whose_worker_went_silent_is_tried_again_then_failed(client, clock, app):
    """A worker that stops sending heartbeats (killed) loses its job to the next worker
    after JOB_STALE_SECONDS; after JOB_MAX_ATTEMPTS tries the job fails cleanly."""
    headers = await register(client)
    worker = app.state.jobs
    settings = worker.settings
    await worker.stop()  # this test takes the jobs itself, as dead workers would
    try:
        job_id = (await client.post("/api/export/jobs", headers=headers)).json()["jobId"]
        for attempt in range(1, settings.job_max_attempts + 1):
            claimed = await worker.take()
            assert claimed is not None and str(claimed.id) == job_id
            assert claimed.attempt == attempt
            # A live heartbeat keeps it: nobody else takes it.
            assert await worker.take() is None
            clock.advance(settings.job_stale_seconds + 1)
        assert await worker.take() is None  # every try used: failed, not taken again
        job = (await client.get(f"/api/jobs/{job_id}", headers=headers)).json()
        assert job["status"] == "failed" and job["attempts"] == settings.job_max_attempts
        assert job["error"]["code"] == "job_interrupted"
    finally:
        worker.start()


async def test_job_progress_reaches_the_owners_event_stream(client, app, clock):
    headers = await register(client)
    await _conversations(client, headers, clock, 2)
    hub = app.state.events.hub
    user_id = (await client.get("/users/me", headers=headers)).json()["id"]
    with hub.open_stream(user_id) as stream:
        job_id = (await client.post("/api/export/jobs", headers=headers)).json()["jobId"]
        assert (await _until_finished(client, headers, job_id))["status"] == "done"
        statuses = []
        while not statuses or statuses[-1] != "done":
            _, event = await asyncio.wait_for(stream.queue.get(), 10)
            if event.kind == "job" and event.data["jobId"] == job_id:
                statuses.append(event.data["status"])
    assert statuses[0] == "queued" and "running" in statuses and statuses[-1] == "done"
