"""Encryption at rest (ENCRYPTION_KEYS): nothing readable in the rows, everything readable
through the app, search on the blind index, and rotation while people chat."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from pydantic import ValidationError
from pypdf import PdfReader

from app.assistant.base import AssistantError, ReplyOutput, TextAssistant, TurnInput
from app.conversations.ids import new_session_id
from app.conversations.models import ChatMessage, ChatSession
from app.core.clock import FrozenClock
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.runtime import PROJECT_ROOT
from app.drafts.models import PostDraftVersion
from app.encryption.config import keyring_for
from app.encryption.crypto import generate_key_line
from app.history import service as history
from app.keys import service as keys
from app.main import create_app
from tests.conftest import chat, register

pytestmark = pytest.mark.storage

KEY_OLD = generate_key_line("old")
KEY_NEW = generate_key_line("new")
SECRET = "Marzipan-zeppelin rendezvous near the lighthouse"
TABLES = (
    "chat_session",
    "chat_message",
    "audit_event",
    "post_draft",
    "post_draft_version",
    "published_post",
    "stored_image",
    "message_search_token",
    "shared_link",
    "path_summary",
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"encryption_keys": KEY_NEW})


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _raw_rows(database_url: str) -> str:
    """Every row of every table with user content, as the database holds it."""
    conn = await asyncpg.connect(_plain(database_url), statement_cache_size=0)
    try:
        parts = []
        for table in TABLES:
            rows = await conn.fetch(f"SELECT row_to_json(t)::text AS j FROM {table} AS t")
            parts.extend(r["j"] for r in rows)
        return "\n".join(parts)
    finally:
        await conn.close()


async def _sql(database_url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(_plain(database_url), statement_cache_size=0)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def _leaks(raw: str, text: str) -> bool:
    lowered = raw.lower()
    return text.lower() in lowered or text.encode().hex() in lowered


async def test_rows_hold_no_plaintext_and_the_api_reads_it_all(
    client: httpx.AsyncClient, database_url: str
) -> None:
    headers = await register(client)
    r = await chat(client, headers, SECRET)
    assert r.status_code == 200, r.text
    sid = r.json()["sessionId"]
    r = await chat(client, headers, "Create a Facebook post about Quokkas with image", sid)
    assert r.status_code == 200, r.text
    image_url = r.json()["imageUrl"]
    assert (await chat(client, headers, "yes", sid)).status_code == 200
    renamed = "Hedgehog almanac"
    r = await client.patch(f"/api/sessions/{sid}", json={"title": renamed}, headers=headers)
    assert r.status_code == 200, r.text
    assert (await client.delete(f"/api/sessions/{sid}", headers=headers)).status_code == 204
    assert (await client.post(f"/api/sessions/{sid}/restore", headers=headers)).status_code == 200

    raw = await _raw_rows(database_url)
    for text in (SECRET, "Marzipan", "lighthouse", "Quokkas", renamed, "Hedgehog"):
        assert not _leaks(raw, text), text
    assert "89504e47" not in raw  # no PNG signature: the image bytes are sealed too
    keyed = await _sql(
        database_url,
        "SELECT (SELECT count(*) FROM chat_message WHERE key_id = 'new') AS m, "
        "(SELECT count(*) FROM post_draft_version WHERE key_id = 'new') AS v, "
        "(SELECT count(*) FROM stored_image WHERE key_id = 'new') AS i, "
        "(SELECT count(*) FROM published_post WHERE key_id = 'new') AS p",
    )
    assert tuple(keyed[0]) >= (6, 1, 1, 1)

    r = await client.get(f"/api/sessions/{sid}", headers=headers)
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["title"] == renamed
    assert detail["messages"][0]["content"] == SECRET
    assert "Quokkas" in detail["messages"][3]["content"]
    drafts = (await client.get(f"/api/sessions/{sid}/drafts", headers=headers)).json()["drafts"]
    assert "Quokkas" in drafts[0]["versions"][0]["text"]
    assert drafts[0]["publishedPost"] is not None
    image = await client.get(image_url, headers=headers)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    listed = (await client.get("/api/sessions", headers=headers)).json()["items"]
    assert listed[0]["title"] == renamed and listed[0]["preview"]
    activity = (await client.get("/api/activity", headers=headers)).json()["items"]
    assert {a["title"] for a in activity} == {renamed}

    # The next turn's context is the opened history: the assistant sees the real drafts.
    r = await chat(client, headers, "regenerate", sid)
    assert r.status_code == 200, r.text
    assert "Quokkas" in r.json()["reply"]


async def test_a_shared_link_shows_plaintext_and_stores_none(
    client: httpx.AsyncClient, database_url: str
) -> None:
    headers = await register(client)
    r = await chat(client, headers, SECRET)
    assert r.status_code == 200, r.text
    sid = r.json()["sessionId"]
    r = await client.post(f"/api/sessions/{sid}/share", json={}, headers=headers)
    assert r.status_code == 201, r.text
    token = r.json()["token"]

    raw = await _raw_rows(database_url)
    assert not _leaks(raw, "Marzipan") and not _leaks(raw, "lighthouse")
    sealed = await _sql(database_url, "SELECT title, key_id FROM shared_link")
    assert sealed[0]["key_id"] == "new" and "Marzipan" not in sealed[0]["title"]

    # Anyone with the link reads the snapshot in plaintext, title and messages.
    shared = (await client.get(f"/api/shared/{token}")).json()
    assert shared["title"].startswith("Marzipan")
    assert shared["messages"][0]["content"] == SECRET
    page = await client.get(f"/s/{token}")
    assert page.status_code == 200 and "lighthouse" in page.text


async def test_search_finds_words_prefixes_cjk_and_emoji(
    client: httpx.AsyncClient, database_url: str
) -> None:
    headers = await register(client)
    other = await register(client)
    a = (await chat(client, headers, "I baked sourdough bread with rosemary")).json()["sessionId"]
    b = (await chat(client, headers, "Notes on Lisbon trams")).json()["sessionId"]
    await chat(client, headers, "我喜欢猫和狗 🎉", b)
    await chat(client, other, "sourdough is mine too")

    async def found(q: str) -> list[dict[str, Any]]:
        r = await client.get("/api/sessions", params={"q": q}, headers=headers)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    hits = await found("sourd")
    assert [h["id"] for h in hits] == [a]
    assert "sourdough" in hits[0]["snippet"]["text"]
    assert hits[0]["matchSeq"] == 1
    assert [h["id"] for h in await found("Rosemary BREAD")] == [a]
    assert [h["id"] for h in await found("lisbon")] == [b]  # the title
    assert [h["id"] for h in await found("猫")] == [b]
    assert [h["id"] for h in await found("🎉")] == [b]
    assert [h["id"] for h in await found("🎉 -🍕")] == [b]
    assert await found("🍕") == []
    cjk = await found("喜欢")
    assert [h["id"] for h in cjk] == [b] and cjk[0]["matchSeq"] == 3
    assert "喜欢" in cjk[0]["snippet"]["text"]
    assert await found("rosemary -bread") == []
    assert {h["id"] for h in await found("rosemary or trams")} == {a, b}
    assert await found("focaccia") == []
    # Sealed messages keep no plaintext symbols: the blind index found the emoji above.
    conn = await asyncpg.connect(dsn=_plain(database_url))
    try:
        stored = await conn.fetch(
            "SELECT content, content_symbols FROM chat_message WHERE session_id = $1", b
        )
    finally:
        await conn.close()
    assert stored and all(r["content"] == "" and r["content_symbols"] == [] for r in stored)

    zf = zipfile.ZipFile(
        io.BytesIO((await client.get("/api/export?format=zip&q=sourd", headers=headers)).content)
    )
    exported = json.loads(zf.read("conversations.json"))["conversations"]
    assert [c["id"] for c in exported] == [a]


async def test_exports_are_plaintext_for_the_owner(client: httpx.AsyncClient) -> None:
    headers = await register(client)
    sid = (await chat(client, headers, SECRET)).json()["sessionId"]

    r = await client.get(f"/api/sessions/{sid}/export?format=json", headers=headers)
    assert r.status_code == 200, r.text
    doc = r.json()["conversation"]
    assert doc["title"].startswith("Marzipan") and doc["messages"][0]["content"] == SECRET

    r = await client.get(f"/api/sessions/{sid}/export?format=pdf", headers=headers)
    assert r.status_code == 200, r.text
    text = "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(r.content)).pages)
    assert "lighthouse" in " ".join(text.split())

    r = await client.get("/api/export?format=zip", headers=headers)
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    convs = json.loads(zf.read("conversations.json"))["conversations"]
    assert convs[0]["messages"][0]["content"] == SECRET
    pdfs = [n for n in zf.namelist() if n.endswith(".pdf")]
    assert pdfs and pdfs[0].startswith("conversations/marzipan-zeppelin")


async def test_ciphertext_moved_to_another_user_does_not_open(
    client: httpx.AsyncClient, database_url: str
) -> None:
    alice = await register(client)
    bob = await register(client)
    a = (await chat(client, alice, SECRET)).json()["sessionId"]
    b = (await chat(client, bob, "nothing to see")).json()["sessionId"]
    await _sql(
        database_url,
        "UPDATE chat_message AS t SET content_sealed = s.content_sealed, key_id = s.key_id "
        "FROM chat_message AS s WHERE s.session_id = $1 AND s.seq = 1 "
        "AND t.session_id = $2 AND t.seq = 1",
        a,
        b,
    )
    r = await client.get(f"/api/sessions/{b}", headers=bob)
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "decryption_failed"
    assert "Traceback" not in r.text
    # Alice's own row still opens.
    assert (await client.get(f"/api/sessions/{a}", headers=alice)).json()["messages"][0][
        "content"
    ] == SECRET


@pytest.fixture
async def second_app(settings: Settings, clock: FrozenClock) -> Any:
    """Another app on the same database with other ENCRYPTION_KEYS."""

    async def start(keys_text: str | None) -> AsyncIterator[httpx.AsyncClient]:
        other = create_app(
            settings.model_copy(update={"encryption_keys": keys_text}),
            clock=clock,
            migrate=False,
            run_sweeper=False,
        )
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield c

    return start


async def test_a_missing_or_wrong_key_is_a_clear_problem(
    client: httpx.AsyncClient, second_app: Any
) -> None:
    headers = await register(client)
    sid = (await chat(client, headers, SECRET)).json()["sessionId"]
    for keys_text, code in (
        (None, "encryption_key_missing"),
        (generate_key_line("other"), "encryption_key_missing"),
        (generate_key_line("new"), "decryption_failed"),  # same id, another key
    ):
        async for other in second_app(keys_text):
            r = await other.get(f"/api/sessions/{sid}", headers=headers)
            assert r.status_code == 503, r.text
            assert r.json()["code"] == code
            assert "ENCRYPTION_KEYS" in r.json()["detail"] or code == "decryption_failed"


def test_bad_keys_are_refused_at_start_up() -> None:
    for bad in ("nocolon", "k1:short", f"{KEY_NEW},{KEY_NEW}", "bad id!:" + "A" * 43):
        with pytest.raises(ValidationError, match="ENCRYPTION_KEYS"):
            Settings(encryption_keys=bad)
    assert keyring_for(Settings(encryption_keys=f"{KEY_NEW}, {KEY_OLD}")) is not None


async def _seed_old_rows(
    settings: Settings, clock: FrozenClock, user_id: uuid.UUID, n: int, keys_text: str | None
) -> list[str]:
    """Conversations written by an instance on the old key (or with encryption off)."""
    engine = create_engine(settings.model_copy(update={"encryption_keys": keys_text}))
    sm = create_sessionmaker(engine)
    ids = []
    try:
        async with sm() as db:
            for i in range(n):
                s = ChatSession(
                    id=new_session_id(clock.now()),
                    user_id=user_id,
                    title=f"Old talk {i} about walruses",
                    created_at=clock.now(),
                    last_activity_at=clock.now(),
                    message_count=2,
                    head_seq=2,
                )
                db.add(s)
                await db.flush()
                db.add_all(
                    ChatMessage(
                        session_id=s.id,
                        seq=seq,
                        parent_seq=seq - 1 or None,
                        depth=seq,
                        user_id=user_id,
                        role="user" if seq == 1 else "assistant",
                        content=f"walrus note {i}.{seq}",
                        created_at=clock.now(),
                    )
                    for seq in (1, 2)
                )
                ids.append(s.id)
            await db.commit()
    finally:
        await engine.dispose()
    return ids


async def _user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> uuid.UUID:
    return uuid.UUID((await client.get("/users/me", headers=headers)).json()["id"])


@pytest.fixture
def rotating_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"encryption_keys": f"{KEY_NEW},{KEY_OLD}"})


@pytest.fixture
async def app(
    rotating_settings: Settings, clock: FrozenClock, database_url: str, _process_app: Any
) -> Any:
    """The app knows the new key (first) and the old one, as during a rotation. The shared
    app of this process (which knows no key) takes no job meanwhile: a queued rotation is
    this app's to run."""
    from tests.conftest import _truncate

    await _truncate(database_url)
    application: FastAPI = create_app(
        rotating_settings, clock=clock, migrate=False, run_sweeper=False
    )
    async with _process_app.jobs_paused(), application.router.lifespan_context(application):
        yield application


async def test_rotation_while_chatting_loses_nothing(
    client: httpx.AsyncClient,
    app: FastAPI,
    settings: Settings,
    clock: FrozenClock,
    database_url: str,
) -> None:
    headers = await register(client)
    user_id = await _user_id(client, headers)
    old = await _seed_old_rows(settings, clock, user_id, 12, KEY_OLD)
    legacy = await _seed_old_rows(settings, clock, user_id, 4, None)  # from before encryption
    assert (await _sql(database_url, "SELECT count(*) FROM chat_message WHERE key_id IS NULL"))[0][
        0
    ] == 8
    before = await keys.remaining(sessionmaker=app.state.sessionmaker)
    assert before["chat_message"] == 32 and before["chat_session"] == 16
    # Before the rotation, search finds rows on the old key and plaintext rows alike.
    r = await client.get("/api/sessions", params={"q": "walr", "limit": 100}, headers=headers)
    assert len(r.json()["items"]) == 16
    assert {i["snippet"]["text"] for i in r.json()["items"]} >= {"walrus note 0.1"}

    sent: list[tuple[str, str]] = []

    async def chatting() -> None:
        for i, sid in enumerate(old[:6] + legacy[:2]):
            text = f"fresh line {i} about narwhals"
            r = await chat(client, headers, text, sid)
            assert r.status_code == 200, r.text
            sent.append((r.json()["sessionId"], text))
            await asyncio.sleep(0)

    report, _ = await asyncio.gather(
        keys.rotate(sessionmaker=app.state.sessionmaker, batch_size=3), chatting()
    )
    assert report.key_id == "new"
    assert sum(report.rewritten.values()) >= 48
    assert set((await keys.remaining(sessionmaker=app.state.sessionmaker)).values()) == {0}
    keyed = await _sql(
        database_url,
        "SELECT DISTINCT key_id FROM chat_message UNION SELECT DISTINCT key_id FROM chat_session "
        "UNION SELECT DISTINCT key_id FROM message_search_token",
    )
    assert {r[0] for r in keyed} == {"new"}
    raw = await _raw_rows(database_url)
    assert not _leaks(raw, "walrus") and not _leaks(raw, "narwhals")

    for i, sid in enumerate(old + legacy):
        n = i if i < len(old) else i - len(old)
        detail = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
        assert detail["title"] == f"Old talk {n} about walruses"
        assert [m["content"] for m in detail["messages"][:2]] == [
            f"walrus note {n}.1",
            f"walrus note {n}.2",
        ]
    for sid, text in sent:
        detail = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
        assert text in [m["content"] for m in detail["messages"]]
    # Every row is searchable under the new index key, old rows included.
    r = await client.get("/api/sessions", params={"q": "walrus", "limit": 100}, headers=headers)
    assert len(r.json()["items"]) == 16
    r = await client.get("/api/sessions", params={"q": "narwh", "limit": 100}, headers=headers)
    assert len(r.json()["items"]) == 8


class Interrupted(Exception):
    pass


async def test_rotation_resumes_after_an_interruption(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, clock: FrozenClock
) -> None:
    headers = await register(client)
    user_id = await _user_id(client, headers)
    ids = await _seed_old_rows(settings, clock, user_id, 10, KEY_OLD)
    sm = app.state.sessionmaker

    def stop(table: str, done: int) -> None:
        if table == "chat_message" and done >= 4:
            raise Interrupted

    with pytest.raises(Interrupted):
        await keys.rotate(sessionmaker=sm, batch_size=4, on_progress=stop)
    left = await keys.remaining(sessionmaker=sm)
    assert left["chat_session"] == 0 and left["chat_message"] == 16

    seen: list[tuple[str, int]] = []
    report = await keys.rotate(
        sessionmaker=sm, batch_size=4, on_progress=lambda t, n: seen.append((t, n))
    )
    assert report.rewritten == {"chat_message": 16}
    assert seen[-1] == ("chat_message", 16)
    assert set((await keys.remaining(sessionmaker=sm)).values()) == {0}
    again = await keys.rotate(sessionmaker=sm, batch_size=4)
    assert again.rewritten == {}
    detail = (await client.get(f"/api/sessions/{ids[3]}", headers=headers)).json()
    assert detail["messages"][1]["content"] == "walrus note 3.2"


async def test_services_open_what_they_read(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await register(client)
    user_id = await _user_id(client, headers)
    r = await chat(client, headers, "Create a LinkedIn post about kelp forests")
    assert r.status_code == 200, r.text
    async with app.state.sessionmaker() as db:
        page = await history.list_sessions(session=db, user_id=user_id, q="kelp")
        assert page.items[0].title.startswith("Create a LinkedIn")
        version = (await db.execute(sa.select(PostDraftVersion))).scalar_one()
        assert "kelp" in version.text.lower()
        assert version.text_sealed is not None and version.key_id == "new"


async def test_rotate_without_keys_says_so(settings: Settings) -> None:
    engine = create_engine(settings.model_copy(update={"encryption_keys": None}))
    try:
        with pytest.raises(Exception, match="ENCRYPTION_KEYS is not set"):
            await keys.rotate(sessionmaker=create_sessionmaker(engine))
    finally:
        await engine.dispose()


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "ENCRYPTION_KEYS"}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**base, "LOG_LEVEL": "WARNING", **env},
        timeout=120,
        check=False,
    )


async def test_the_cli_generates_keys_and_rotates(
    client: httpx.AsyncClient, settings: Settings, clock: FrozenClock, database_url: str
) -> None:
    made = _cli("keys", "generate", "--id", "k2027")
    assert made.returncode == 0, made.stderr
    line = made.stdout.strip()
    assert line.startswith("k2027:") and keyring_for(Settings(encryption_keys=line)) is not None

    bad = _cli("keys", "rotate", ENCRYPTION_KEYS="k1:short")
    assert bad.returncode == 2
    assert "ENCRYPTION_KEYS entry 1" in bad.stderr and "Traceback" not in bad.stderr

    headers = await register(client)
    await _seed_old_rows(settings, clock, await _user_id(client, headers), 3, KEY_OLD)
    rotated = _cli(
        "keys",
        "rotate",
        "--batch-size",
        "2",
        DATABASE_URL=database_url,
        ENCRYPTION_KEYS=f"{line},{KEY_OLD}",
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "chat_message: 6 rows on the newest key" in rotated.stdout
    assert "every row is on key 'k2027'" in rotated.stdout
    keyed = await _sql(database_url, "SELECT DISTINCT key_id FROM chat_message")
    assert [r[0] for r in keyed] == ["k2027"]


async def test_rotation_queued_from_the_cli_runs_on_a_job_worker(
    client: httpx.AsyncClient,
    app: FastAPI,
    settings: Settings,
    clock: FrozenClock,
    database_url: str,
) -> None:
    """`keys rotate --queue` leaves the batches to whichever job worker takes the job (here
    the app's own, which knows both keys); the job says how many rows it rewrote."""
    headers = await register(client)
    ids = await _seed_old_rows(settings, clock, await _user_id(client, headers), 4, KEY_OLD)
    off = _cli("keys", "rotate", "--queue", DATABASE_URL=database_url)
    assert off.returncode == 1 and "ENCRYPTION_KEYS is not set" in off.stderr

    queued = _cli(
        "keys",
        "rotate",
        "--queue",
        DATABASE_URL=database_url,
        ENCRYPTION_KEYS=f"{KEY_NEW},{KEY_OLD}",
    )
    assert queued.returncode == 0, queued.stderr
    job_id = uuid.UUID(queued.stdout.split("queued as job ", 1)[1].split(";", 1)[0])
    app.state.jobs.wake()
    for _ in range(1200):
        [row] = await _sql(
            database_url,
            "SELECT kind, user_id, status, result, error, progress_done FROM job WHERE id = $1",
            job_id,
        )
        if row["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.05)
    assert row["status"] == "done", row["error"]
    assert row["kind"] == "key_rotation" and row["user_id"] is None
    assert json.loads(row["result"])["rewritten"] == 12  # 4 conversations, 8 messages
    assert row["progress_done"] == 12
    assert set((await keys.remaining(sessionmaker=app.state.sessionmaker)).values()) == {0}
    keyed = await _sql(database_url, "SELECT DISTINCT key_id FROM chat_message")
    assert [r[0] for r in keyed] == ["new"]
    detail = (await client.get(f"/api/sessions/{ids[2]}", headers=headers)).json()
    assert [m["content"] for m in detail["messages"]] == ["walrus note 2.1", "walrus note 2.2"]


@dataclass
class _FailsAfterWriting(TextAssistant):
    """Writes the secret, waits for `release`, then fails."""

    name: str = "fails-after-writing"
    wrote: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        out.write(SECRET)
        self.wrote.set()
        await self.release.wait()
        raise AssistantError("the model went away")


async def test_a_failed_turn_keeps_no_plaintext_partial_reply(app, client, database_url):
    assistant = _FailsAfterWriting()
    app.state.assistant = assistant
    headers = await register(client)
    asking = asyncio.create_task(chat(client, headers, "hello"))
    await asyncio.wait_for(assistant.wrote.wait(), 30)
    await app.state.turns.checkpoint_once()  # followers elsewhere read it while it is written
    conn = await asyncpg.connect(_plain(database_url), statement_cache_size=0)
    try:
        assert await conn.fetchval("SELECT partial_reply FROM chat_turn") == SECRET
        assistant.release.set()
        r = await asking
        assert r.status_code == 502
        row = await conn.fetchrow("SELECT status, partial_reply FROM chat_turn")
    finally:
        await conn.close()
    assert row["status"] == "failed" and row["partial_reply"] is None
