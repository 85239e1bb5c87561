"""A real app process (`python -m app serve`, ASSISTANT_BACKEND=openai) in front of the
fake model, with a second model of MODELS on a fake server of its own, for clients nobody
here wrote: the official `openai` SDKs."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_PASSWORD
from tests.fakemodel import FakeModel, Planned, serve_model
from tests.processes import ServerProcess

MODEL = "fake-model-1"
REPLY = "A fake answer from the model."
# The second model (MODELS), asked for under another upstream name and with a key.
SECOND = "fake-model-2"
SECOND_UPSTREAM = "fake-upstream-two"
SECOND_KEY = "sk-second-model"
SECOND_REPLY = "The second model answers."
CHAT_PER_MINUTE = 12


@dataclass
class Server:
    base: str
    model: FakeModel
    second: FakeModel
    process: ServerProcess

    @property
    def v1(self) -> str:
        return f"{self.base}/v1"


@dataclass
class Account:
    email: str
    session: dict[str, str]  # a signed-in user's headers (JWT)
    key: str
    key_id: str


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    model = FakeModel(default=Planned(text=REPLY, usage=(11, 7)))
    second = FakeModel(default=Planned(text=SECOND_REPLY, usage=(20, 10)))
    data_dir: Path = tmp_path_factory.mktemp("v1")
    with serve_model(model) as fake, serve_model(second) as fake_two:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RATE_LIMIT", "SWEEP", "TURN_", "LLM_", "ASSISTANT_"))
        }
        env.update(
            DATABASE_URL=database_url,
            DATA_DIR=str(data_dir),
            SECRET_KEY="v1-secret-" + "v" * 40,
            LOG_LEVEL="WARNING",
            SWEEPER_ENABLED="false",
            # The chat policy applies to keys as to sign-ins: small enough to reach in a
            # test; sign-up and key creation are not what is tested here.
            RATE_LIMIT_ENABLED="true",
            RATE_LIMIT_CHAT=f"{CHAT_PER_MINUTE}/minute",
            RATE_LIMIT_AUTH="10000/minute",
            RATE_LIMIT_CREDENTIALS="10000/minute",
            RATE_LIMIT_DEFAULT="10000/minute",
            ASSISTANT_BACKEND="openai",
            LLM_BASE_URL=f"{fake.url}/v1",
            LLM_MODEL=MODEL,
            LLM_INTENTS="rules",
            LLM_MAX_RETRIES="0",
            MODELS=json.dumps(
                [
                    {
                        "id": SECOND,
                        "name": "Fake Model Two",
                        "base_url": f"{fake_two.url}/v1",
                        "model": SECOND_UPSTREAM,
                        "api_key_env": "SECOND_MODEL_KEY",
                    }
                ]
            ),
            SECOND_MODEL_KEY=SECOND_KEY,
        )
        process = ServerProcess(
            [sys.executable, "-m", "app", "serve", "--port", "{port}", "--workers", "1"], env
        )
        try:
            process.wait_ready()
            yield Server(base=process.base, model=model, second=second, process=process)
        finally:
            process.stop()


def new_account(base: str, key_name: str = "notebook") -> Account:
    email = f"v1-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
        assert r.status_code == 201, r.text
        r = c.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
        assert r.status_code == 200, r.text
        session = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = c.post("/api/keys", json={"name": key_name}, headers=session)
        assert r.status_code == 201, r.text
    return Account(email=email, session=session, key=r.json()["key"], key_id=r.json()["id"])


@pytest.fixture
def account(server: Server) -> Account:
    return new_account(server.base)


def sessions(base: str, account: Account, **params: str) -> list[dict]:
    r = httpx.get(f"{base}/api/sessions", params=params, headers=account.session, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def conversation(base: str, account: Account, session_id: str) -> dict:
    r = httpx.get(f"{base}/api/sessions/{session_id}", headers=account.session, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()
