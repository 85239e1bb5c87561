"""Property tests: any Unicode (NUL and lone surrogates included) in a text field is either
stored and read back as sent, or refused with the one 422 problem; never a 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.validation import unstorable_reason
from tests.conftest import register

pytestmark = pytest.mark.storage

# Every code point, surrogates included, with the troublesome ones drawn often.
any_char = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None),
    st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\ufffd", "\U0001f600"]),
)
any_text = st.text(any_char, min_size=1, max_size=40)
API_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@given(any_text)
@settings(max_examples=500, derandomize=True)
def test_unstorable_reason_is_exactly_what_postgresql_refuses(text):
    assert (unstorable_reason(text) is None) == _storable(text)


def _body(value) -> bytes:
    return json.dumps(value).encode()  # lone surrogates go out as \ud800 escapes


@pytest.fixture
async def signed_in(client):
    headers = await register(client)
    headers["content-type"] = "application/json"
    r = await client.post(
        "/api/chat",
        content=_body({"messages": [{"role": "user", "content": "hi"}]}),
        headers=headers,
    )
    return headers, r.json()["sessionId"]


def _assert_refused(r, text) -> None:
    assert r.status_code == 422, (text, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    if not _storable(text):
        assert r.json()["code"] == "invalid_text"


@given(title=any_text)
@API_SETTINGS
async def test_any_title_is_stored_or_refused(client, signed_in, title):
    headers, sid = signed_in
    r = await client.patch(f"/api/sessions/{sid}", content=_body({"title": title}), headers=headers)
    if r.status_code == 200:
        assert _storable(title)
        stored = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()["title"]
        assert stored == " ".join(title.split())
    else:
        _assert_refused(r, title)


@given(content=any_text, context=st.none() | any_text)
@API_SETTINGS
async def test_any_chat_message_is_stored_or_refused(client, signed_in, content, context):
    headers, sid = signed_in
    body = {"messages": [{"role": "user", "content": content}], "sessionId": sid}
    if context is not None:
        body["context"] = context
    r = await client.post("/api/chat", content=_body(body), headers=headers)
    if r.status_code == 200:
        assert _storable(content) and (context is None or _storable(context))
        page = await client.get(f"/api/sessions/{sid}?limit=1000", headers=headers)
        user_messages = [m["content"] for m in page.json()["messages"] if m["role"] == "user"]
        assert user_messages[-1] == content
    else:
        _assert_refused(r, content if not _storable(content) else (context or content))


@given(
    q=st.text(
        st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=["Cs"]),
        max_size=40,
    )
)
@API_SETTINGS
async def test_any_search_is_answered_or_refused(client, signed_in, q):
    headers, _ = signed_in
    r = await client.get("/api/sessions", params={"q": q}, headers=headers)
    if r.status_code == 200:
        assert "\x00" not in q
        assert isinstance(r.json()["items"], list)
    else:
        _assert_refused(r, q)
