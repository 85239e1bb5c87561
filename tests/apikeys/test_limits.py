"""A key spends its owner's rate-limit budget: the same counters as their sign-ins."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import Settings
from tests.conftest import register


@pytest.fixture
def settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        app_env="test",
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-secret-" + "x" * 40,
        sweeper_enabled=False,
        log_level="WARNING",
        rate_limit_enabled=True,
        rate_limit_storage_url="memory://",
        rate_limit_default="4/minute",
    )


async def test_requests_with_a_key_and_with_a_sign_in_share_one_budget(client):
    me = await register(client)
    other = await register(client)
    r = await client.post("/api/keys", json={"name": "budget"}, headers=me)  # 1
    assert r.status_code == 201, r.text
    as_key = {"Authorization": f"Bearer {r.json()['key']}"}
    assert (await client.get("/users/me", headers=me)).status_code == 200  # 2
    assert (await client.get("/users/me", headers=as_key)).status_code == 200  # 3
    assert (await client.get("/users/me", headers=as_key)).status_code == 200  # 4
    assert (await client.get("/users/me", headers=me)).status_code == 429
    assert (await client.get("/users/me", headers=as_key)).status_code == 429
    # Another user's budget is their own.
    assert (await client.get("/users/me", headers=other)).status_code == 200
