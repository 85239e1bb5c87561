"""Opening a conversation in one request: its messages, its drafts and a failed last reply."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.assistant.base import AssistantError
from tests.assistants import RecordingAssistant
from tests.conftest import chat, register

pytestmark = pytest.mark.storage


async def test_drafts_come_with_the_conversation_when_asked(client):
    headers = await register(client)
    sid = (await chat(client, headers, "Create a Facebook post about Diwali")).json()["sessionId"]
    alone = (await client.get(f"/api/sessions/{sid}/drafts", headers=headers)).json()["drafts"]
    assert alone  # the assistant drafted a post

    one = (await client.get(f"/api/sessions/{sid}?drafts=true", headers=headers)).json()
    assert one["drafts"] == alone
    assert [m["seq"] for m in one["messages"]] == [1, 2]
    plain = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert plain["drafts"] is None

    stranger = await register(client)
    theirs = await client.get(f"/api/sessions/{sid}?drafts=true", headers=stranger)
    assert theirs.status_code == 404


async def test_a_failed_last_reply_is_told_with_what_was_written(client, app, sessionmaker):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    headers = await register(client)
    sid = (await chat(client, headers, "hello")).json()["sessionId"]
    assert (await client.get(f"/api/sessions/{sid}", headers=headers)).json()["failedTurn"] is None

    recorder.fail = AssistantError("provider returned 500")
    assert (await chat(client, headers, "are you there?", session_id=sid)).status_code == 502
    # What a crashed server's last checkpoint had saved of the reply.
    async with sessionmaker() as db:
        await db.execute(
            sa.text("UPDATE chat_turn SET partial_reply = 'Half an ans' WHERE session_id = :s"),
            {"s": sid},
        )
        await db.commit()

    detail = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    failed = detail["failedTurn"]
    assert failed["userSeq"] == detail["headSeq"] == 3
    assert failed["code"] == "upstream_error"
    assert failed["partialReply"] == "Half an ans"
    assert failed["detail"]

    # Trying again answers it: nothing failed is left at the head.
    recorder.fail = None
    r = await client.post(f"/api/sessions/{sid}/messages/3/regenerate", headers=headers)
    assert r.status_code == 200, r.text
    after = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert after["failedTurn"] is None
    assert [m["seq"] for m in after["messages"]] == [1, 2, 3, 4]
