"""ASSISTANT_BACKEND=local end to end: the real SmolLM2 model in its real child process.

Replies are kept short (LOCAL_MODEL_MAX_TOKENS): the model is real, the machine may be
slow. Without the model installed these tests skip, and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from app.assistant import local_model
from app.assistant.local_model import LocalWriter, ModelQueue, QueueFull
from app.core.config import Settings
from app.core.runtime import PROJECT_ROOT
from app.web.router import MODEL_SUGGESTIONS, POST_SUGGESTIONS
from tests.conftest import IN_CI, register
from tests.sse import collect, parse_events
from tests.turns.conftest import chat_body, sse_headers

pytestmark = pytest.mark.process


@pytest.fixture(autouse=True)
def _model_installed() -> None:
    if not local_model.available():
        message = "the local model is not installed (make install)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "assistant_backend": "local",
            "local_model_max_tokens": 24,
            "local_model_parallel": 1,
            "local_model_threads": 1,
        }
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not yet reaped by its (dead) parent is a zombie.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


async def _until(predicate: Any, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def test_the_local_model_answers_a_question_streamed_with_usage(live, app):
    info = (await live.get("/api/assistant")).json()
    assert info == {
        "backend": "local",
        "model": "SmolLM2 135M",
        "label": "SmolLM2 135M, running on this server",
        "local": True,
        # A language model answers: the empty chat suggests questions first, then a post.
        "suggestions": [*MODEL_SUGGESTIONS, POST_SUGGESTIONS[0]],
        "maxMessageChars": app.state.settings.max_message_chars,
        "sessionTtlSeconds": app.state.settings.session_ttl_seconds,
    }
    headers = await register(live)
    async with live.stream(
        "POST",
        "/api/chat",
        json=chat_body("What is the capital of France?"),
        headers=sse_headers(headers),
        timeout=120,
    ) as r:
        assert r.status_code == 200
        events = await collect(r)
    names = [e.name for e in events]
    assert names[0] == "turn" and names[-1] == "done", events[-1].data
    deltas = [e.data["text"] for e in events if e.name == "delta"]
    done = events[-1].data
    assert len(deltas) > 1  # token by token, not in one piece
    assert "".join(deltas) == done["reply"] and done["reply"].strip()
    assert done["stopped"] is False
    usage = done["usage"]
    assert usage["promptTokens"] > 0 and 0 < usage["completionTokens"] <= 24

    detail = (await live.get(f"/api/sessions/{done['sessionId']}", headers=headers)).json()
    assert detail["usage"] == usage
    reply = detail["messages"][-1]
    assert reply["content"] == done["reply"]


async def test_posts_are_still_drafted_by_the_templates(live, app):
    headers = await register(live)
    r = await live.post(
        "/api/chat", json=chat_body("Create a Facebook post about Diwali"), headers=headers
    )
    body = r.json()
    assert body["reply"].startswith("Here is a draft of your Facebook post about Diwali:")
    assert "Diwali" in body["reply"]
    writer = app.state.assistant.writer
    assert not writer.process.running  # nor started


async def test_stop_ends_the_model_reply_and_the_model_serves_the_next(live, app, sessionmaker):
    writer: LocalWriter = app.state.assistant.writer
    writer.max_tokens = 1500  # long enough to be stopped half-way on any machine
    headers = await register(live)
    async with live.stream(
        "POST",
        "/api/chat",
        json=chat_body("Why is the sky blue? Explain in detail."),
        headers=sse_headers(headers),
        timeout=120,
    ) as r:
        stream = parse_events(r)
        turn = await anext(stream)
        first = await anext(stream)
        while first.name == "queued":
            first = await anext(stream)
        assert first.name == "delta"
        sid, tid = turn.data["sessionId"], turn.data["turnId"]
        stop = await live.post(f"/api/sessions/{sid}/turns/{tid}/cancel", headers=headers)
        assert stop.status_code == 202
        rest = [e async for e in stream]
    done = rest[-1]
    assert done.name == "done" and done.data["stopped"] is True
    assert done.data["reply"].startswith(first.data["text"])
    detail = (await live.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert detail["messages"][-1]["stopped"] is True
    assert detail["messages"][-1]["content"] == done.data["reply"]

    # The slot was given back: the next question is answered.
    writer.max_tokens = 8
    r = await live.post(
        "/api/chat", json=chat_body("Hello!", session_id=sid), headers=headers, timeout=120
    )
    assert r.status_code == 200 and r.json()["reply"].strip()


async def test_replies_wait_in_line_and_each_sees_its_place(live, app):
    """One slot: while one reply generates, the others wait, told their place."""
    writer: LocalWriter = app.state.assistant.writer
    await writer.started()
    users = [await register(live) for _ in range(3)]

    async def ask(headers: dict[str, str]) -> list[Any]:
        async with live.stream(
            "POST",
            "/api/chat",
            json=chat_body("Name a colour."),
            headers=sse_headers(headers),
            timeout=120,
        ) as r:
            return await collect(r)

    # The first holds the only slot until the others are in line behind it.
    async with writer.queue.turn(_Silent()):
        tasks = [asyncio.create_task(ask(h)) for h in users]
        await _until(lambda: writer.queue.waiting == 3)
    results = await asyncio.gather(*tasks)
    places = []
    for events in results:
        assert events[-1].name == "done" and events[-1].data["reply"].strip()
        queued = [e.data["position"] for e in events if e.name == "queued"]
        assert queued and queued[-1] is None  # told its place, then that its turn came
        places.append(queued[0])
        # Places only go down, and the reply comes after the wait.
        waiting = [p for p in queued if p is not None]
        assert waiting == sorted(waiting, reverse=True)
        names = [e.name for e in events]
        assert names.index("delta") > max(i for i, n in enumerate(names) if n == "queued")
    assert sorted(places) == [1, 2, 3]


class _Silent:
    def queued(self, position: int | None) -> None:
        pass


class _Place:
    def __init__(self) -> None:
        self.places: list[int | None] = []

    def queued(self, position: int | None) -> None:
        self.places.append(position)


async def test_the_queue_serves_in_order_and_refuses_when_full() -> None:
    queue = ModelQueue(slots=1, size=2)
    order: list[str] = []
    gate = asyncio.Event()
    outs = {name: _Place() for name in "abcd"}

    async def use(name: str) -> None:
        async with queue.turn(outs[name]):  # type: ignore[arg-type]
            order.append(name)
            await gate.wait()

    a = asyncio.create_task(use("a"))
    await _until(lambda: order == ["a"], 5)
    b = asyncio.create_task(use("b"))
    c = asyncio.create_task(use("c"))
    await _until(lambda: queue.waiting == 2, 5)
    with pytest.raises(QueueFull):
        await use("d")
    c_left = asyncio.create_task(use("c"))  # same name, a fresh waiter: refused too
    with pytest.raises(QueueFull):
        await c_left
    b.cancel()  # leaving the line moves those behind up
    await _until(lambda: outs["c"].places[-1] == 1, 5)
    gate.set()
    await asyncio.gather(a, c)
    assert order == ["a", "c"] and queue.active == 0 and queue.waiting == 0
    assert outs["c"].places == [2, 1, None]


PARENT = textwrap.dedent(
    """
    import asyncio, sys
    from app.assistant.local_model import LocalModelProcess, model_path

    async def main():
        process = LocalModelProcess(
            path=model_path(), threads=1, parallel=1, context_tokens=512,
            start_timeout_seconds=120,
        )
        await process.start()
        print(process.pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
async def test_the_model_process_dies_with_the_app(how: signal.Signals) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert parent.stdout is not None
        line = await asyncio.to_thread(parent.stdout.readline)
        child = int(line)
        assert _alive(child)
        parent.send_signal(how)  # the parent only: the child is not told
        await asyncio.to_thread(parent.wait, 30)
        await _until(lambda: not _alive(child))
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait(10)
