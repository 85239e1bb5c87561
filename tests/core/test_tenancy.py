"""Ownership is structural: the database refuses a row whose owner differs from the owner
of the conversation, draft or image it points at, and statements built through
`app.core.tenancy` see only their owner's rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col

from app.auth.models import User
from app.conversations.ids import new_session_id
from app.conversations.models import ChatMessage, ChatSession, SweepRun
from app.core.tenancy import owned, owned_by, owned_delete, owned_update
from app.drafts.models import PostDraft, PostDraftVersion, PublishedPost, StoredImage
from app.exports.models import ChatImport
from app.models import metadata
from app.sharing.models import SharedLink
from app.turns.models import ChatTurn

pytestmark = pytest.mark.storage

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Holdings:
    """One user and a conversation, a (closed) draft and an image of theirs."""

    user: uuid.UUID
    session: str
    draft: uuid.UUID
    image: uuid.UUID


async def _holdings(sessionmaker: Any) -> Holdings:
    user, draft, image = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sid = new_session_id(NOW)
    async with sessionmaker() as db, db.begin():
        db.add(User(id=user, email=f"{user}@example.com", hashed_password="x"))
        await db.flush()
        db.add(ChatSession(id=sid, user_id=user, created_at=NOW, last_activity_at=NOW))
        db.add(
            StoredImage(
                id=image,
                user_id=user,
                content_type="image/png",
                data=b"png",
                byte_size=3,
                sha256="0" * 64,
                source="card",
                created_at=NOW,
            )
        )
        await db.flush()
        db.add(_draft(user, sid, draft_id=draft))
    return Holdings(user=user, session=sid, draft=draft, image=image)


def _draft(
    user: uuid.UUID, sid: str, *, draft_id: uuid.UUID | None = None, parent: uuid.UUID | None = None
) -> PostDraft:
    return PostDraft(
        id=draft_id or uuid.uuid4(),
        user_id=user,
        session_id=sid,
        request_message_seq=1,
        opened_message_seq=1,
        parent_draft_id=parent,
        platform="facebook",
        topic="Diwali",
        status="cancelled",  # not pending: any number of them per conversation
        created_at=NOW,
        updated_at=NOW,
    )


def _version(user: uuid.UUID, draft: uuid.UUID, image: uuid.UUID | None = None) -> Any:
    return PostDraftVersion(
        draft_id=draft,
        version=2,
        user_id=user,
        text="Happy Diwali",
        image_id=image,
        source_message_seq=1,
        writer="builtin",
        created_at=NOW,
    )


def _post(
    user: uuid.UUID,
    *,
    session: str | None = None,
    draft: uuid.UUID | None = None,
    image: uuid.UUID | None = None,
) -> PublishedPost:
    return PublishedPost(
        id=uuid.uuid4(),
        user_id=user,
        draft_id=draft,
        session_id=session,
        version=1,
        platform="facebook",
        text="Happy Diwali",
        image_id=image,
        publisher="log",
        published_at=NOW,
    )


# (row built by `me`, pointing at `target`'s conversation, draft or image)
Case = Callable[[Holdings, Holdings], SQLModel]
CASES: dict[str, Case] = {
    "chat_message": lambda me, target: ChatMessage(
        session_id=target.session,
        seq=1,
        user_id=me.user,
        role="user",
        content="hi",
        created_at=NOW,
    ),
    "chat_turn": lambda me, target: ChatTurn(
        user_id=me.user,
        session_id=target.session,
        user_seq=1,
        assistant="builtin",
        started_at=NOW,
        heartbeat_at=NOW,
    ),
    "chat_import": lambda me, target: ChatImport(
        user_id=me.user,
        source_id="chatgpt:1",
        content_hash="0" * 64,
        session_id=target.session,
        imported_at=NOW,
    ),
    "post_draft.session_id": lambda me, target: _draft(me.user, target.session),
    "post_draft.parent_draft_id": lambda me, target: _draft(
        me.user, me.session, parent=target.draft
    ),
    "post_draft_version.draft_id": lambda me, target: _version(me.user, target.draft),
    "post_draft_version.image_id": lambda me, target: _version(me.user, me.draft, target.image),
    "published_post.session_id": lambda me, target: _post(me.user, session=target.session),
    "published_post.draft_id": lambda me, target: _post(me.user, draft=target.draft),
    "published_post.image_id": lambda me, target: _post(me.user, image=target.image),
    "shared_link": lambda me, target: SharedLink(
        user_id=me.user,
        session_id=target.session,
        token=uuid.uuid4().hex,
        title="shared",
        upto_seq=0,
        created_at=NOW,
        refreshed_at=NOW,
    ),
}


async def _insert(sessionmaker: Any, row: SQLModel) -> None:
    async with sessionmaker() as db:
        db.add(row)
        try:
            await db.flush()
        finally:
            await db.rollback()


@pytest.mark.parametrize("case", list(CASES))
async def test_a_row_pointing_at_another_users_row_is_refused(sessionmaker, case):
    alice = await _holdings(sessionmaker)
    bob = await _holdings(sessionmaker)
    build = CASES[case]
    # The same row for the owner is fine: what is refused is only the other owner.
    await _insert(sessionmaker, build(alice, alice))
    await _insert(sessionmaker, build(bob, bob))
    with pytest.raises(IntegrityError) as refused:
        await _insert(sessionmaker, build(bob, alice))
    table, _, column = case.partition(".")
    assert f"fk_{table}_{column or 'session_id'}_user_id_" in str(refused.value)


def test_every_reference_between_tenant_rows_carries_the_owner():
    """A new table that points at a conversation, draft or image must point at
    (id, user_id), like the rest; app_user itself is the owner, not a tenant row."""
    loose = []
    for table in metadata.sorted_tables:
        if "user_id" not in table.c:
            continue
        for fk in table.foreign_key_constraints:
            referred = fk.referred_table
            if referred.name == "app_user" or "user_id" not in referred.c:
                continue
            # A message's parent is a message of the same conversation (the key holds
            # session_id on both sides): its owner is the conversation's, already checked.
            same_conversation = referred is table and "session_id" in fk.column_keys
            if "user_id" not in fk.column_keys and not same_conversation:
                loose.append(f"{table.name}.{fk.column_keys}")
    assert loose == []
    # And every table with a session_id references its conversation, but the audit trail,
    # whose rows outlive the conversations they name.
    with_session = {
        t.name
        for t in metadata.sorted_tables
        if "session_id" in t.c
        and not any(
            fk.referred_table.name == "chat_session" and fk.column_keys == ["session_id", "user_id"]
            for fk in t.foreign_key_constraints
        )
    }
    assert with_session == {"audit_event"}


async def test_deleting_a_conversation_keeps_its_published_post_and_owner(sessionmaker):
    alice = await _holdings(sessionmaker)
    post = _post(alice.user, session=alice.session, draft=alice.draft, image=alice.image)
    async with sessionmaker() as db, db.begin():
        db.add(post)
    async with sessionmaker() as db, db.begin():
        await db.execute(sa.delete(ChatSession).where(col(ChatSession.id) == alice.session))
    async with sessionmaker() as db:
        kept = await db.get(PublishedPost, post.id)
        assert kept is not None
        assert (kept.user_id, kept.session_id, kept.draft_id) == (alice.user, None, None)
        assert kept.image_id == alice.image
        assert await db.get(PostDraft, alice.draft) is None


# ---------------------------------------------------------------------------- queries


async def _messages(sessionmaker: Any, *owners: Holdings) -> None:
    async with sessionmaker() as db, db.begin():
        for who in owners:
            for seq in (1, 2):
                db.add(
                    ChatMessage(
                        session_id=who.session,
                        seq=seq,
                        user_id=who.user,
                        role="user",
                        content="the same words",
                        created_at=NOW,
                    )
                )


async def test_owned_statements_see_and_change_only_the_owners_rows(sessionmaker):
    alice = await _holdings(sessionmaker)
    bob = await _holdings(sessionmaker)
    await _messages(sessionmaker, alice, bob)
    m = ChatMessage.__table__.c  # type: ignore[attr-defined]
    async with sessionmaker() as db, db.begin():
        # Bob's rows match every other condition, and still never come back.
        rows = (
            await db.execute(owned(ChatMessage, alice.user).where(m.content == "the same words"))
        ).scalars()
        assert {(r.user_id, r.session_id) for r in rows} == {(alice.user, alice.session)}
        by_bobs_id = owned(ChatMessage.__table__, alice.user, m.seq).where(
            m.session_id == bob.session
        )
        assert (await db.execute(by_bobs_id)).all() == []
        sessions = (await db.execute(owned(ChatSession, bob.user))).scalars().all()
        assert [s.id for s in sessions] == [bob.session]
        joined = (
            await db.execute(
                sa.select(m.seq)
                .select_from(
                    ChatSession.__table__.join(
                        ChatMessage.__table__,
                        sa.and_(
                            m.session_id == ChatSession.__table__.c.id,
                            owned_by(ChatMessage, alice.user),
                        ),
                    )
                )
                .where(ChatSession.__table__.c.id == bob.session)
            )
        ).all()
        assert joined == []

        changed = await db.execute(
            owned_update(ChatMessage, alice.user)
            .where(m.session_id == bob.session)
            .values(content="changed")
        )
        assert changed.rowcount == 0
        changed = await db.execute(owned_update(ChatMessage, alice.user).values(content="mine"))
        assert changed.rowcount == 2
        deleted = await db.execute(owned_delete(ChatMessage.__table__, alice.user))
        assert deleted.rowcount == 2
    async with sessionmaker() as db:
        left = (await db.execute(sa.select(m.user_id, m.content))).all()
        assert sorted(left) == [(bob.user, "the same words")] * 2


def test_owned_refuses_a_missing_owner_and_a_table_without_one():
    with pytest.raises(TypeError):
        owned(ChatMessage, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        owned(SweepRun, uuid.uuid4())
    with pytest.raises(TypeError):
        owned_delete(SweepRun.__table__, uuid.uuid4())  # type: ignore[attr-defined]


def test_owned_builds_the_same_sql_as_the_filter_by_hand():
    user = uuid.uuid4()
    by_hand = sa.select(ChatMessage).where(col(ChatMessage.user_id) == user)
    assert str(owned(ChatMessage, user)) == str(by_hand)
    table = ChatMessage.__table__  # type: ignore[attr-defined]
    by_hand_cols = sa.select(table.c.seq).where(table.c.user_id == user)
    assert str(owned(table, user, table.c.seq)) == str(by_hand_cols)
