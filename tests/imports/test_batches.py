"""A file written in several batches, with encryption at rest on: every conversation once,
sealed and searchable, and a second import of the same file adds nothing."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from app.core.config import Settings
from app.encryption.crypto import generate_key_line
from tests.conftest import register

pytestmark = pytest.mark.storage

AT = "2026-01-01T00:00:00Z"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Small batches: about two conversations each.
    return settings.model_copy(
        update={"encryption_keys": generate_key_line("imports"), "import_batch_bytes": 1024}
    )


def _conversation(n: int) -> dict:
    texts = [f"question {n} about marmalade{n} " + "q" * 300, f"answer {n} " + "a" * 300]
    return {
        "id": f"conv-{n}",
        "title": f"Conversation {n}",
        "createdAt": AT,
        "lastActivityAt": AT,
        "messageCount": 2,
        "messages": [
            {"seq": i + 1, "role": ("user", "assistant")[i], "content": t, "createdAt": AT}
            for i, t in enumerate(texts)
        ],
    }


async def test_many_batches_sealed_searchable_and_once(client, sessionmaker):
    user = await register(client)
    convs = [_conversation(n) for n in range(12)]
    doc = {"format": "chatkeep.export", "version": 1, "conversations": [*convs, convs[0]]}
    body = json.dumps(doc).encode()

    r = await client.post("/api/import", content=body, headers=user)
    assert r.status_code == 200, r.text
    assert (r.json()["imported"], r.json()["skipped"]) == (12, 1)

    async with sessionmaker() as s:
        plain = (
            await s.execute(sa.text("SELECT count(*) FROM chat_message WHERE content <> ''"))
        ).scalar_one()
        sealed = (
            await s.execute(
                sa.text("SELECT count(*) FROM chat_message WHERE content_sealed IS NOT NULL")
            )
        ).scalar_one()
    assert (plain, sealed) == (0, 24)

    for n in (0, 7, 11):
        found = await client.get("/api/sessions", params={"q": f"marmalade{n}"}, headers=user)
        assert found.status_code == 200, found.text
        assert [i["title"] for i in found.json()["items"]] == [f"Conversation {n}"]

    again = await client.post("/api/import", content=body, headers=user)
    assert (again.json()["imported"], again.json()["skipped"]) == (0, 13)
