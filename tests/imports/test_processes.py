"""A real server process fed hostile imports: its memory stays bounded and a bystander's
requests keep being answered.

The review's two files of empty objects (a 4.5 MB ZIP of a 99 MB conversations.json, and
a 50 MB raw body) are refused as soon as the conversation budget is passed; before imports
streamed, they took the process from about 180 MB to 2.56 GB and 1.56 GB, and other users
waited up to 11 s. A third file, one conversation of 50 MB of tiny messages, is stopped by
the per-conversation budget (MAX_IMPORT_CONVERSATION_BYTES, 64 MiB by default) instead.
The bound checked is the process's peak resident memory (VmHWM, reset before each file)
staying within `RSS_HEADROOM` of its memory before the file (about 110 MB is measured for
the third file, a few MB for the other two). Then an ordinary large import (800 messages of
32,000 characters, which used to fail with `503 database_unavailable`) goes in.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import sys
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_PASSWORD, _truncate
from tests.processes import ServerProcess

pytestmark = [pytest.mark.process, pytest.mark.storage]

MB = 1024 * 1024
# What the hostile imports may add to the process's peak memory (docs/operations.md).
RSS_HEADROOM = 150 * MB
# A bystander's list of conversations must not stall behind an import (the review saw 11 s).
# The goal is an answer within a second: alone on two cores (load 6 to 15 from other work)
# the slowest of about 200 answers took 0.29 to 0.54 s. With the rest of the suite on the
# same two cores a single answer took 2.2 s once, so nine in ten answers must come within
# the second and every one within BYSTANDER_LIMIT_SECONDS (docs/operations.md).
BYSTANDER_SECONDS = 1.0
BYSTANDER_WITHIN_SHARE = 0.9
BYSTANDER_LIMIT_SECONDS = 5.0


def _reset_peak(pid: int) -> None:
    """Starts VmHWM afresh from the current RSS (Linux: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_bytes(b"5")


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


def _empty_objects(size: int, seed: int) -> bytes:
    """`[{},{},...]` of about `size` bytes, a space after runs of random length so that
    it compresses about 22:1 (under the ZIP ratio guard, as in the review) and not 1000:1."""
    rng = random.Random(seed)
    block = b"".join(b"{}," * rng.randint(1, 12) + b" " for _ in range(40_000))
    parts = [b"["]
    total = 1
    while total < size:
        parts.append(block)
        total += len(block)
    parts.append(b"{}]")
    return b"".join(parts)


def _tiny_messages(size: int) -> bytes:
    """One Chatkeep conversation of about `size` bytes of tiny messages: no count budget
    stops it early (the defaults allow 200,000 messages), the per-conversation one does."""
    at = "2026-01-01T00:00:00Z"
    head = (
        '{"format":"chatkeep.export","version":1,"conversations":[{"id":"big","title":"t",'
        f'"createdAt":"{at}","lastActivityAt":"{at}","messageCount":0,"messages":['
    ).encode()
    one = f'{{"seq":1,"role":"user","content":"x","createdAt":"{at}","metadata":{{}}}}'.encode()
    count = size // (len(one) + 1)
    return head + b",".join([one] * count) + b"]}]}"


def _zip(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return out.getvalue()


@pytest.fixture
async def server(database_url: str, tmp_path: Path):
    await _truncate(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT", "SWEEP"))}
    env.update(
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path),
        SECRET_KEY="import-secret-" + "y" * 40,
        LOG_LEVEL="WARNING",
        SWEEPER_ENABLED="false",
        RATE_LIMIT_ENABLED="false",
    )
    argv = [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", "{port}"]
    proc = ServerProcess(argv, env)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


async def _user(client: httpx.AsyncClient) -> dict[str, str]:
    email = f"import-{uuid.uuid4().hex[:10]}@example.com"
    r = await client.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
    assert r.status_code == 201, r.text
    r = await client.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _bystander(
    client: httpx.AsyncClient, headers: dict[str, str], done: asyncio.Event, times: list[float]
) -> int:
    """Lists the bystander's conversations until `done`, each answer within the limit;
    adds each answer's time to `times` and returns how many came."""
    answers = 0
    while True:
        started = time.monotonic()
        # The client waits longer than the limit, so a slow answer fails with its time.
        r = await client.get("/api/sessions", headers=headers, timeout=2 * BYSTANDER_LIMIT_SECONDS)
        assert r.status_code == 200, r.text
        took = time.monotonic() - started
        assert took < BYSTANDER_LIMIT_SECONDS, f"a bystander waited {took:.2f} s"
        times.append(took)
        answers += 1
        if done.is_set():
            return answers
        await asyncio.sleep(0.05)


async def test_hostile_imports_keep_memory_bounded_and_other_users_answered(server):
    zipped = _zip("conversations.json", _empty_objects(99 * 1000 * 1000, seed=1))
    raw = _empty_objects(50 * 1000 * 1000, seed=2)
    assert 3 * MB < len(zipped) < 8 * MB  # the review's 4.5 MB, give or take

    async with httpx.AsyncClient(base_url=server.base, timeout=120) as client:
        attacker = await _user(client)
        bystander = await _user(client)
        for _ in range(3):  # warm: the first requests load code and fill caches
            assert (await client.get("/api/sessions", headers=bystander)).status_code == 200
        times: list[float] = []

        cases = (
            ("zip", zipped, True, "too_many_conversations"),
            ("raw", raw, False, "too_many_conversations"),
            ("one conversation", _tiny_messages(50 * 1000 * 1000), False, "conversation_too_large"),
        )
        for name, body, multipart, code in cases:
            _reset_peak(server.proc.pid)
            before = _memory(server.proc.pid)
            done = asyncio.Event()
            watcher = asyncio.create_task(_bystander(client, bystander, done, times))
            if multipart:
                r = await client.post(
                    "/api/import",
                    files={"file": ("export.zip", body, "application/zip")},
                    headers=attacker,
                )
            else:
                r = await client.post("/api/import", content=body, headers=attacker)
            done.set()
            answers = await watcher
            assert r.status_code == 422, (name, r.text)
            assert r.json()["code"] == code, (name, r.json())
            after = _memory(server.proc.pid)
            assert answers >= 1, name
            grown = after["VmHWM"] - before["VmRSS"]
            assert grown < RSS_HEADROOM, (name, before, after)

        # Nothing was stored, and the process still answers normally.
        r = await client.get("/api/sessions?status=all", headers=attacker)
        assert r.status_code == 200 and r.json()["items"] == []

        # An ordinary large import: one conversation of 800 messages of 32,000 characters
        # (25.7 MB) goes in, under the real statement timeouts, while the bystander is served.
        done = asyncio.Event()
        watcher = asyncio.create_task(_bystander(client, bystander, done, times))
        r = await client.post("/api/import", content=_long_messages(800, 32_000), headers=attacker)
        done.set()
        assert await watcher >= 1
        assert r.status_code == 200, r.text
        assert r.json()["imported"] == 1
        [sid] = r.json()["sessions"]
        detail = (await client.get(f"/api/sessions/{sid}", headers=attacker)).json()
        assert detail["messageCount"] == 800

    within = sum(t < BYSTANDER_SECONDS for t in times)
    assert within >= BYSTANDER_WITHIN_SHARE * len(times), sorted(times)[-10:]


def _long_messages(count: int, chars: int) -> bytes:
    at = "2026-01-01T00:00:00Z"
    messages = [
        {
            "seq": i + 1,
            "role": ("user", "assistant")[i % 2],
            "content": "x" * chars,
            "createdAt": at,
        }
        for i in range(count)
    ]
    conv = {
        "id": "long",
        "title": "Long",
        "createdAt": at,
        "lastActivityAt": at,
        "messageCount": count,
        "messages": messages,
    }
    return json.dumps({"format": "chatkeep.conversation", "version": 1, "conversation": conv})
