"""`/v1` driven by the official `openai` npm package under the machine's Node.js
(`make test` installs it in tests/node with `npm ci`, like Chromium for the page tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from app.core.runtime import PROJECT_ROOT
from tests.openai_api.conftest import (
    MODEL,
    SECOND,
    SECOND_REPLY,
    SECOND_UPSTREAM,
    conversation,
    sessions,
)

pytestmark = [pytest.mark.process, pytest.mark.storage]

NODE_DIR = PROJECT_ROOT / "tests" / "node"


def _node() -> str:
    node = shutil.which("node")
    installed = (NODE_DIR / "node_modules" / "openai" / "package.json").exists()
    if node is None or not installed:
        why = (
            "Node.js is missing" if node is None else "run `make node-deps` (npm ci in tests/node)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"the openai npm client is not installed: {why}")
        pytest.skip(why)
    return node


def test_the_openai_npm_package_talks_to_v1_and_is_recorded(server, account):
    node = _node()
    # The second model of the catalog: answered by its own backend, and recorded.
    env = dict(os.environ, CHATKEEP_URL=server.v1, CHATKEEP_KEY=account.key, CHATKEEP_MODEL=SECOND)
    done = subprocess.run(
        [node, "v1_client.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["models"] == [MODEL, SECOND]
    assert seen["model"] == SECOND
    assert seen["reply"] == SECOND_REPLY and seen["streamed"] == SECOND_REPLY
    assert seen["usage"]["total_tokens"] == 30 and seen["streamedUsage"]["total_tokens"] == 30
    assert seen["refused"] == {"authenticationError": True, "status": 401}

    (listed,) = sessions(server.base, account)
    shown = conversation(server.base, account, listed["id"])
    assert [(m["content"], m["model"]) for m in shown["messages"]] == [
        ("Hello from Node", None),
        (SECOND_REPLY, SECOND),
        ("And again", None),
        (SECOND_REPLY, SECOND),
    ]
    assert shown["model"] == SECOND
    assert [r.body["model"] for r in server.second.requests] == [SECOND_UPSTREAM] * 2
    assert server.model.requests == []
