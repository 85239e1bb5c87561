"""Long conversations: what the context budget drops is summarised by the model after the
turn, stored (sealed with ENCRYPTION_KEYS), sent in place of the dropped messages, reused
by later turns and by branches through it, and gone with its conversation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from app.assistant.factory import build_assistant
from app.conversations.context import SUMMARY_PREFIX
from app.conversations.models import PathSummary
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.encryption.crypto import generate_key_line
from app.keys import service as keys
from tests.conftest import chat, register
from tests.fakemodel import FakeModel, Recorded, serve_model

pytestmark = pytest.mark.storage


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Two messages of context: the third message of a path on is dropped.
    return settings.model_copy(update={"context_max_messages": 2})


def _use_model(app: Any, settings: Settings, url: str) -> None:
    app.state.assistant = build_assistant(
        settings.model_copy(
            update={
                "assistant_backend": "openai",
                "llm_base_url": f"{url}/v1",
                "llm_model": "test-model",
                "llm_intents": "rules",
            }
        )
    )


async def _after_turns(app: Any) -> None:
    """Waits until the work that follows turns (titles, summaries) has ended."""
    runner = app.state.turns
    while runner._after:
        await asyncio.wait(set(runner._after))


async def _say(app, client, me, text: str, sid: str | None = None, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text}], **more}
    if sid is not None:
        body["sessionId"] = sid
    r = await client.post("/api/chat", json=body, headers=me)
    assert r.status_code == 200, r.text
    await _after_turns(app)
    return dict(r.json())


async def _stored(app: Any, sid: str) -> list[tuple[int, str, Any, Any]]:
    async with app.state.sessionmaker() as db:
        rows = await db.execute(
            sa.text(
                "SELECT through_seq, text, text_sealed, model FROM path_summary"
                " WHERE session_id = :s ORDER BY through_seq"
            ),
            {"s": sid},
        )
        return [tuple(row) for row in rows.all()]


def _summary_in(request: Recorded) -> str | None:
    found = [
        m["content"]
        for m in request.messages[1:]
        if m["role"] == "system" and m["content"].startswith(SUMMARY_PREFIX)
    ]
    assert len(found) <= 1
    return found[0].removeprefix(SUMMARY_PREFIX) if found else None


def _text(request: Recorded) -> str:
    return "\n".join(str(m["content"]) for m in request.messages)


async def test_the_dropped_start_is_summarised_after_the_turn_and_sent_in_its_place(
    app, client, settings
):
    model = FakeModel()
    with serve_model(model) as server:
        _use_model(app, settings, server.url)
        me = await register(client)
        sid = (await _say(app, client, me, "Which apples keep best in winter?"))["sessionId"]
        await _say(app, client, me, "And which pears ripen last?", sid)
        # The next turn would drop the first exchange: the model summarised it, after the
        # turn, and the summary is stored through the first reply (seq 2).
        assert [r[0] for r in await _stored(app, sid)] == [2]
        (first,) = model.summary_requests
        assert "apples" in first.last_user and "pears" not in first.last_user
        detail = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
        assert detail["summarisedThrough"] == 2

        await _say(app, client, me, "What about plums?", sid)
        asked = model.requests[-1]
        assert _summary_in(asked) == "A fake summary 1"
        assert "apples" not in _text(asked)  # the dropped message is not sent
        assert [m["content"] for m in asked.messages if m["role"] == "user"] == [
            "And which pears ripen last?",
            "What about plums?",
        ]
        # Now the second exchange drops too: a newer summary, from the first and what
        # follows it (not from the start again).
        assert [r[0] for r in await _stored(app, sid)] == [2, 4]
        second = model.summary_requests[1]
        assert "A fake summary 1" in second.last_user
        assert "pears" in second.last_user and "apples" not in second.last_user

        # A new reply to the same message drops nothing new: the summary is reused.
        r = await client.post(f"/api/sessions/{sid}/messages/6/regenerate", headers=me)
        assert r.status_code == 200, r.text
        await _after_turns(app)
        assert len(model.summary_requests) == 2
        assert [r[0] for r in await _stored(app, sid)] == [2, 4]
        detail = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
        assert detail["summarisedThrough"] == 4
        assert detail["messages"][-1]["seq"] == 7


async def test_a_branch_through_the_summary_uses_it_one_that_forks_before_does_not(
    app, client, settings
):
    model = FakeModel()
    with serve_model(model) as server:
        _use_model(app, settings, server.url)
        me = await register(client)
        sid = (await _say(app, client, me, "Tell me about apples?"))["sessionId"]
        await _say(app, client, me, "Tell me about pears?", sid)  # summary 1 through 2
        await _say(app, client, me, "Tell me about plums?", sid)  # summary 2 through 4
        await _say(app, client, me, "Tell me about cherries?", sid)  # uses 2; 3 through 6
        assert [r[0] for r in await _stored(app, sid)] == [2, 4, 6]
        assert _summary_in(model.requests[-1]) == "A fake summary 2"
        written = len(model.summary_requests)

        # An edit of the cherries message (seq 7) is a branch through seq 6. Its request
        # drops through seq 4 and sends that summary; the next turn on it would drop through
        # seq 6, which the other branch had summarised already: reused, not written again.
        await _say(app, client, me, "Tell me about quinces?", sid, editSeq=7)
        assert _summary_in(model.requests[-1]) == "A fake summary 2"
        assert len(model.summary_requests) == written
        await _say(app, client, me, "Tell me about medlars?", sid)
        assert _summary_in(model.requests[-1]) == "A fake summary 3"
        assert "cherries" not in _text(model.requests[-1])
        assert "quinces" in _text(model.requests[-1])
        written = len(model.summary_requests)
        assert [r[0] for r in await _stored(app, sid)][:3] == [2, 4, 6]

        # An edit of the very first message starts a branch that none of them is on.
        await _say(app, client, me, "Tell me about figs?", sid, editSeq=1)
        assert _summary_in(model.requests[-1]) is None
        await _say(app, client, me, "Tell me about dates?", sid)
        assert _summary_in(model.requests[-1]) is None
        # Its own start is summarised from scratch (no earlier summary is on its path)...
        latest = model.summary_requests[-1]
        assert "figs" in latest.last_user
        assert "A fake summary" not in latest.last_user and "apples" not in latest.last_user
        await _say(app, client, me, "Tell me about kiwis?", sid)
        # ... and sent in its place.
        own = _summary_in(model.requests[-1])
        assert own == f"A fake summary {written + 1}"
        assert "figs" not in _text(model.requests[-1])


async def test_the_built_in_assistant_writes_no_summary(app, client):
    me = await register(client)  # the tests' assistant: the built-in templates
    sid = (await chat(client, me, "hello there")).json()["sessionId"]
    for text in ("what can you do?", "thanks", "and more?"):
        r = await chat(client, me, text, session_id=sid)
        assert r.status_code == 200, r.text
    assert not app.state.turns._after  # nothing was started after the turns
    assert await _stored(app, sid) == []
    detail = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert detail["summarisedThrough"] is None


async def test_a_summary_goes_with_its_conversation(app, client, settings):
    model = FakeModel()
    with serve_model(model) as server:
        _use_model(app, settings, server.url)
        me = await register(client)
        sid = (await _say(app, client, me, "Which apples keep best?"))["sessionId"]
        await _say(app, client, me, "And pears?", sid)
        assert len(await _stored(app, sid)) == 1
        # The JSON export of the conversation carries it.
        r = await client.get(f"/api/sessions/{sid}/export?format=json", headers=me)
        assert r.status_code == 200, r.text
        (summary,) = r.json()["conversation"]["summaries"]
        assert summary["throughSeq"] == 2 and summary["text"] == "A fake summary 1"
        assert summary["model"] == "test-model"
        r = await client.delete(f"/api/sessions/{sid}?permanent=true", headers=me)
        assert r.status_code == 204
        assert await _stored(app, sid) == []


KEY_1 = generate_key_line("k1")
KEY_2 = generate_key_line("k2")


class TestSealed:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"encryption_keys": KEY_1})

    async def test_a_summary_is_sealed_at_rest_and_read_in_full(self, app, client, settings):
        model = FakeModel()
        model.summaries = ["The user keeps Marzipan-zeppelin apples in the cellar."]
        with serve_model(model) as server:
            _use_model(app, settings, server.url)
            me = await register(client)
            sid = (await _say(app, client, me, "Which apples keep best?"))["sessionId"]
            await _say(app, client, me, "And pears?", sid)
            ((through, text, sealed, stored_model),) = await _stored(app, sid)
            assert (through, text, stored_model) == (2, "", "test-model")
            assert sealed is not None and b"Marzipan" not in bytes(sealed)
            await _say(app, client, me, "And plums?", sid)
            assert _summary_in(model.requests[-1]) == (
                "The user keeps Marzipan-zeppelin apples in the cellar."
            )

    async def test_key_rotation_seals_a_summary_again(self, app, client, settings):
        model = FakeModel()
        model.summaries = ["Rotating walrus facts."]
        with serve_model(model) as server:
            _use_model(app, settings, server.url)
            me = await register(client)
            sid = (await _say(app, client, me, "Tell me about walruses?"))["sessionId"]
            await _say(app, client, me, "And narwhals?", sid)
        engine = create_engine(settings.model_copy(update={"encryption_keys": f"{KEY_2},{KEY_1}"}))
        try:
            sm = create_sessionmaker(engine)
            assert (await keys.remaining(sessionmaker=sm))["path_summary"] >= 1
            report = await keys.rotate(sessionmaker=sm, batch_size=10)
            assert report.rewritten.get("path_summary", 0) >= 1
            assert (await keys.remaining(sessionmaker=sm))["path_summary"] == 0
            async with sm() as db:
                query = sa.select(PathSummary).where(PathSummary.session_id == sid)
                (summary,) = (await db.execute(query)).scalars().all()
                assert (summary.key_id, summary.text) == ("k2", "Rotating walrus facts.")
        finally:
            await engine.dispose()
