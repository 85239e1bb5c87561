"""The web cookie follows the settings given to create_app, not the environment."""

from __future__ import annotations

import httpx
import pytest

from app.main import create_app
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.storage


def _auth_cookie(response: httpx.Response) -> str:
    return next(
        v for v in response.headers.get_list("set-cookie") if v.startswith("chatkeep_auth=")
    )


async def test_the_cookie_takes_max_age_and_secure_from_the_apps_settings(settings):
    changed = settings.model_copy(update={"cookie_secure": True, "sign_in_idle_days": 3})
    app = create_app(changed, migrate=False, run_sweeper=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            await c.get("/healthz")  # hands out the CSRF cookie
            headers = {"X-CSRF-Token": c.cookies.get("chatkeep_csrf") or ""}
            email = "cookie-settings@example.com"
            body = {"email": email, "password": TEST_PASSWORD}
            assert (await c.post("/auth/register", json=body, headers=headers)).status_code == 201
            form = {"username": email, "password": TEST_PASSWORD}
            r = await c.post("/auth/cookie/login", data=form, headers=headers)
            assert r.status_code == 204, r.text
            cookie = _auth_cookie(r)
            assert "Secure" in cookie and "Max-Age=259200" in cookie
            r = await c.post("/auth/cookie/logout", headers=headers)
            assert r.status_code == 204, r.text
            cookie = _auth_cookie(r)
            assert "Secure" in cookie and "Max-Age=0" in cookie
