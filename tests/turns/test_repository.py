"""The turn's prebuilt statements follow the tables' metadata, and name the owner."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
import sqlalchemy as sa

from app.conversations.models import ChatMessage, ChatSession
from app.core.db import metadata
from app.turns import repository
from app.turns.models import ChatTurn
from app.turns.problems import interrupted_problem
from app.turns.repository import TurnOperatorRepository, TurnRepository
from tests.assistants import SlowAssistant
from tests.conftest import register
from tests.turns.conftest import chat_body

_INSERT = re.compile(r"INSERT INTO (\w+) \(([^)]*)\)")
# Statements over the turns a process runs, of several owners: each turn comes with its
# owner, as a pair.
_PAIRED = {"HEARTBEAT", "SAVE_PARTIALS"}


def _stored_columns(table: sa.Table) -> set[str]:
    return {c.name for c in table.columns if c.computed is None}


def test_every_prebuilt_insert_names_every_column_of_its_table():
    """A column added to a model (with a server or model default) that an INSERT here
    leaves out fails this test: the statements come from the metadata, not a copy."""
    seen = set()
    for name, stmt in repository.PREBUILT.items():
        for table, columns in _INSERT.findall(stmt.text):
            named = [c.strip() for c in columns.split(",")]
            assert len(named) == len(set(named)), name
            assert set(named) == _stored_columns(metadata.tables[table]), (name, table)
            seen.add(table)
    assert seen == {"chat_session", "chat_message", "chat_turn"}


def test_defaults_come_from_the_columns():
    session: sa.Table = ChatSession.__table__  # type: ignore[attr-defined]
    given = ("id", "user_id", "created_at", "last_activity_at")
    row = repository.full_row(session, {k: sa.bindparam(k) for k in given})
    # Not given: each column's server default, else its model default, else NULL.
    rendered = {
        k: str(v.compile(dialect=repository.DIALECT, compile_kwargs={"literal_binds": True}))
        for k, v in row.items()
        if k not in given
    }
    assert rendered["pinned"] == "false"
    assert rendered["temporary"] == "false"
    assert rendered["tags"] == "'{}'::varchar[]"
    assert rendered["prompt_tokens"] == rendered["completion_tokens"] == "0"
    assert rendered["status"] == "'active'"
    assert rendered["title"] == "'New conversation'"
    assert rendered["message_count"] == "0"
    assert rendered["archived_at"] == "NULL"
    assert "title_tsv" not in row  # computed by the database


def test_a_column_without_value_or_default_refuses_the_statement():
    table = sa.Table(
        "probe",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("needed", sa.Text, nullable=False),
        sa.Column("counted", sa.Integer, nullable=False, server_default="7"),
    )
    with pytest.raises(LookupError, match=r"probe\.needed"):
        repository.full_row(table, {"id": sa.bindparam("id")})
    row = repository.full_row(table, {"id": sa.bindparam("id"), "needed": sa.bindparam("n")})
    assert set(row) == {"id", "needed", "counted"}
    with pytest.raises(LookupError, match="no column"):
        repository.full_row(table, {"nope": sa.bindparam("x")})


def test_no_prebuilt_statement_holds_a_python_value():
    """Constants are SQL literals; every parameter is named by the caller."""
    for name, stmt in repository.PREBUILT.items():
        assert not re.search(r":\w+_\d+\b", stmt.text), name


def test_owner_statements_name_the_owner():
    for name, stmt in repository.PREBUILT.items():
        if name in _PAIRED:
            assert "t.user_id = v.user_id" in stmt.text, name
            continue
        # Every read or update of a tenant table (each FROM, JOIN and UPDATE of one) comes
        # with its owner condition; every row inserted carries the owner.
        reads = re.findall(r"(?:FROM|UPDATE|JOIN) chat_\w+", stmt.text)
        assert stmt.text.count("user_id = :user_id") >= len(reads), name
        for _table, columns in _INSERT.findall(stmt.text):
            assert "user_id" in columns, name
        assert ":user_id" in stmt.text, name


def test_statuses_and_roles_are_the_models():
    text = " ".join(s.text for s in repository.PREBUILT.values())
    assert "'generating'" in text and "'archived'" in text and "'active'" in text
    assert "'user'" in text and "'assistant'" in text
    for table in (ChatTurn, ChatMessage, ChatSession):
        assert table.__table__ is metadata.tables[table.__tablename__]  # type: ignore[attr-defined]


@pytest.mark.storage
async def test_another_users_repository_neither_reads_nor_fails_a_turn(client, app, sessionmaker):
    slow = SlowAssistant(words=("a", "b"), delay=30)
    app.state.assistant = slow
    headers = await register(client)
    task = asyncio.create_task(client.post("/api/chat", json=chat_body("hi"), headers=headers))
    try:
        await asyncio.wait_for(slow.started.wait(), 30)
        async with sessionmaker() as db:
            turn = (await db.execute(sa.select(ChatTurn))).scalar_one()
            stranger = TurnRepository(db, uuid.uuid4())
            assert await stranger.generating(turn.session_id) is None
            assert await stranger.in_session(session_id=turn.session_id, turn_id=turn.id) is None
            assert await stranger.fresh(turn.id) is None
            assert await stranger.lock_session(turn.session_id) is None
            failed = await stranger.mark_failed(
                turn_id=turn.id,
                session_id=turn.session_id,
                user_seq=turn.user_seq,
                problem=interrupted_problem(turn.session_id),
                now=turn.started_at,
            )
            assert failed is False
            checkpoints = TurnOperatorRepository(db)
            now = turn.started_at
            assert await checkpoints.heartbeat([(turn.id, uuid.uuid4())], now=now) == []
            saved = await checkpoints.save_partials([(turn.id, uuid.uuid4(), "x")], seconds=5)
            assert saved == set()
            beat = await checkpoints.heartbeat([(turn.id, turn.user_id)], now=now)
            assert [r.id for r in beat] == [turn.id]
            owner = TurnRepository(db, turn.user_id)
            found = await owner.generating(turn.session_id)
            assert found is not None and found.id == turn.id
            await db.rollback()
    finally:
        slow.release.set()
        response = await task
    assert response.status_code == 200
    assert response.json()["reply"] == "ab"
    with pytest.raises(TypeError):
        TurnRepository(None, None)  # type: ignore[arg-type]
