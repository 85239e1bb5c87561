"""The shared-link routes are open to anyone, so they count the client IP."""

from __future__ import annotations

import pytest

from app.core.config import Settings
from tests.conftest import chat, register

pytestmark = pytest.mark.storage


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Counted in this process (memory://): the policy is what is tested, not the storage.
    return settings.model_copy(update={"rate_limit_enabled": True, "rate_limit_shared": "3/minute"})


async def test_opening_shared_links_is_limited_per_client_address(client, clock):
    me = await register(client)
    r = await chat(client, me, "Counted")
    sid = r.json()["sessionId"]
    token = (await client.post(f"/api/sessions/{sid}/share", json={}, headers=me)).json()["token"]

    answers = [
        (await client.get(f"/api/shared/{token}")).status_code,
        (await client.get(f"/s/{token}")).status_code,
        (await client.get("/api/shared/" + "B" * 43)).status_code,  # unknown ones count too
    ]
    assert answers == [200, 200, 404]
    r = await client.get(f"/s/{token}")
    assert r.status_code == 429
    assert r.json()["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    # The owner's own routes count under the user's `default` policy, not this one.
    assert (await client.get("/api/shares", headers=me)).status_code == 200
