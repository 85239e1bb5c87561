from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.web.router import POST_SUGGESTIONS
from tests.conftest import chat, register

pytestmark = pytest.mark.storage


async def _make_superuser(client, sessionmaker) -> dict[str, str]:
    headers = await register(client, "root@example.com")
    async with sessionmaker() as s:
        await s.execute(
            sa.text("UPDATE app_user SET is_superuser = true WHERE email = 'root@example.com'")
        )
        await s.commit()
    return headers


async def test_admin_routes_are_for_superusers_only(client):
    headers = await register(client)
    for method, path in [
        ("GET", "/api/admin/sessions/stats"),
        ("GET", "/api/admin/assistant"),
        ("POST", "/api/admin/sessions/cleanup"),
        ("DELETE", "/api/admin/sessions/session_1_" + "a" * 24),
    ]:
        r = await client.request(method, path, headers=headers)
        assert r.status_code == 403, path
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_stats_cleanup_and_delete(client, clock, sessionmaker):
    admin = await _make_superuser(client, sessionmaker)
    user = await register(client)
    old = (await chat(client, user, "old")).json()["sessionId"]
    clock.advance(1801)
    await chat(client, user, "new")

    stats = (await client.get("/api/admin/sessions/stats", headers=admin)).json()
    assert stats == {"active": 2, "archived": 0, "total": 2, "messages": 4, "users": 2}
    assert (await client.post("/api/admin/sessions/cleanup", headers=admin)).json() == {
        "archived": 1
    }
    stats = (await client.get("/api/admin/sessions/stats", headers=admin)).json()
    assert stats["active"] == 1 and stats["archived"] == 1

    assert (await client.delete(f"/api/admin/sessions/{old}", headers=admin)).status_code == 204
    assert (await client.get(f"/api/sessions/{old}", headers=user)).status_code == 404
    assert (await client.delete(f"/api/admin/sessions/{old}", headers=admin)).status_code == 404
    stats = (await client.get("/api/admin/sessions/stats", headers=admin)).json()
    assert stats["messages"] == 2


async def test_the_admin_view_of_the_assistant_names_its_settings(client, sessionmaker):
    """Settings are for administrators: here, and never in what users see."""
    admin = await _make_superuser(client, sessionmaker)
    view = (await client.get("/api/admin/assistant", headers=admin)).json()
    assert view["backend"] == "builtin" and view["model"] is None
    assert view["settings"] == {"ASSISTANT_BACKEND": "builtin"}
    assert "ASSISTANT_BACKEND=openai" in view["connect_a_bigger_model"]
    assert view["local_model"] is None
    public = (await client.get("/api/assistant")).json()
    assert public == {
        "backend": "builtin",
        "model": None,
        "label": view["label"],
        "local": False,
        # Without a language model the empty chat suggests posts to draft.
        "suggestions": list(POST_SUGGESTIONS),
        "maxMessageChars": 32_000,
        "sessionTtlSeconds": 1800,
    }
    assert "ASSISTANT_BACKEND" not in public["label"]
