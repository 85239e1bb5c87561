"""Search by emoji and other symbols: looked up through the symbols each message holds,
with the same results as checking every message."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from app.assistant.base import ReplyOutput, TextAssistant, TurnInput
from app.conversations.symbols import MAX_CHARS, UNREAD, symbols_of
from app.history import repository as history_sql
from tests.conftest import chat, register

pytestmark = pytest.mark.storage

FAMILY = "👨\u200d👩\u200d👧"  # one emoji of three people joined by zero-width joiners
THUMB_MEDIUM = "👍🏽"  # a thumb and a skin tone
HEART = "❤️"  # a heart and the emoji presentation selector


@pytest.fixture(params=["planner", "index", "scan"])
def search_plan(request, monkeypatch):
    """The planner's choice, and each way of searching forced (see test_history)."""
    if request.param == "index":
        monkeypatch.setattr(history_sql, "SEARCH_SCAN_MIN_SHARE", 2.0)
        monkeypatch.setattr(history_sql, "SEARCH_SCAN_MIN_TITLE_SHARE", 2.0)
    elif request.param == "scan":
        monkeypatch.setattr(history_sql, "SEARCH_SCAN_MIN_SHARE", 0.0)
        monkeypatch.setattr(history_sql, "SEARCH_SCAN_MIN_TITLE_SHARE", 0.0)
    return request.param


async def test_the_database_and_python_agree_on_every_symbol(sessionmaker):
    """The trigger's `message_symbols` and the search's `symbols_of` read the same class,
    for every code point there is (a term's symbols must be among its message's)."""
    everything = "".join(chr(c) for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF)
    parts = [everything[i : i + MAX_CHARS] for i in range(0, len(everything), MAX_CHARS)]
    stored: set[str] = set()
    async with sessionmaker() as s:
        for part in parts:
            read = await s.execute(sa.text("SELECT message_symbols(:t)"), {"t": part})
            stored |= set(read.scalar_one())
    assert stored == set(symbols_of(everything))
    assert {"🍕", "👍", "🏽", "©", "→", "❤", "、"} <= set(stored)
    assert not {"$", "+", "a", "é", "猫", "\u200d", "\ufe0f"} & set(stored)


async def test_messages_store_their_symbols_when_written(client, sessionmaker):
    me = await register(client)
    sid = (await chat(client, me, f"Lunch {THUMB_MEDIUM} 🍕🍕 and $5")).json()["sessionId"]
    async with sessionmaker() as s:
        rows = (
            await s.execute(
                sa.text(
                    "SELECT role, content_symbols FROM chat_message WHERE session_id = :sid"
                    " ORDER BY seq"
                ),
                {"sid": sid},
            )
        ).all()
    assert sorted(rows[0].content_symbols) == sorted(["👍", "🏽", "🍕"])


async def test_symbol_terms_find_what_a_substring_search_finds(client, clock, search_plan):
    me = await register(client)
    other = await register(client)

    async def start(title: str, message: str) -> str:
        clock.advance(1)
        sid = (await chat(client, me, title)).json()["sessionId"]
        clock.advance(1)
        r = await chat(client, me, message, session_id=sid)
        assert r.status_code == 200, r.text
        return sid

    a = await start(
        "Lunch plans",
        f"Family {FAMILY} photo, thumbs {THUMB_MEDIUM} and 🍕🍔 lunch {HEART} → done © 2026 $5",
    )
    b = await start("Other plans", "🍔 then 🍕 separately, 👍 plain")
    await chat(client, other, "🍕🍔 and 🦩 are not yours")

    async def found(q: str) -> set[str]:
        r = await client.get("/api/sessions", params={"q": q}, headers=me)
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    assert await found(FAMILY) == {a}
    assert await found("👩\u200d👧") == {a}  # part of a joined sequence
    assert await found(THUMB_MEDIUM) == {a}  # the tone too, not just the thumb
    assert await found("👍") == {a, b}
    assert await found("🍕🍔") == {a}  # both symbols, side by side, in this order
    assert await found("🍔🍕") == set()  # b holds both, but not together
    assert await found("🍕 🍔") == {a, b}  # two terms: each anywhere
    assert await found(HEART) == {a}
    assert await found("→") == {a}
    assert await found("©") == {a}
    assert await found("$") == {a}  # an ASCII symbol: checked message by message
    assert await found("photo 🍔") == {a}  # a word and an emoji
    assert await found("plain 🍕") == {b}
    assert await found("🍕 -🍔🍕") == {a, b}
    assert await found("🍕 -🍕🍔") == {b}
    assert await found("🦩") == set()  # only another user's message holds it
    hit = (await client.get("/api/sessions", params={"q": THUMB_MEDIUM}, headers=me)).json()
    assert hit["items"][0]["matchSeq"] == 3
    assert THUMB_MEDIUM in hit["items"][0]["snippet"]["text"]


@dataclass
class LongReplyAssistant(TextAssistant):
    """Answers with a text too long to be read for its symbols, an emoji at its end."""

    name: str = "long"

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        out.write("word " * (MAX_CHARS // 5) + "the end 🦜")


async def test_a_message_too_long_to_read_is_still_found_by_its_symbols(
    app, client, sessionmaker, search_plan
):
    app.state.assistant = LongReplyAssistant()
    me = await register(client)
    long_sid = (await chat(client, me, "tell me a long story")).json()["sessionId"]
    await chat(client, me, "🦜 here, in a short one")
    async with sessionmaker() as s:
        marks = (
            await s.execute(
                sa.text("SELECT content_symbols FROM chat_message WHERE session_id = :sid"),
                {"sid": long_sid},
            )
        ).scalars()
        assert [UNREAD] in list(marks)
    r = await client.get("/api/sessions", params={"q": "🦜"}, headers=me)
    assert r.status_code == 200, r.text
    assert long_sid in {i["id"] for i in r.json()["items"]}
    assert len(r.json()["items"]) == 2
    r = await client.get("/api/sessions", params={"q": "🍕"}, headers=me)
    assert r.json()["items"] == []
