"""Two real server processes on one database: ending sign-ins, and revoking an API key,
takes effect on both."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_PASSWORD, _truncate
from tests.processes import ServerProcess

pytestmark = [pytest.mark.process, pytest.mark.storage]

NEW_PASSWORD = "seventeen quiet harbour lamps"


@pytest.fixture
async def two_servers(database_url: str, tmp_path: Path):
    await _truncate(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT", "SWEEP"))}
    env.update(
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path),
        SECRET_KEY="shared-secret-" + "z" * 40,
        LOG_LEVEL="WARNING",
        SWEEPER_ENABLED="false",
        RATE_LIMIT_ENABLED="false",
    )
    argv = [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", "{port}"]
    servers = [ServerProcess(argv, env), ServerProcess(argv, env)]
    try:
        for s in servers:
            s.wait_ready()
        yield servers
    finally:
        for s in servers:
            s.stop()


def _sign_in(base: str, email: str, agent: str, password: str = TEST_PASSWORD) -> dict[str, str]:
    r = httpx.post(
        f"{base}/auth/jwt/login",
        data={"username": email, "password": password},
        headers={"User-Agent": agent},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _refused_within(base: str, headers: dict[str, str], seconds: float = 2.0) -> float:
    started = time.monotonic()
    while True:
        code = httpx.get(f"{base}/users/me", headers=headers, timeout=10).status_code
        elapsed = time.monotonic() - started
        if code == 401:
            return elapsed
        assert code == 200
        assert elapsed < seconds, f"still signed in after {elapsed:.1f} s"
        time.sleep(0.05)


async def test_ending_sign_ins_on_one_instance_takes_effect_on_the_other(two_servers):
    a, b = two_servers
    email = "two-places@example.com"
    r = httpx.post(
        f"{a.base}/auth/register", json={"email": email, "password": TEST_PASSWORD}, timeout=30
    )
    assert r.status_code == 201, r.text
    laptop = _sign_in(a.base, email, "laptop-client/1.0")
    phone = _sign_in(a.base, email, "phone-client/2.0")
    tablet = _sign_in(b.base, email, "tablet-client/3.0")

    listed = httpx.get(f"{b.base}/api/me/sign-ins", headers=laptop, timeout=10).json()
    assert len(listed["signIns"]) == 3
    current = [s for s in listed["signIns"] if s["current"]]
    assert [s["device"] for s in current] == ["laptop-client/1.0"]

    # End the phone on B; A refuses it within 2 s.
    phone_id = next(s["id"] for s in listed["signIns"] if s["device"] == "phone-client/2.0")
    r = httpx.delete(f"{b.base}/api/me/sign-ins/{phone_id}", headers=laptop, timeout=10)
    assert r.status_code == 204
    _refused_within(a.base, phone)

    # "Sign out of other devices" on A; B refuses the tablet within 2 s.
    r = httpx.post(f"{a.base}/api/me/sign-ins/end-others", headers=laptop, timeout=10)
    assert r.json() == {"ended": 1, "keysEnded": 0}
    _refused_within(b.base, tablet)
    assert httpx.get(f"{b.base}/users/me", headers=laptop, timeout=10).status_code == 200

    # An API key made on A works on B (which has now seen it).
    r = httpx.post(f"{a.base}/api/keys", json={"name": "script"}, headers=laptop, timeout=10)
    assert r.status_code == 201, r.text
    made = r.json()
    key = {"Authorization": f"Bearer {made['key']}"}
    assert httpx.get(f"{b.base}/users/me", headers=key, timeout=10).status_code == 200

    # A password change on B: tokens issued before it stop working on A too, but not the
    # one that made the change, and not the API key.
    other = _sign_in(a.base, email, "desktop-client/4.0")
    r = httpx.patch(
        f"{b.base}/users/me",
        json={"password": NEW_PASSWORD, "currentPassword": TEST_PASSWORD},
        headers=laptop,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    _refused_within(a.base, other)
    assert httpx.get(f"{a.base}/users/me", headers=laptop, timeout=10).status_code == 200
    assert httpx.get(f"{a.base}/users/me", headers=key, timeout=10).status_code == 200

    # Revoked on A: the very next request on B is refused (B keeps no copy of keys).
    r = httpx.delete(f"{a.base}/api/keys/{made['id']}", headers=laptop, timeout=10)
    assert r.status_code == 204
    assert httpx.get(f"{b.base}/users/me", headers=key, timeout=10).status_code == 401
    assert httpx.get(f"{b.base}/api/sessions", headers=key, timeout=10).status_code == 401
