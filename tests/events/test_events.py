"""`GET /api/events`: what changed for this user, on every open stream, and nobody else's."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from app.conversations.tasks import sweep_expired_sessions
from app.events.bus import Hub, user_event
from tests.conftest import chat, register
from tests.sse import listening, parse_events

pytestmark = pytest.mark.storage


async def test_every_device_of_the_user_hears_a_turn_and_nobody_else(live, app):
    me = await register(live)
    other = await register(live)
    async with (
        listening(live, me) as laptop,
        listening(live, me) as phone,
        listening(live, other) as stranger,
    ):
        sid = (await chat(live, me, "hello")).json()["sessionId"]
        for device in (laptop, phone):
            await device.wait_for(lambda e: e.name == "turn" and e.data["status"] == "done")
            assert {"sessionId": sid, "change": "created"} in device.of("session")
            assert device.of("message") == [
                {"sessionId": sid, "seq": 1, "role": "user"},
                {"sessionId": sid, "seq": 2, "role": "assistant"},
            ]
            assert [t["status"] for t in device.of("turn")] == ["generating", "done"]
        await asyncio.sleep(0.2)
        assert [e.name for e in stranger.events] == ["ready"]


async def test_session_changes_reach_the_stream(live, app, sessionmaker, clock, settings):
    me = await register(live)
    sid = (await chat(live, me, "hello")).json()["sessionId"]
    async with listening(live, me) as device:
        r = await live.patch(f"/api/sessions/{sid}", json={"title": "Renamed"}, headers=me)
        assert r.status_code == 200
        await device.wait_for(lambda e: e.data.get("change") == "renamed")
        await live.post(f"/api/sessions/{sid}/archive", headers=me)
        await device.wait_for(lambda e: e.data.get("change") == "archived")
        await live.post(f"/api/sessions/{sid}/restore", headers=me)
        await device.wait_for(lambda e: e.data.get("change") == "restored")
        # The sweeper archives on its own: the page hears of it too.
        clock.advance(settings.session_ttl_seconds + 1)
        await sweep_expired_sessions(
            sessionmaker=sessionmaker,
            now=clock.now(),
            ttl_seconds=settings.session_ttl_seconds,
            batch_size=100,
            trigger="manual",
            bus=app.state.events,
        )
        await device.wait_for(lambda e: e.data.get("change") == "archived" and e.id is not None)
        assert len([s for s in device.of("session") if s["change"] == "archived"]) == 2
        await live.delete(f"/api/sessions/{sid}", headers=me)
        trashed = await device.wait_for(lambda e: e.data.get("change") == "trashed")
        assert trashed.data == {"sessionId": sid, "change": "trashed"}
        await live.post(f"/api/sessions/{sid}/restore", headers=me)
        restored = await device.wait_for(lambda e: e.data.get("change") == "restored")
        assert restored.data == {"sessionId": sid, "change": "restored"}
        await live.delete(f"/api/sessions/{sid}", params={"permanent": "true"}, headers=me)
        deleted = await device.wait_for(lambda e: e.data.get("change") == "deleted")
        assert deleted.data == {"sessionId": sid, "change": "deleted"}


async def test_reconnecting_with_last_event_id_gets_what_was_missed(live, app):
    me = await register(live)
    async with listening(live, me) as device:
        sid = (await chat(live, me, "one")).json()["sessionId"]
        seen = await device.wait_for(lambda e: e.name == "turn" and e.data["status"] == "done")
    # Offline for a moment: another message goes by.
    await chat(live, me, "two", session_id=sid)
    async with listening(live, me, **{"last-event-id": seen.id}) as device:
        await device.wait_for(lambda e: e.name == "message" and e.data["seq"] == 4)
        assert [m["seq"] for m in device.of("message")] == [3, 4]
    async with listening(live, me, **{"last-event-id": "someone-else-99"}) as device:
        await device.wait_for(lambda e: e.name == "resync")


async def test_a_rolled_back_change_sends_nothing(live, app):
    """Events leave with their transaction's commit: a failed request announces nothing."""
    me = await register(live)
    async with listening(live, me) as device:
        r = await live.patch("/api/sessions/session_1_missing", json={"title": "x"}, headers=me)
        assert r.status_code == 404
        r = await live.post("/api/chat", json={"messages": []}, headers=me)
        assert r.status_code == 422
        await asyncio.sleep(0.3)
        assert [e.name for e in device.events] == ["ready"]


async def test_heartbeats_keep_an_idle_stream_open(live, app, settings):
    settings.sse_heartbeat_seconds = 0.1
    me = await register(live)
    pings: list[str] = []
    async with live.stream("GET", "/api/events", headers=me) as r:

        async def read() -> None:
            async for _ in parse_events(r, pings=pings):
                pass

        reader = asyncio.create_task(read())
        try:
            # Waits for two heartbeats however busy the machine; no events meanwhile.
            deadline = asyncio.get_running_loop().time() + 30
            while len(pings) < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    assert len(pings) >= 2


async def test_an_open_stream_holds_no_database_connection(live, app):
    me = await register(live)
    pool = app.state.engine.pool
    async with listening(live, me), listening(live, me), listening(live, me):
        # Sampled a few times: the sign-in check of open streams takes a connection for a
        # moment every EVENTS_SIGN_IN_CHECK_SECONDS; a stream holding one would never let go.
        seen = []
        for _ in range(5):
            await asyncio.sleep(0.05)
            seen.append(pool.checkedout())
        assert min(seen) == 0, seen


async def test_event_ids_tell_nothing_of_other_users(live, app):
    me = await register(live)
    other = await register(live)
    async with listening(live, me) as device:
        sid = (await chat(live, me, "mine")).json()["sessionId"]
        mine = await device.wait_for(lambda e: e.name == "turn" and e.data["status"] == "done")
    # Someone else is busy while I am away...
    async with listening(live, other) as theirs:
        for i in range(3):
            await chat(live, other, f"theirs {i}")
        last_of_theirs = await theirs.wait_for(
            lambda e: e.name == "turn" and e.data["status"] == "done"
        )
    # ...and my next connection starts where my own events left off, whatever they did.
    async with listening(live, me, **{"last-event-id": mine.id}) as device:
        ready = device.events[0]
        assert ready.name == "ready"
        assert ready.id == mine.id
        await asyncio.sleep(0.2)
        assert [e.name for e in device.events] == ["ready"]
    # Ids of different users share nothing, and one user's id means nothing to another.
    assert mine.id.split("-")[0] != last_of_theirs.id.split("-")[0]
    async with listening(live, other, **{"last-event-id": mine.id}) as device:
        await device.wait_for(lambda e: e.name == "resync")
        assert all(e.data.get("sessionId") != sid for e in device.events)


def test_replay_gives_a_users_own_missed_events_or_says_it_cannot():
    hub = Hub(replay_size=4)
    with hub.open_stream("alice"):
        start, _ = hub.position("alice")
        hub.dispatch(user_event("alice", "message", seq=1))
        hub.dispatch(user_event("bob", "message", seq=1))
        hub.dispatch(user_event("alice", "message", seq=2))
        replayed = hub.replay("alice", start)
        assert [event.data["seq"] for _, event in replayed] == [1, 2]
        assert [event_id.rsplit("-", 1)[1] for event_id, _ in replayed] == ["1", "2"]
        assert hub.replay("bob", start) is None
        # Others' events push alice's first one out of the memory: replay from the start
        # can no longer be complete, so it says so; from her second event it still is.
        hub.dispatch(user_event("bob", "message", seq=2))
        hub.dispatch(user_event("bob", "message", seq=3))
        assert hub.replay("alice", start) is None
        assert hub.replay("alice", replayed[0][0]) == replayed[1:]
    # Nothing of bob's is remembered once his events leave the memory (he has no stream).
    for n in range(4):
        hub.dispatch(user_event("carol", "message", seq=n))
    assert set(hub.sequences) == {"carol"}
