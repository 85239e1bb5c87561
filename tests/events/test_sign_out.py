"""A device that signs out stops hearing `/api/events`; the user's other devices go on."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import chat, login, register
from tests.sse import listening

pytestmark = pytest.mark.storage


@pytest.fixture
def settings(settings):
    # The check of open streams' sign-ins, every 0.2 s here (2 s by default).
    return settings.model_copy(update={"events_sign_in_check_seconds": 0.2})


async def test_a_device_that_signs_out_stops_hearing_and_the_others_go_on(live, app):
    laptop_headers = await register(live)
    me = (await live.get("/users/me", headers=laptop_headers)).json()["email"]
    phone_headers = await login(live, me)
    tablet_headers = await login(live, me)
    async with (
        listening(live, laptop_headers) as laptop,
        listening(live, phone_headers) as phone,
        listening(live, tablet_headers) as tablet,
    ):
        # The phone signs out; the laptop ends the tablet's sign-in from its list.
        assert (await live.post("/auth/jwt/logout", headers=phone_headers)).status_code == 204
        sign_ins = (await live.get("/api/me/sign-ins", headers=laptop_headers)).json()
        others = [s for s in sign_ins["signIns"] if not s.get("current")]
        assert len(others) == 1  # the tablet's; the phone's already ended
        r = await live.delete(f"/api/me/sign-ins/{others[0]['id']}", headers=laptop_headers)
        assert r.status_code == 204
        for device in (phone, tablet):
            ended = await device.wait_for(lambda e: e.name == "signed_out", timeout=5)
            assert "sign in again" in ended.data["reason"]
        # The laptop still hears everything; the others hear nothing more.
        sid = (await chat(live, laptop_headers, "still here")).json()["sessionId"]
        await laptop.wait_for(lambda e: e.name == "turn" and e.data["status"] == "done")
        await asyncio.sleep(0.3)
        for device in (phone, tablet):
            assert device.events[-1].name == "signed_out"
            assert all(e.data.get("sessionId") != sid for e in device.events)
        # And a signed-out token cannot open a new stream.
        r = await live.get("/api/events", headers=phone_headers)
        assert r.status_code == 401


async def test_a_stream_opened_with_an_api_key_ends_when_the_key_is_revoked(live, app):
    me = await register(live)
    made = (await live.post("/api/keys", json={"name": "listener"}, headers=me)).json()
    as_key = {"Authorization": f"Bearer {made['key']}"}
    async with listening(live, as_key) as script, listening(live, me) as browser:
        assert (await live.delete(f"/api/keys/{made['id']}", headers=me)).status_code == 204
        ended = await script.wait_for(lambda e: e.name == "signed_out", timeout=5)
        assert "sign in again" in ended.data["reason"]
        sid = (await chat(live, me, "after the revoke")).json()["sessionId"]
        await browser.wait_for(lambda e: e.name == "turn" and e.data["status"] == "done")
        assert all(e.data.get("sessionId") != sid for e in script.events)
    assert (await live.get("/api/events", headers=as_key)).status_code == 401
