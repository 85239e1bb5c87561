"""Refuse at the edge: text PostgreSQL cannot store, numbers out of column range, odd dates.

One layer for every way text comes in. `TextInputMiddleware` checks the path, the query
string and JSON or form bodies of every request before a route runs; the importer and the
cursor decoders call `find_unstorable` on what they decode. What is refused gets the one
error shape: `422`, code `invalid_text`.

Unstorable text: U+0000 (PostgreSQL text cannot hold NUL) and lone surrogates
(U+D800 to U+DFFF, which are not Unicode scalar values and cannot be encoded as UTF-8).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import AfterValidator, AwareDatetime
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser

from app.core.errors import InvalidInputError, problem_response

PG_INT_MAX = 2**31 - 1  # the largest `integer` PostgreSQL stores
# Dates the app accepts from outside (imports, cursors, export filters).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
INVALID_TEXT = "invalid_text"


def unstorable_reason(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "holds a NUL character (U+0000)"
    return f"holds a lone surrogate (U+{ord(found.group()):04X})"


def find_unstorable(value: Any, location: str = "") -> tuple[str, str] | None:
    """The first (location, reason) of unstorable text in a decoded JSON value, keys included."""
    for where, text in _strings(value, location):
        reason = unstorable_reason(text)
        if reason is not None:
            return where, reason
    return None


def _strings(value: Any, location: str) -> Iterator[tuple[str, str]]:
    stack: list[tuple[str, Any]] = [(location, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, inner in item.items():
                inner_where = f"{where}.{key}" if where else str(key)
                yield inner_where, str(key)
                stack.append((inner_where, inner))
        elif isinstance(item, list):
            stack.extend((f"{where}.{i}" if where else str(i), v) for i, v in enumerate(item))


def invalid_text_error(location: str, reason: str) -> InvalidInputError:
    return InvalidInputError(_message(location, reason), code=INVALID_TEXT)


def _message(location: str, reason: str) -> str:
    return f"{location} {reason}, which cannot be stored; send valid Unicode text."


def check_storable(text: str, location: str) -> str:
    """`text`, or the `invalid_text` error (for decoders: cursors, ids)."""
    reason = unstorable_reason(text)
    if reason is not None:
        raise invalid_text_error(location, reason)
    return text


# --------------------------------------------------------------------------- dates


def in_date_range(value: datetime) -> datetime:
    """Pydantic validator: an aware datetime between 1970 and 2100 (UTC)."""
    if not EARLIEST <= value <= LATEST:
        raise ValueError("must be between 1970-01-01 and 2100-12-31 (UTC)")
    return value


def in_day_range(value: date) -> date:
    if not EARLIEST.date() <= value <= LATEST.date():
        raise ValueError("must be between 1970-01-01 and 2100-12-31")
    return value


SaneDatetime = Annotated[AwareDatetime, AfterValidator(in_date_range)]
SaneDate = Annotated[date, AfterValidator(in_day_range)]


def format_utc(value: datetime, fmt: str | None = None) -> str:
    """A datetime as UTC text, for any value a datetime can hold (total, never raises).

    Rows written before dates were bounded may hold year 1 with an offset, which has no
    UTC form in Python; those are shown as stored rather than failing a whole export.
    """
    try:
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except (OverflowError, ValueError):
        utc = value
    if fmt is not None:
        return utc.strftime(fmt)
    return utc.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------- middleware

_JSON_TYPES = ("application/json",)
_FORM_TYPE = "application/x-www-form-urlencoded"
_MULTIPART_TYPE = "multipart/form-data"
# A form the app takes as multipart (the sign-in form) has a few fields; more is not ours.
_MULTIPART_MAX_FIELDS = 100
_MULTIPART_MAX_FILES = 10


class TextInputMiddleware:
    """Refuses requests whose path, query or JSON/form/multipart body holds unstorable text.

    Runs before routing and before any response byte, so a streamed response never starts
    on input it would fail on. Bodies are read whole here; the body-size limit (outside
    this middleware) bounds them. `exempt_body_prefixes` are routes that read large bodies
    themselves (the import), which check what they decode with `find_unstorable`.
    """

    def __init__(self, app: Any, *, exempt_body_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.exempt_body_prefixes = exempt_body_prefixes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = self._check_url(scope)
        if found is None and not scope["path"].startswith(self.exempt_body_prefixes):
            content_type = _content_type(scope)
            if content_type.endswith("json") or content_type == _FORM_TYPE:
                body = await _read_body(receive)
                receive = _replay(body, receive)
                found = _check_body(body, content_type)
            elif content_type == _MULTIPART_TYPE:
                body = await _read_body(receive)
                receive = _replay(body, receive)
                found = await _check_multipart(body, scope)
        if found is not None:
            location, reason = found
            response = problem_response(
                422,
                detail=_message(location, reason),
                code=INVALID_TEXT,
                title="Invalid input",
                extra={"errors": [{"location": location, "message": reason}]},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check_url(self, scope: Any) -> tuple[str, str] | None:
        reason = unstorable_reason(scope["path"])
        if reason is not None:
            return "path", reason
        query = scope.get("query_string", b"").decode("latin-1")
        # Decoded as Starlette decodes it (invalid UTF-8 becomes U+FFFD, which is storable).
        for key, value in parse_qsl(query, keep_blank_values=True):
            for text in (key, value):
                reason = unstorable_reason(text)
                if reason is not None:
                    return f"query.{key}", reason
        return None


def _content_type(scope: Any) -> str:
    for key, value in scope.get("headers", []):
        if key == b"content-type":
            return str(value.decode("latin-1").split(";", 1)[0].strip().lower())
    return ""


async def _read_body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _check_multipart(body: bytes, scope: Any) -> tuple[str, str] | None:
    """The first unstorable field name or value of a multipart form (file parts: the name;
    their content is the route's to check)."""
    if not body:
        return None

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        Headers(scope=scope),
        stream(),
        max_files=_MULTIPART_MAX_FILES,
        max_fields=_MULTIPART_MAX_FIELDS,
    )
    try:
        form = await parser.parse()
    except MultiPartException:
        return None  # malformed: the route's own parsing answers 400 or 422
    try:
        for key, value in form.multi_items():
            reason = unstorable_reason(key)
            if reason is None and isinstance(value, str):
                reason = unstorable_reason(value)
            if reason is not None:
                return f"body.{key}", reason
        return None
    finally:
        await form.close()


def _check_body(body: bytes, content_type: str) -> tuple[str, str] | None:
    if not body:
        return None
    if content_type == _FORM_TYPE:
        text = body.decode("latin-1")
        for key, value in parse_qsl(text, keep_blank_values=True):
            for item in (key, value):
                reason = unstorable_reason(item)
                if reason is not None:
                    return f"body.{key}", reason
        return None
    if b"\\u" not in body and b"\xed" not in body and b"\x00" not in body:
        # Nothing to find, so no second parse of the body (the route parses it anyway): in
        # UTF-8 JSON a NUL or a lone surrogate is spelled as a \u escape, or as the raw
        # bytes ED A0..BF (surrogatepass), and UTF-16/32 JSON holds NUL bytes.
        return None
    try:
        # Like FastAPI: bytes in, so raw surrogate bytes decode (surrogatepass) and are seen.
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the route's own validation answers 422
    return find_unstorable(value, "body")
