"""The draft ledger's services against PostgreSQL: export shape, idempotent publication,
one pending draft per conversation, posts paging, scoping by user."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.conversations.models import ChatSession
from app.core.clock import FrozenClock
from app.drafts import ledger
from app.drafts.models import PostDraft, PublishedPost
from tests.conftest import chat, register

pytestmark = pytest.mark.storage


async def _conversation(client: httpx.AsyncClient, text: str) -> str:
    headers = await register(client)
    sid: str = (await chat(client, headers, text)).json()["sessionId"]
    return sid


async def _owner(sessionmaker: Any, sid: str) -> uuid.UUID:
    async with sessionmaker() as db:
        owner: uuid.UUID = (
            await db.execute(sa.select(ChatSession.user_id).where(ChatSession.id == sid))  # type: ignore[arg-type]
        ).scalar_one()
    return owner


async def _head(db: Any, sid: str) -> int:
    """The head: what the next message's turn reads the ledger from."""
    head: int = (
        await db.execute(sa.select(ChatSession.head_seq).where(ChatSession.id == sid))  # type: ignore[arg-type]
    ).scalar_one()
    return head


async def test_export_drafts_is_json_ready_camel_case(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    headers = await register(client)
    r = await chat(
        client, headers, "Create a Facebook post about Diwali with image", context="Acme"
    )
    sid = r.json()["sessionId"]
    await chat(client, headers, "try again", session_id=sid)
    await chat(client, headers, "yes", session_id=sid)
    owner = await _owner(sessionmaker, sid)

    async with sessionmaker() as db:
        exported = await ledger.export_drafts(db, owner, sid)
        assert await ledger.export_drafts(db, uuid.uuid4(), sid) == []
    json.dumps(exported)  # plain JSON types only
    (draft,) = exported
    assert draft["sessionId"] == sid
    assert draft["requestMessageSeq"] == 1
    assert draft["context"] == "Acme"
    assert draft["status"] == "published"
    assert [v["version"] for v in draft["versions"]] == [1, 2]
    assert draft["versions"][1]["imageUrl"].startswith("/api/images/")
    assert draft["publishedPost"]["version"] == 2
    assert draft["publishedPost"]["text"] == draft["versions"][1]["text"]


async def test_publishing_twice_records_one_post(
    client: httpx.AsyncClient, sessionmaker: Any, clock: FrozenClock
) -> None:
    sid = await _conversation(client, "Write a LinkedIn post about our new office")
    owner = await _owner(sessionmaker, sid)

    async def publish() -> tuple[uuid.UUID, bool]:
        async with sessionmaker() as db:
            draft = await ledger.pending_draft(session=db, user_id=owner, session_id=sid)
            assert draft is not None
            version = await ledger.draft_version(
                session=db, user_id=owner, draft_id=draft.id, version=draft.current_version
            )
            assert version is not None
            post, created = await ledger.record_publication(
                session=db,
                draft=draft,
                version=version,
                publisher="local",
                external_id=None,
                now=clock.now(),
            )
            await asyncio.sleep(0.05)  # hold the row so the other insert has to wait
            await db.commit()
            return post.id, created

    # Two transactions at once: the unique draft_id makes the second one find the first.
    results = await asyncio.gather(publish(), publish())
    assert len({r[0] for r in results}) == 1
    assert sorted(r[1] for r in results) == [False, True]
    async with sessionmaker() as db:
        count = (await db.execute(sa.select(sa.func.count()).select_from(PublishedPost))).scalar()
    assert count == 1


async def test_one_pending_draft_per_conversation_is_enforced_by_the_database(
    client: httpx.AsyncClient, sessionmaker: Any, clock: FrozenClock
) -> None:
    sid = await _conversation(client, "Create a Facebook post about Diwali")
    owner = await _owner(sessionmaker, sid)
    async with sessionmaker() as db:
        db.add(
            PostDraft(
                id=uuid.uuid4(),
                user_id=owner,
                session_id=sid,
                request_message_seq=1,
                opened_message_seq=1,
                platform="x",
                topic="sneaky",
                status="pending",
                current_version=1,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        with pytest.raises(IntegrityError):
            await db.flush()


async def test_posts_page_newest_first(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    headers = await register(client)
    topics = ["Diwali", "our bakery", "our new office"]
    for topic in topics:
        sid = (await chat(client, headers, f"Create a Facebook post about {topic}")).json()[
            "sessionId"
        ]
        await chat(client, headers, "yes", session_id=sid)
        clock.advance(60)

    first = (await client.get("/api/posts?limit=2", headers=headers)).json()
    assert len(first["posts"]) == 2 and first["nextCursor"]
    rest = (
        await client.get(f"/api/posts?limit=2&cursor={first['nextCursor']}", headers=headers)
    ).json()
    assert rest["nextCursor"] is None
    texts = [p["text"] for p in first["posts"] + rest["posts"]]
    order = [next(t for t in topics if t.lower() in text.lower()) for text in texts]
    assert order == list(reversed(topics))
    published = [p["publishedAt"] for p in first["posts"] + rest["posts"]]
    assert published == sorted(published, reverse=True)

    bad = await client.get("/api/posts?cursor=nonsense", headers=headers)
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_cursor"


async def test_drafts_outlive_their_draft_time(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """A day later, in the same (restored) conversation, the request is still there."""
    headers = await register(client)
    sid = (await chat(client, headers, "Tweet about our summer sale")).json()["sessionId"]
    clock.advance(timedelta(days=1).total_seconds())
    r = await chat(client, headers, "regenerate the previous post", session_id=sid)
    # The conversation had expired: the message starts a new one, with no drafts...
    assert r.json()["expiredSessionId"] == sid
    assert "no previous post" in r.json()["reply"].lower()
    # ...until the old one is restored.
    assert (await client.post(f"/api/sessions/{sid}/restore", headers=headers)).status_code == 200
    r = await chat(client, headers, "regenerate the previous post", session_id=sid)
    assert r.json()["sessionId"] == sid
    assert "Would you like to post this" in r.json()["reply"]


async def test_a_turn_reads_the_pending_and_the_latest_draft_with_their_versions(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    headers = await register(client)
    first = await chat(client, headers, "Write a LinkedIn post about our new office")
    sid = first.json()["sessionId"]
    owner = await _owner(sessionmaker, sid)
    async with sessionmaker() as db:
        read = await ledger.turn_ledger(
            session=db, user_id=owner, session_id=sid, from_seq=await _head(db, sid)
        )
        assert await ledger.turn_ledger(
            session=db, user_id=uuid.uuid4(), session_id=sid, from_seq=await _head(db, sid)
        ) == (ledger.EMPTY_TURN_LEDGER)
    pending = read.state.pending
    assert pending is not None and read.state.latest is not None
    assert read.state.latest.id == pending.id
    assert read.pending_version is not None and read.state.latest_version is not None
    assert read.pending_version.version == pending.current_version == 1

    await chat(client, headers, "try again", session_id=sid)  # version 2 of the same draft
    await chat(client, headers, "yes", session_id=sid)  # published: nothing pending
    await chat(client, headers, "Now a Facebook post about Diwali", session_id=sid)
    async with sessionmaker() as db:
        read = await ledger.turn_ledger(
            session=db, user_id=owner, session_id=sid, from_seq=await _head(db, sid)
        )
        drafts = (
            (await db.execute(sa.select(PostDraft).where(PostDraft.session_id == sid)))  # type: ignore[arg-type]
            .scalars()
            .all()
        )
    assert len(drafts) == 2
    newest = max(drafts, key=lambda d: d.opened_message_seq)
    assert read.state.pending is not None and read.state.pending.id == newest.id
    assert read.state.latest is not None and read.state.latest.id == newest.id
    assert read.state.latest_version is not None
    assert read.state.latest_version.draft_id == newest.id

    await chat(client, headers, "cancel", session_id=sid)
    async with sessionmaker() as db:
        read = await ledger.turn_ledger(
            session=db, user_id=owner, session_id=sid, from_seq=await _head(db, sid)
        )
    assert read.state.pending is None and read.pending_version is None
    assert read.state.latest is not None and read.state.latest.id == newest.id
    assert read.state.latest_version is not None
