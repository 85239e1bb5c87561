"""The ledger's repository is built for one owner: another user's drafts, posts and
images are missing ones, and it writes no row of another owner."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.drafts.models import PostDraft
from app.drafts.repository import DraftRepository
from tests.conftest import chat, register

pytestmark = pytest.mark.storage


async def test_a_repository_sees_and_writes_only_its_owners_rows(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    headers = await register(client)
    r = await chat(client, headers, "Create a Facebook post about Diwali with image")
    sid = r.json()["sessionId"]
    async with sessionmaker() as db:
        draft = (await db.execute(sa.select(PostDraft))).scalar_one()
        owner = DraftRepository(db, draft.user_id)
        assert (await owner.pending(sid)) is not None
        versions = await owner.versions_of([draft.id])
        assert [v.version for v in versions] == [1]
        image_id = versions[0].image_id
        assert image_id is not None and await owner.image(image_id) is not None

        stranger = DraftRepository(db, uuid.uuid4())
        assert await stranger.pending(sid) is None
        assert await stranger.latest(sid) is None
        assert await stranger.draft(draft.id) is None
        assert await stranger.version(draft.id, 1) is None
        assert list(await stranger.drafts_of(sid)) == []
        assert list(await stranger.versions_of([draft.id])) == []
        assert await stranger.image(image_id) is None
        assert list(await stranger.posts_page(limit=10, before=None)) == []
        with pytest.raises(ValueError, match="another owner"):
            await stranger.add(versions[0])
    with pytest.raises(TypeError):
        DraftRepository(None, None)  # type: ignore[arg-type]
