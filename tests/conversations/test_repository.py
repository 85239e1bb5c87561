"""A repository built for one owner reaches that owner's conversations only; the operator
repository reaches anyone's; the one delete path records each deletion for its owner."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col

from app.auth.models import User
from app.conversations import trash
from app.conversations.ids import new_session_id
from app.conversations.models import AuditAction, AuditEvent, ChatSession
from app.conversations.repository import (
    ConversationOperatorRepository,
    ConversationRepository,
)
from app.core.db import unit_of_work

pytestmark = pytest.mark.storage

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def _user_with_conversation(sessionmaker: Any, title: str) -> tuple[uuid.UUID, str]:
    user, sid = uuid.uuid4(), new_session_id(NOW)
    async with unit_of_work(sessionmaker) as db:
        db.add(User(id=user, email=f"{user}@example.com", hashed_password="x"))
        await db.flush()
        db.add(ChatSession(id=sid, user_id=user, title=title, created_at=NOW, last_activity_at=NOW))
    return user, sid


async def _exists(sessionmaker: Any, sid: str) -> bool:
    async with sessionmaker() as db:
        found = await db.scalar(sa.select(sa.func.count()).where(col(ChatSession.id) == sid))
    return bool(found)


async def test_an_owners_repository_never_reaches_another_users_conversation(sessionmaker):
    alice, alices = await _user_with_conversation(sessionmaker, "Alice's")
    bob, bobs = await _user_with_conversation(sessionmaker, "Bob's")

    with pytest.raises(TypeError):
        ConversationRepository(None, None)  # type: ignore[arg-type]

    async with unit_of_work(sessionmaker) as db:
        repo = ConversationRepository(db, alice)
        assert await repo.get(bobs) is None
        assert (await repo.get(alices)).title == "Alice's"
        removed = await trash.delete_conversations(
            session=db,
            repository=repo,
            ids=[bobs, alices],
            now=NOW,
            actor=trash.Actor(user_id=alice),
            action=AuditAction.DELETE,
        )
    assert [(r.id, r.user_id, r.title) for r in removed] == [(alices, alice, "Alice's")]
    assert not await _exists(sessionmaker, alices)
    assert await _exists(sessionmaker, bobs)

    async with unit_of_work(sessionmaker) as db:
        removed = await trash.delete_conversations(
            session=db,
            repository=ConversationOperatorRepository(db),
            ids=[bobs],
            now=NOW,
            actor=trash.SYSTEM,
            action=AuditAction.ADMIN_DELETE,
        )
    assert [(r.id, r.user_id) for r in removed] == [(bobs, bob)]
    assert not await _exists(sessionmaker, bobs)

    async with sessionmaker() as db:
        trail = (
            await db.execute(
                sa.select(AuditEvent.user_id, AuditEvent.action, AuditEvent.title)
                .where(col(AuditEvent.session_id).in_([alices, bobs]))
                .order_by(col(AuditEvent.id))
            )
        ).all()
    assert [tuple(r) for r in trail] == [
        (alice, AuditAction.DELETE, "Alice's"),
        (bob, AuditAction.ADMIN_DELETE, "Bob's"),
    ]
