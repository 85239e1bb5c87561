"""Response hardening: HSTS behind HTTPS, no caching of API JSON, a CSP on the docs,
a protected /metrics with full route labels, and a sign-in probe that never answers 401."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from app.main import create_app
from tests.conftest import chat, register

pytestmark = pytest.mark.storage


async def _client_for(settings, **changes):
    app = create_app(settings.model_copy(update=changes), migrate=False, run_sweeper=False)
    return app


async def test_hsts_only_when_cookies_are_secure(settings, client):
    assert "strict-transport-security" not in (await client.get("/healthz")).headers
    app = await _client_for(settings, cookie_secure=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            for path in ("/", "/healthz", "/api/session"):
                hsts = (await c.get(path)).headers["strict-transport-security"]
                assert hsts.startswith("max-age=31536000")


async def test_api_json_is_never_cached(client):
    h = await register(client)
    sid = (await chat(client, h, "hello")).json()["sessionId"]
    for r in (
        await client.get("/api/sessions", headers=h),
        await client.get(f"/api/sessions/{sid}", headers=h),
        await client.get("/api/sessions/nope", headers=h),  # problem+json too
        await client.post("/api/chat", json={"messages": []}, headers=h),
    ):
        assert r.headers["cache-control"] == "no-store", (r.status_code, r.headers)
    # Non-JSON keeps its own caching (the page is revalidated, not forbidden).
    assert (await client.get("/")).headers["cache-control"] == "no-cache"


async def test_docs_pages_have_a_csp_that_allows_only_their_own_script(client):
    for path in ("/docs", "/redoc"):
        r = await client.get(path)
        csp = r.headers["content-security-policy"]
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
        assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
        for script in re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL):
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in csp


async def test_metrics_token_protects_metrics(settings, client):
    assert (await client.get("/metrics")).status_code == 200  # open by default
    app = await _client_for(settings, metrics_token="s3cret-metrics-token")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                r = await c.get("/metrics", headers=headers)
                assert r.status_code == 401
                assert r.headers["content-type"] == "application/problem+json"
                assert r.headers["www-authenticate"] == "Bearer"
            ok = await c.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
            assert ok.status_code == 200
            assert "chatkeep_http_request_duration_seconds" in ok.text


async def test_metrics_use_full_route_templates(client):
    await client.post("/auth/jwt/login", data={"username": "a@example.com", "password": "x"})
    h = await register(client)
    await client.get("/users/me", headers=h)
    await client.get("/api/sessions/some-id", headers=h)
    text = (await client.get("/metrics")).text
    assert 'route="/auth/jwt/login"' in text
    assert 'route="/users/me"' in text
    assert 'route="/api/sessions/{session_id}"' in text
    assert 'route="/login"' not in text and 'route="/me"' not in text


async def test_the_sign_in_probe_answers_200_either_way(client):
    r = await client.get("/api/session")
    assert r.status_code == 200
    assert r.json() == {"signedIn": False, "user": None}
    r = await client.get("/api/session", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 200 and r.json()["signedIn"] is False
    h = await register(client, "probe@example.com")
    r = await client.get("/api/session", headers=h)
    assert r.status_code == 200
    assert r.json()["signedIn"] is True and r.json()["user"]["email"] == "probe@example.com"
