"""Hostile text, numbers, cursors and dates: a clean 4xx in the one error shape, never a 500.

Every route reads text through the same layer (app.core.validation), so the cases here
cover each way text comes in: JSON body, query, path, form, cursor and imported file.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.core.validation import find_unstorable, format_utc
from tests.conftest import TEST_PASSWORD, chat, register

pytestmark = pytest.mark.storage

NUL = "a\x00b"
SURROGATE = "a\ud800b"


def _raw_json(value) -> bytes:
    # json.dumps escapes a lone surrogate as \ud800, which is what a hostile client sends.
    return json.dumps(value).encode()


def _assert_invalid_text(r) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "invalid_text"
    assert body["status"] == 422
    assert "cannot be stored" in body["detail"]


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
async def test_unstorable_text_is_refused_in_every_kind_of_input(client, bad):
    h = await register(client)
    sid = (await chat(client, h, "hello")).json()["sessionId"]
    json_h = {**h, "content-type": "application/json"}

    for body in (
        {"messages": [{"role": "user", "content": bad}]},
        {"messages": [{"role": "user", "content": "hi"}], "context": bad},
        {"messages": [{"role": "user", "content": "hi"}], "sessionId": bad},
    ):
        _assert_invalid_text(
            await client.post("/api/chat", content=_raw_json(body), headers=json_h)
        )
    _assert_invalid_text(
        await client.patch(
            f"/api/sessions/{sid}", content=_raw_json({"title": bad}), headers=json_h
        )
    )
    _assert_invalid_text(
        await client.post(
            "/api/sessions/restore", content=_raw_json({"ids": [bad]}), headers=json_h
        )
    )
    _assert_invalid_text(
        await client.post(
            "/auth/register",
            content=_raw_json({"email": "x@example.com", "password": f"long {bad} password"}),
            headers={"content-type": "application/json"},
        )
    )
    if bad == NUL:  # a lone surrogate cannot be put in a URL or a form (not UTF-8)
        _assert_invalid_text(await client.get("/api/sessions", params={"q": bad}, headers=h))
        _assert_invalid_text(await client.get("/api/sessions/a%00b", headers=h))
        _assert_invalid_text(
            await client.get("/api/export", params={"format": "zip", "q": bad}, headers=h)
        )
        _assert_invalid_text(
            await client.post("/auth/jwt/login", data={"username": bad, "password": TEST_PASSWORD})
        )
    # Nothing was stored, and the account works as before.
    detail = (await client.get(f"/api/sessions/{sid}", headers=h)).json()
    assert detail["title"] == "hello" and detail["messageCount"] == 2


async def test_unstorable_text_in_a_multipart_form_is_refused(client):
    email = "multipart@example.com"
    await register(client, email)
    for fields in (
        {"username": NUL, "password": TEST_PASSWORD},
        {"username": email, "password": f"long {NUL} password"},
        {"username": email, "password": TEST_PASSWORD, "device": NUL},
    ):
        # `files` makes httpx send multipart/form-data, which the sign-in form accepts too.
        r = await client.post(
            "/auth/jwt/login", data=fields, files={"unused": ("a.txt", b"plain", "text/plain")}
        )
        _assert_invalid_text(r)
    ok = await client.post(
        "/auth/jwt/login",
        data={"username": email, "password": TEST_PASSWORD},
        files={"unused": ("a.txt", b"plain", "text/plain")},
    )
    assert ok.status_code == 200, ok.text
    # A malformed multipart body is the route's to refuse: a 4xx, never a 500.
    r = await client.post(
        "/auth/jwt/login",
        content=b'--x\r\nContent-Disposition: form-data; name="username"\r\n\r\na\x00',
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_surrogate_pair_is_fine(client):
    h = await register(client)
    r = await client.post(
        "/api/chat",
        content=b'{"messages": [{"role": "user", "content": "smile \\ud83d\\ude00"}]}',
        headers={**h, "content-type": "application/json"},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "body",
    [
        # A lone surrogate as raw (surrogatepass) bytes, without any \u escape.
        b'{"messages": [{"role": "user", "content": "a\xed\xa0\x80b"}]}',
        # UTF-16 JSON, which json and FastAPI both accept, holding an escaped NUL.
        '{"messages": [{"role": "user", "content": "a\\u0000b"}]}'.encode("utf-16"),
    ],
    ids=["raw-surrogate-bytes", "utf-16"],
)
async def test_unstorable_text_in_any_json_spelling_is_refused(client, body):
    h = await register(client)
    r = await client.post(
        "/api/chat", content=body, headers={**h, "content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_text"
    assert (await client.get("/api/sessions", headers=h)).json()["items"] == []


async def test_out_of_range_numbers_and_cursors_are_4xx(client):
    h = await register(client)
    sid = (await chat(client, h, "hello")).json()["sessionId"]
    r = await client.get(f"/api/sessions/{sid}", params={"after_seq": 2**31}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"
    assert (
        await client.get(f"/api/sessions/{sid}?after_seq={2**31 - 1}", headers=h)
    ).status_code == 200

    def b64(raw: str) -> str:
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    year_one = -(datetime(1970, 1, 1, tzinfo=UTC) - datetime(1, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )
    for cursor in (b64(f"1:{year_one}:{sid}"), b64(f"1:0:{NUL}"), b64("1:" + "9" * 40 + ":x")):
        r = await client.get("/api/sessions", params={"cursor": cursor}, headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_cursor"
    for cursor in (
        b64(f"0001-01-01T00:00:00+01:00|{uuid.uuid4()}"),
        b64(f"9999-12-31T23:59:59-01:00|{uuid.uuid4()}"),
        b64(f"2026-01-01T00:00:00|{uuid.uuid4()}"),
    ):
        r = await client.get("/api/posts", params={"cursor": cursor}, headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_cursor"


async def test_export_filters_are_checked_before_the_first_byte(client):
    h = await register(client)
    await chat(client, h, "hello")
    for params in ({"to": "9999-12-31"}, {"from": "0001-01-01"}, {"to": "2026-02-30"}):
        r = await client.get("/api/export", params={"format": "zip", **params}, headers=h)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    ok = await client.get("/api/export", params={"format": "zip", "to": "2100-12-31"}, headers=h)
    assert ok.status_code == 200 and ok.content[:2] == b"PK"


def _document(created_at: str, **message) -> dict:
    return {
        "format": "chatkeep.conversation",
        "version": 1,
        "conversation": {
            "id": "src-1",
            "title": "imported",
            "createdAt": created_at,
            "lastActivityAt": "2026-01-01T00:00:00Z",
            "messageCount": 1,
            "messages": [
                {
                    "seq": 1,
                    "role": "user",
                    "content": "hi",
                    "createdAt": "2026-01-01T00:00:00Z",
                    **message,
                }
            ],
        },
    }


@pytest.mark.parametrize(
    "created_at", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "2101-01-01T00:00:00Z"]
)
async def test_import_refuses_impossible_dates_and_exports_keep_working(client, created_at):
    h = await register(client)
    await chat(client, h, "hello")
    r = await client.post("/api/import", content=_raw_json(_document(created_at)), headers=h)
    assert r.status_code == 422, r.text
    assert "1970" in r.json()["detail"]
    assert (await client.get("/api/export?format=zip", headers=h)).status_code == 200


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
async def test_import_refuses_unstorable_text_anywhere_in_the_file(client, bad):
    h = await register(client)
    for doc in (
        _document("2026-01-01T00:00:00Z", content=bad),
        _document("2026-01-01T00:00:00Z", metadata={"note": bad}),
        _document("2026-01-01T00:00:00Z", metadata={bad: 1}),
    ):
        r = await client.post("/api/import", content=_raw_json(doc), headers=h)
        _assert_invalid_text(r)
    ok = await client.post(
        "/api/import", content=_raw_json(_document("2026-01-01T00:00:00Z")), headers=h
    )
    assert ok.status_code == 200, ok.text


def test_date_formatting_is_total():
    year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert format_utc(year_one).startswith("0001-01-01T00:00:00")
    assert format_utc(datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))))
    assert format_utc(datetime(2026, 1, 1, 12, tzinfo=UTC)) == "2026-01-01T12:00:00Z"
    assert format_utc(datetime(2026, 1, 1, 12), "%Y-%m-%d %H:%M UTC") == "2026-01-01 12:00 UTC"


def test_find_unstorable_names_where():
    assert find_unstorable({"a": [1, {"b": "x\x00"}]}, "body") == (
        "body.a.1.b",
        "holds a NUL character (U+0000)",
    )
    assert find_unstorable({"ok": ["fine", "\U0001f600"]}) is None
