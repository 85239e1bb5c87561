"""PUBLISH_BACKEND=webhook against a real receiving server that checks the signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.assistant.base import TurnInput
from app.assistant.builtin import PUBLISHED, QUESTION
from app.assistant.factory import build_assistant
from app.conversations.models import ChatSession
from app.core.clock import FrozenClock
from app.core.config import Settings
from tests.assistant.localserver import LocalServer, serve
from tests.assistants import CollectingOutput
from tests.conftest import chat, register

pytestmark = pytest.mark.storage

SECRET = "whsec-" + "k" * 32


class Receiver:
    """A publishing service: verifies the signature, dedupes on the idempotency key."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.posts: dict[str, str] = {}  # idempotency key -> external id
        self.fail_next = 0

    async def __call__(self, request: Request) -> Response:
        body = await request.body()
        self.received.append((dict(request.headers), body))
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-chatkeep-signature", "")):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        if self.fail_next:
            self.fail_next -= 1
            return JSONResponse({"error": "try later"}, status_code=503)
        key = request.headers["idempotency-key"]
        external = self.posts.setdefault(key, f"ext-{len(self.posts) + 1}")
        return JSONResponse({"id": external}, status_code=201)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, LocalServer]]:
    rx = Receiver(SECRET)
    with serve({"/hooks/posts": rx}) as server:
        yield rx, server


def use_webhook(app: FastAPI, settings: Settings, server: LocalServer, secret: str) -> None:
    app.state.assistant = build_assistant(
        settings.model_copy(
            update={
                "publish_backend": "webhook",
                "publish_webhook_url": f"{server.url}/hooks/posts",
                "publish_webhook_secret": secret,
            }
        )
    )


async def _drafts(client: httpx.AsyncClient, headers: dict[str, str], sid: str) -> list[Any]:
    r = await client.get(f"/api/sessions/{sid}/drafts", headers=headers)
    drafts: list[Any] = r.json()["drafts"]
    return drafts


async def _posts(client: httpx.AsyncClient, headers: dict[str, str]) -> list[Any]:
    posts: list[Any] = (await client.get("/api/posts", headers=headers)).json()["posts"]
    return posts


async def test_webhook_gets_a_signed_post(
    app: FastAPI,
    settings: Settings,
    client: httpx.AsyncClient,
    receiver: tuple[Receiver, LocalServer],
) -> None:
    rx, server = receiver
    use_webhook(app, settings, server, SECRET)
    headers = await register(client)
    r = await chat(client, headers, "Create a Facebook post about Diwali with image")
    sid, image_url = r.json()["sessionId"], r.json()["imageUrl"]
    (draft,) = await _drafts(client, headers, sid)

    r = await chat(client, headers, "yes", session_id=sid)
    assert r.json()["reply"] == PUBLISHED

    ((sent_headers, raw),) = rx.received
    body = json.loads(raw)
    assert sent_headers["idempotency-key"] == draft["id"]
    assert int(sent_headers["x-chatkeep-timestamp"]) == body["timestamp"]
    assert body["text"] == draft["versions"][0]["text"]
    assert body["platform"] == "facebook"
    assert body["draftId"] == draft["id"]
    image = (await client.get(image_url, headers=headers)).content
    assert base64.b64decode(body["image"]["base64"]) == image
    assert body["image"]["contentType"] == "image/png"

    (post,) = await _posts(client, headers)
    assert post["publisher"] == "webhook"
    assert post["externalId"] == "ext-1"
    assert post["id"] == body["id"]


async def test_failed_publish_leaves_the_draft_pending_and_retries_idempotently(
    app: FastAPI,
    settings: Settings,
    client: httpx.AsyncClient,
    receiver: tuple[Receiver, LocalServer],
) -> None:
    rx, server = receiver
    use_webhook(app, settings, server, SECRET)
    rx.fail_next = 1
    headers = await register(client)
    sid = (await chat(client, headers, "Write a LinkedIn post about our new office")).json()[
        "sessionId"
    ]

    r = await chat(client, headers, "post it", session_id=sid)
    reply = r.json()["reply"]
    assert reply != PUBLISHED
    assert "could not publish" in reply and "503" in reply
    (draft,) = await _drafts(client, headers, sid)
    assert draft["status"] == "pending"
    assert await _posts(client, headers) == []

    r = await chat(client, headers, "yes", session_id=sid)
    assert r.json()["reply"] == PUBLISHED
    keys = {h["idempotency-key"] for h, _ in rx.received}
    ids = {json.loads(b)["id"] for _, b in rx.received}
    assert len(rx.received) == 2 and len(keys) == 1 and len(ids) == 1
    (post,) = await _posts(client, headers)
    assert post["draftId"] == draft["id"]


async def test_a_receiver_rejects_a_wrong_signature(
    app: FastAPI,
    settings: Settings,
    client: httpx.AsyncClient,
    receiver: tuple[Receiver, LocalServer],
) -> None:
    rx, server = receiver
    use_webhook(app, settings, server, "not-the-receivers-secret-" + "x" * 20)
    headers = await register(client)
    sid = (await chat(client, headers, "Tweet about our summer sale")).json()["sessionId"]
    r = await chat(client, headers, "yes", session_id=sid)
    assert "401" in r.json()["reply"]
    (draft,) = await _drafts(client, headers, sid)
    assert draft["status"] == "pending"
    assert rx.posts == {}


async def test_publishing_again_after_a_lost_commit_sends_the_same_post(
    app: FastAPI,
    settings: Settings,
    client: httpx.AsyncClient,
    sessionmaker: Any,
    clock: FrozenClock,
    receiver: tuple[Receiver, LocalServer],
) -> None:
    """The webhook accepted the post, then our transaction was lost (a crash before the
    commit). The draft is still pending; "yes" again sends the same id and key, and we end
    with one post here and one at the receiver."""
    rx, server = receiver
    use_webhook(app, settings, server, SECRET)
    headers = await register(client)
    sid = (await chat(client, headers, "Create a Facebook post about Diwali")).json()["sessionId"]

    async with sessionmaker() as db:
        user_id = (
            await db.execute(sa.select(ChatSession.user_id).where(ChatSession.id == sid))  # type: ignore[arg-type]
        ).scalar_one()
        turn = TurnInput(
            user_id=user_id,
            session_id=sid,
            message_seq=3,
            parent_seq=2,  # the reply that offered the draft: the active branch
            history=[],
            message="yes",
            context=None,
            now=clock.now(),
        )
        assistant = app.state.assistant
        prepared = await assistant.prepare(db=db, turn=turn)
        await db.commit()  # as the opening transaction does (prepare writes nothing)
        out = CollectingOutput()
        await assistant.generate(turn=turn, prepared=prepared, out=out, reader=sessionmaker)
        assert out.text == PUBLISHED
        # ... and the process died here, before the closing transaction.

    (draft,) = await _drafts(client, headers, sid)
    assert draft["status"] == "pending"

    r = await chat(client, headers, "yes", session_id=sid)
    assert r.json()["reply"] == PUBLISHED
    assert len(rx.received) == 2
    assert len({h["idempotency-key"] for h, _ in rx.received}) == 1
    assert len(rx.posts) == 1
    (post,) = await _posts(client, headers)
    assert post["externalId"] == "ext-1"

    # And once published, "yes" has nothing left to publish.
    r = await chat(client, headers, "yes", session_id=sid)
    assert r.json()["reply"] != PUBLISHED
    assert len(rx.received) == 2
    r = await chat(client, headers, "regenerate the previous post", session_id=sid)
    assert r.json()["reply"].endswith(QUESTION)


def test_webhook_backend_needs_its_url_and_secret(settings: Settings) -> None:
    with pytest.raises(ValueError, match="PUBLISH_WEBHOOK_URL and PUBLISH_WEBHOOK_SECRET"):
        build_assistant(settings.model_copy(update={"publish_backend": "webhook"}))
