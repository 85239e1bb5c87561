"""`/v1` driven by the official `openai` Python SDK, sync and async, streamed and not,
against a real server process: every exchange lands in the key owner's history."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from tests.fakemodel import Planned
from tests.openai_api.conftest import (
    CHAT_PER_MINUTE,
    MODEL,
    REPLY,
    SECOND,
    SECOND_KEY,
    SECOND_REPLY,
    SECOND_UPSTREAM,
    Account,
    Server,
    conversation,
    new_account,
    sessions,
)

pytestmark = [pytest.mark.process, pytest.mark.storage]

SYSTEM = {"role": "system", "content": "You answer in one sentence."}


def _client(server: Server, account: Account) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=account.key, max_retries=0)


def _async_client(server: Server, account: Account) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.v1, api_key=account.key, max_retries=0)


def _path(server: Server, account: Account, session_id: str) -> list[tuple[str, str]]:
    return [
        (m["role"], m["content"])
        for m in conversation(server.base, account, session_id)["messages"]
    ]


def test_models_list_the_catalog_of_the_page(server, account):
    models = _client(server, account).models.list()
    assert [m.id for m in models.data] == [MODEL, SECOND]
    r = httpx.get(f"{server.base}/api/models", headers=account.session, timeout=30)
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()["models"]] == [m.id for m in models.data]


def test_each_model_answers_for_its_id_and_is_recorded(server, account):
    client = _client(server, account)
    asked = server.second.requests[:]
    by_default = server.model.requests[:]
    for model, reply in ((MODEL, REPLY), (SECOND, SECOND_REPLY)):
        question = {"role": "user", "content": f"Which model is {model}?"}
        whole = client.chat.completions.create(model=model, messages=[question])
        assert whole.model == model
        assert whole.choices[0].message.content == reply
        sid = whole.model_extra["chatkeep"]["sessionId"]
        chunks = list(
            client.chat.completions.create(
                model=model,
                messages=[
                    question,
                    {"role": "assistant", "content": reply},
                    {"role": "user", "content": "And again?"},
                ],
                stream=True,
            )
        )
        assert {c.model for c in chunks} == {model}
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply
        shown = conversation(server.base, account, sid)
        assert shown["model"] == model
        replies = [m for m in shown["messages"] if m["role"] == "assistant"]
        assert [(m["content"], m["model"]) for m in replies] == [(reply, model), (reply, model)]
    # Each backend got the requests for its id: the second under its upstream name and key.
    (first, again) = server.second.requests[len(asked) :]
    assert first.body["model"] == again.body["model"] == SECOND_UPSTREAM
    assert first.headers["authorization"] == f"Bearer {SECOND_KEY}"
    assert [r.last_user for r in server.model.requests[len(by_default) :]] == [
        f"Which model is {MODEL}?",
        "And again?",
    ]


def test_sync_and_async_streamed_and_not_extend_one_conversation(server, account):
    client = _client(server, account)
    first = client.chat.completions.create(
        model=MODEL, messages=[SYSTEM, {"role": "user", "content": "What is a kestrel?"}]
    )
    assert first.object == "chat.completion"
    assert first.choices[0].message.content == REPLY
    assert first.choices[0].finish_reason == "stop"
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (11, 7)
    assert first.usage.total_tokens == 18

    (listed,) = sessions(server.base, account)
    assert listed["apiClient"] == "notebook"
    sid = listed["id"]
    # Titled like a conversation of the page: by its model, after the first exchange.
    _wait_for(
        lambda: sessions(server.base, account)[0]["title"] == "A fake title", "the model's title"
    )
    assert "What is a kestrel?" in server.model.title_requests[-1].last_user
    # The system prompt is the conversation's first message; the model got it as sent.
    assert _path(server, account, sid) == [
        ("system", SYSTEM["content"]),
        ("user", "What is a kestrel?"),
        ("assistant", REPLY),
    ]
    assert server.model.requests[-1].messages[0] == SYSTEM

    # Streamed, sync: the client resends the exchange with a new message.
    history = [
        SYSTEM,
        {"role": "user", "content": "What is a kestrel?"},
        {"role": "assistant", "content": REPLY},
    ]
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[*history, {"role": "user", "content": "Where does it live?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 18
    history += [
        {"role": "user", "content": "Where does it live?"},
        {"role": "assistant", "content": REPLY},
    ]

    async def more() -> None:
        aclient = _async_client(server, account)
        async with aclient:
            answer = await aclient.chat.completions.create(
                model=MODEL, messages=[*history, {"role": "user", "content": "And eats?"}]
            )
            assert answer.choices[0].message.content == REPLY
            history.extend(
                [{"role": "user", "content": "And eats?"}, {"role": "assistant", "content": REPLY}]
            )
            parts = []
            async with await aclient.chat.completions.create(
                model=MODEL,
                messages=[*history, {"role": "user", "content": "How fast?"}],
                stream=True,
            ) as events:
                async for chunk in events:
                    if chunk.choices:
                        parts.append(chunk.choices[0].delta.content or "")
            assert "".join(parts) == REPLY

    asyncio.run(more())

    # One conversation, one line: nothing was stored twice.
    (listed,) = sessions(server.base, account)
    assert listed["id"] == sid
    assert [content for _, content in _path(server, account, sid)] == [
        SYSTEM["content"],
        "What is a kestrel?",
        REPLY,
        "Where does it live?",
        REPLY,
        "And eats?",
        REPLY,
        "How fast?",
        REPLY,
    ]
    # Search finds what the client said.
    found = sessions(server.base, account, q="kestrel")
    assert [s["id"] for s in found] == [sid]


def test_a_resent_exchange_with_a_different_ending_is_a_branch(server, account):
    client = _client(server, account)
    u1 = {"role": "user", "content": "Name a river."}
    a1 = {"role": "assistant", "content": REPLY}
    client.chat.completions.create(model=MODEL, messages=[u1])
    client.chat.completions.create(
        model=MODEL, messages=[u1, a1, {"role": "user", "content": "A longer one."}]
    )
    branched = client.chat.completions.create(
        model=MODEL, messages=[u1, a1, {"role": "user", "content": "A shorter one."}]
    )
    (listed,) = sessions(server.base, account)
    sid = listed["id"]
    assert branched.model_extra["chatkeep"]["sessionId"] == sid
    shown = conversation(server.base, account, sid)
    messages = shown["messages"]
    # The active path is the new branch; its user message has the first ending as sibling.
    assert [m["content"] for m in messages] == ["Name a river.", REPLY, "A shorter one.", REPLY]
    third = messages[2]
    assert len(third["siblingSeqs"]) == 2 and third["parentSeq"] == messages[1]["seq"]

    # The same request again (a retry without a key) answers again beside the reply.
    client.chat.completions.create(
        model=MODEL, messages=[u1, a1, {"role": "user", "content": "A shorter one."}]
    )
    messages = conversation(server.base, account, sid)["messages"]
    assert [m["content"] for m in messages][:3] == ["Name a river.", REPLY, "A shorter one."]
    assert len(messages[3]["siblingSeqs"]) == 2
    assert len(sessions(server.base, account)) == 1


def test_a_session_id_in_metadata_skips_the_matching(server, account):
    client = _client(server, account)
    first = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Remember the number 7."}]
    )
    sid = first.model_extra["chatkeep"]["sessionId"]
    # Only the new message: the conversation is named, not matched.
    client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Which number?"}],
        metadata={"chatkeep_session_id": sid},
    )
    assert [c for _, c in _path(server, account, sid)] == [
        "Remember the number 7.",
        REPLY,
        "Which number?",
        REPLY,
    ]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hello"}],
            metadata={"chatkeep_session_id": "session_1_nope"},
        )


def test_tools_go_to_the_model_unchanged_and_calls_and_results_are_stored(server, account):
    client = _client(server, account)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    server.model.plan(Planned(tool=("get_weather", {"city": "Oslo"})))
    asked = [{"role": "user", "content": "Weather in Oslo?"}]
    called = client.chat.completions.create(
        model=MODEL, messages=asked, tools=tools, tool_choice="auto"
    )
    sent = server.model.requests[-1].body
    assert sent["tools"] == tools and sent["tool_choice"] == "auto"
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Oslo"}'

    server.model.plan(Planned(text="It is sunny in Oslo."))
    answered = client.chat.completions.create(
        model=MODEL,
        messages=[
            *asked,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny"}'},
        ],
        tools=tools,
    )
    assert answered.choices[0].message.content == "It is sunny in Oslo."
    sid = answered.model_extra["chatkeep"]["sessionId"]
    assert sid == called.model_extra["chatkeep"]["sessionId"]
    messages = conversation(server.base, account, sid)["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Weather in Oslo?"),
        ("assistant", ""),
        ("user", '{"sky": "sunny"}'),
        ("assistant", "It is sunny in Oslo."),
    ]
    assert messages[1]["toolCalls"][0]["function"]["name"] == "get_weather"
    assert messages[1]["toolCalls"][0]["id"] == call.id
    assert messages[2]["toolCallId"] == call.id


def test_errors_are_in_openais_shape_and_sdks_raise_their_exceptions(server, account):
    client = _client(server, account)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(
            model="gpt-nope", messages=[{"role": "user", "content": "hi"}]
        )
    assert unknown.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as invalid:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "assistant", "content": "x"}]
        )
    assert invalid.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[])
    r = httpx.post(
        f"{server.v1}/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        headers=account.session,  # a sign-in, not a key
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert set(r.json()["error"]) == {"message", "type", "code", "param"}


def test_a_revoked_key_is_refused(server, account):
    client = _client(server, account)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    r = httpx.delete(f"{server.base}/api/keys/{account.key_id}", headers=account.session)
    assert r.status_code == 204, r.text
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_another_users_key_never_reaches_this_users_history(server, account):
    exchange = [{"role": "user", "content": "My secret plan is X."}]
    mine = _client(server, account).chat.completions.create(model=MODEL, messages=exchange)
    other = new_account(server.base, key_name="theirs")
    resent = [
        *exchange,
        {"role": "assistant", "content": REPLY},
        {"role": "user", "content": "More"},
    ]
    theirs = _client(server, other).chat.completions.create(model=MODEL, messages=resent)
    assert theirs.model_extra["chatkeep"]["sessionId"] != mine.model_extra["chatkeep"]["sessionId"]
    # This user's history is what this user sent; the other's request started its own.
    (own,) = sessions(server.base, account)
    assert [c for _, c in _path(server, account, own["id"])] == ["My secret plan is X.", REPLY]
    (their,) = sessions(server.base, other)
    assert their["apiClient"] == "theirs"
    assert [c for _, c in _path(server, other, their["id"])] == [
        "My secret plan is X.",
        REPLY,
        "More",
        REPLY,
    ]
    # Naming this user's conversation from the other key is a 404, as a missing one.
    with pytest.raises(openai.NotFoundError):
        _client(server, other).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hello"}],
            metadata={"chatkeep_session_id": own["id"]},
        )


def test_the_chat_rate_limit_applies_to_a_key_as_openais_429(server, account):
    client = _client(server, account)
    with pytest.raises(openai.RateLimitError) as limited:
        for i in range(CHAT_PER_MINUTE + 1):
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"count {i}"}]
            )
    assert limited.value.status_code == 429
    assert limited.value.body["type"] == "rate_limit_error"
    assert int(limited.value.response.headers["Retry-After"]) > 0
    assert len(sessions(server.base, account)) == CHAT_PER_MINUTE


def test_an_idempotency_key_answers_a_retry_with_the_same_reply(server, account):
    client = _client(server, account)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Only once, please."}]}
    key = {"Idempotency-Key": "v1-retry-1"}
    first = client.chat.completions.create(**body, extra_headers=key)
    again = client.chat.completions.create(**body, extra_headers=key)
    assert again.id == first.id
    assert again.choices[0].message.content == first.choices[0].message.content
    (listed,) = sessions(server.base, account)
    assert [c for _, c in _path(server, account, listed["id"])] == ["Only once, please.", REPLY]
    with pytest.raises(openai.BadRequestError) as reused:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Something else"}], extra_headers=key
        )
    assert reused.value.body["code"] == "idempotency_key_reused"


def _wait_for(condition, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_closing_the_request_stops_the_reply_and_keeps_what_was_written(server, account):
    words = [f"w{i}" for i in range(200)]
    server.model.plan(Planned(text=" ".join(words), chunk_seconds=0.05))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Talk for a while."}]}
    with httpx.stream(
        "POST",
        f"{server.v1}/chat/completions",
        json={**body, "stream": True},
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=30,
    ) as r:
        assert r.status_code == 200
        got = ""
        for line in r.iter_lines():
            if line.startswith("data: {"):
                got += (json.loads(line[6:])["choices"][0]["delta"].get("content")) or ""
            if len(got.split()) >= 3:
                break  # and the response is closed here, mid-reply

    def stored_reply():
        (listed,) = sessions(server.base, account)
        messages = conversation(server.base, account, listed["id"])["messages"]
        return messages[-1] if messages[-1]["role"] == "assistant" else None

    reply = _wait_for(stored_reply, "the stopped reply")
    assert reply["stopped"] is True
    assert 3 <= len(reply["content"].split()) < len(words)
    assert " ".join(words).startswith(reply["content"])


def test_closing_an_unstreamed_request_stops_the_reply_too(server, account):
    words = [f"w{i}" for i in range(200)]
    server.model.plan(Planned(text=" ".join(words), chunk_seconds=0.05))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Talk, then be cut off."}]}
    # The client gives up after a second (10 s of words planned) and closes the connection.
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{server.v1}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {account.key}"},
            timeout=httpx.Timeout(30, read=1.0),
        )

    def stored_reply():
        (listed,) = sessions(server.base, account)
        messages = conversation(server.base, account, listed["id"])["messages"]
        return messages[-1] if messages[-1]["role"] == "assistant" else None

    reply = _wait_for(stored_reply, "the stopped reply")
    assert reply["stopped"] is True
    assert len(reply["content"].split()) < len(words)
    assert " ".join(words).startswith(reply["content"])


def test_a_conversation_from_the_page_is_continued_by_a_client_that_resends_it(server, account):
    r = httpx.post(
        f"{server.base}/api/chat",
        json={"messages": [{"role": "user", "content": "Started on the page."}]},
        headers=account.session,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    sid, reply = r.json()["sessionId"], r.json()["reply"]
    client = _client(server, account)
    resent = [
        {"role": "user", "content": "Started on the page."},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "Continued from a script."},
    ]
    answer = client.chat.completions.create(model=MODEL, messages=resent)
    assert answer.model_extra["chatkeep"]["sessionId"] == sid
    # And back on the page, then from the script again: still one conversation.
    r = httpx.post(
        f"{server.base}/api/chat",
        json={"messages": [{"role": "user", "content": "Back on the page."}], "sessionId": sid},
        headers=account.session,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    resent += [
        {"role": "assistant", "content": answer.choices[0].message.content},
        {"role": "user", "content": "Back on the page."},
        {"role": "assistant", "content": r.json()["reply"]},
        {"role": "user", "content": "And the script again."},
    ]
    again = client.chat.completions.create(model=MODEL, messages=resent)
    assert again.model_extra["chatkeep"]["sessionId"] == sid
    assert len(sessions(server.base, account)) == 1
    assert len(_path(server, account, sid)) == 8


def test_a_failing_model_is_a_502_the_sdks_raise_and_the_message_is_kept(server, account):
    client = _client(server, account)
    server.model.plan(Planned(status=500), Planned(status=500))
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Will this fail?"}]
        )
    assert failed.value.status_code == 502
    assert failed.value.body["type"] == "server_error"
    with pytest.raises(openai.APIError):
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Streamed failure?"}], stream=True
        )
        list(stream)
    titles = sorted(s["title"] for s in sessions(server.base, account))
    assert titles == ["Streamed failure?", "Will this fail?"]
