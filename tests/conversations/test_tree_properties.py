"""Property test: any sequence of messages, edits, regenerates and head moves keeps the
tree sound, and the model is always given the path from the new message's parent up."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.assistants import RecordingAssistant
from tests.conftest import chat, register

pytestmark = pytest.mark.storage

# (kind, pick): `pick` chooses a message among those stored (modulo their number).
operations = st.lists(
    st.tuples(st.sampled_from(["send", "edit", "regenerate", "head"]), st.integers(0, 50)),
    min_size=1,
    max_size=10,
)


class Model:
    """What the tree should be: each seq's parent, role and text, and the head."""

    def __init__(self) -> None:
        self.parent: dict[int, int | None] = {}
        self.role: dict[int, str] = {}
        self.text: dict[int, str] = {}
        self.head: int | None = None

    def add(self, parent: int | None, role: str, text: str) -> int:
        seq = len(self.parent) + 1
        self.parent[seq], self.role[seq], self.text[seq] = parent, role, text
        return seq

    def path(self, seq: int | None) -> list[int]:
        out = []
        while seq is not None:
            out.append(seq)
            seq = self.parent[seq]
        return out[::-1]

    def newest_leaf(self, seq: int) -> int:
        while children := [s for s, p in self.parent.items() if p == seq]:
            seq = max(children)
        return seq


@pytest.fixture
async def signed_in(client):
    return await register(client)


@given(ops=operations)
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_any_sequence_keeps_the_tree_sound(client, app, signed_in, ops):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    me = signed_in
    model = Model()
    first = await chat(client, me, "m0")
    sid = first.json()["sessionId"]
    model.head = model.add(model.add(None, "user", "m0"), "assistant", "reply to m0")
    expected_context: list[list[int]] = [[]]

    for n, (kind, pick) in enumerate(ops, start=1):
        target = pick % len(model.parent) + 1
        text = f"m{n}"
        if kind == "send":
            r = await chat(client, me, text, session_id=sid)
            assert r.status_code == 200, r.text
            expected_context.append(model.path(model.head))
            asked = model.add(model.head, "user", text)
            model.head = model.add(asked, "assistant", f"reply to {text}")
        elif kind == "edit":
            body = {
                "messages": [{"role": "user", "content": text}],
                "sessionId": sid,
                "editSeq": target,
            }
            r = await client.post("/api/chat", json=body, headers=me)
            if model.role[target] != "user":
                assert r.status_code == 422 and r.json()["code"] == "not_a_user_message"
                continue
            assert r.status_code == 200, r.text
            parent = model.parent[target]
            expected_context.append(model.path(parent))
            asked = model.add(parent, "user", text)
            model.head = model.add(asked, "assistant", f"reply to {text}")
            assert r.json()["seq"] == model.head
        elif kind == "regenerate":
            r = await client.post(f"/api/sessions/{sid}/messages/{target}/regenerate", headers=me)
            assert r.status_code == 200, r.text
            asked = target if model.role[target] == "user" else model.parent[target]
            assert asked is not None
            expected_context.append(model.path(model.parent[asked]))
            model.head = model.add(asked, "assistant", f"reply to {model.text[asked]}")
            assert r.json()["seq"] == model.head
        else:
            r = await client.put(f"/api/sessions/{sid}/head", json={"seq": target}, headers=me)
            assert r.status_code == 200, r.text
            model.head = model.newest_leaf(target)
            assert r.json()["headSeq"] == model.head

    # The model was given exactly the path from each new message's parent up.
    assert [[m.seq for m in t.history] for t in recorder.turns] == expected_context
    # What is stored is the model's tree: seq gapless, parents older, head a leaf.
    async with app.state.sessionmaker() as db:
        rows = (
            await db.execute(
                sa.text(
                    "SELECT seq, parent_seq, depth, role, content FROM chat_message"
                    " WHERE session_id = :s ORDER BY seq"
                ),
                {"s": sid},
            )
        ).all()
        head = (
            await db.execute(sa.text("SELECT head_seq FROM chat_session WHERE id = :s"), {"s": sid})
        ).scalar_one()
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert {r.seq: r.parent_seq for r in rows} == model.parent
    assert all(r.parent_seq is None or r.parent_seq < r.seq for r in rows)
    assert {r.seq: r.depth for r in rows} == {s: len(model.path(s)) for s in model.parent}
    assert {r.seq: r.content for r in rows} == model.text
    assert head == model.head and all(r.parent_seq != head for r in rows)
    # And the conversation reads as the active path, with every message's versions.
    detail: Any = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert [m["seq"] for m in detail["messages"]] == model.path(model.head)
    assert detail["messageCount"] == len(model.path(model.head))
    for m in detail["messages"]:
        siblings = sorted(s for s, p in model.parent.items() if p == m["parentSeq"])
        assert m["siblingSeqs"] == siblings
