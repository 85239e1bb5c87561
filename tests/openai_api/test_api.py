"""`/v1` in process, with encryption at rest on: the path hashes match a resent
conversation through sealed rows, and are keyed, so they confirm no guess at the content."""

from __future__ import annotations

import hashlib

import asyncpg
import httpx2
import openai
import pytest

from app.conversations import paths
from app.core.config import Settings
from app.encryption.crypto import generate_key_line
from tests.conftest import register

pytestmark = pytest.mark.storage

SECRET = "Quince marmalade under the ninth bridge"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"encryption_keys": generate_key_line("k1")})


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_sealed_conversations_are_matched_by_keyed_hashes(app, client, database_url):
    me = await register(client)
    r = await client.post("/api/keys", json={"name": "sealed"}, headers=me)
    assert r.status_code == 201, r.text
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://testserver")
    sdk = openai.AsyncOpenAI(
        base_url="http://testserver/v1", api_key=r.json()["key"], http_client=http, max_retries=0
    )
    async with sdk:
        (model,) = [m.id for m in (await sdk.models.list()).data]
        asked = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": SECRET}]
        first = await sdk.chat.completions.create(model=model, messages=asked)
        reply = first.choices[0].message.content
        again = await sdk.chat.completions.create(
            model=model,
            messages=[
                *asked,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": "hi"},
            ],
        )
    sid = first.model_extra["chatkeep"]["sessionId"]
    assert again.model_extra["chatkeep"]["sessionId"] == sid
    shown = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert [m["content"] for m in shown["messages"]] == [
        "Be brief.",
        SECRET,
        reply,
        "hi",
        again.choices[0].message.content,
    ]

    conn = await asyncpg.connect(_plain(database_url), statement_cache_size=0)
    try:
        rows = await conn.fetch(
            "SELECT seq, role, content, path_hash FROM chat_message"
            " WHERE session_id = $1 ORDER BY seq",
            sid,
        )
        title = await conn.fetchval("SELECT title FROM chat_session WHERE id = $1", sid)
    finally:
        await conn.close()
    assert SECRET not in title and all(SECRET not in r["content"] for r in rows)
    # The system message is outside the chain; the others chain under a key from SECRET_KEY.
    assert rows[0]["role"] == "system" and rows[0]["path_hash"] is None
    key = paths.path_hash_key(app.state.settings.resolved_secret_key())
    user_hash = paths.chain(key, None, "user", SECRET)
    assert bytes(rows[1]["path_hash"]) == user_hash
    assert bytes(rows[2]["path_hash"]) == paths.chain(key, user_hash, "assistant", reply)
    # Without the key, the content gives nothing to compare with.
    unkeyed = hashlib.sha256(b"user\x00" + SECRET.encode()).digest()
    assert bytes(rows[1]["path_hash"]) != unkeyed
