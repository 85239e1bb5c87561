"""The tree with ENCRYPTION_KEYS: an edited and a regenerated turn read sealed messages."""

from __future__ import annotations

import pytest

from app.core.config import Settings
from tests.assistants import RecordingAssistant
from tests.conftest import chat, register
from tests.core.test_encryption import KEY_NEW

pytestmark = pytest.mark.storage


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"encryption_keys": KEY_NEW})


async def test_edits_and_regenerates_open_sealed_messages(client, app):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    me = await register(client)
    sid = (await chat(client, me, "walrus facts")).json()["sessionId"]
    await chat(client, me, "more walrus", session_id=sid)
    r = await client.post(f"/api/sessions/{sid}/messages/4/regenerate", headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["reply"] == "reply to more walrus"
    assert [m.content for m in recorder.turns[-1].history] == [
        "walrus facts",
        "reply to walrus facts",
    ]
    body = {"messages": [{"role": "user", "content": "less walrus"}], "sessionId": sid}
    r = await client.post("/api/chat", json={**body, "editSeq": 3}, headers=me)
    assert r.status_code == 200, r.text
    detail = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert [m["content"] for m in detail["messages"]] == [
        "walrus facts",
        "reply to walrus facts",
        "less walrus",
        "reply to less walrus",
    ]
    found = (await client.get("/api/sessions", params={"q": "less"}, headers=me)).json()
    assert [i["id"] for i in found["items"]] == [sid]
