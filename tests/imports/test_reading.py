"""Property tests of the streaming reader: whatever the bytes (mangled exports of every
format, as JSON or inside a ZIP), it yields checked conversations or refuses with the one
problem shape; never another exception (which would be a 500). And a text with escapes is
read as `json.loads` reads it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import AppError
from app.imports.limits import ImportLimits
from app.imports.reading import ExportReader

FIXTURES = Path(__file__).parent / "fixtures"
AT = "2026-01-01T00:00:00Z"
LIMITS = ImportLimits(
    max_bytes=1 << 20,
    max_uncompressed_bytes=1 << 20,
    max_ratio=100,
    max_conversations=50,
    max_messages=500,
    max_message_chars=1000,
    max_conversation_bytes=20_000,
    batch_bytes=2_000,
)


def _chatkeep(content: str) -> bytes:
    conv = {
        "id": "a",
        "title": "t",
        "createdAt": AT,
        "lastActivityAt": AT,
        "messageCount": 1,
        "messages": [{"seq": 1, "role": "user", "content": content, "createdAt": AT}],
    }
    return json.dumps({"format": "chatkeep.export", "version": 1, "conversations": [conv]})


SOURCES = [p.read_bytes() for p in sorted(FIXTURES.glob("*.json"))] + [
    _chatkeep("hello \U0001f600").encode()
]
PIECES = [b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\\u", b"d83d", b"\\ud800", b"\x00"]
PIECES += [b"\xef\xbb\xbf", b"\xff", b" ", b"1e999", b"null", b"99999999999999999999999"]


def _read(data: bytes) -> list[str]:
    reader = ExportReader(io.BytesIO(data), LIMITS)
    try:
        return [c.conversation.id for batch in reader.batches() for c in batch]
    finally:
        reader.close()


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["cut", "insert", "repeat"]))
        if kind == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(PIECES))
        else:
            start = draw(st.integers(0, len(data)))
            data[at:at] = data[start : start + draw(st.integers(1, 400))]
    if draw(st.booleans()):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("conversations.json", bytes(data))
        data = bytearray(out.getvalue())
        if draw(st.booleans()):
            data[draw(st.integers(0, len(data) - 1))] ^= 0xFF
    return bytes(data)


@given(mangled())
@settings(max_examples=400, deadline=None, derandomize=True)
def test_any_mangled_file_is_read_or_refused_with_a_problem(data: bytes) -> None:
    try:
        _read(data)
    except AppError as exc:
        assert exc.status_code in (413, 422), exc
        assert exc.code


# Characters and pieces that look like escapes once written as JSON (lone surrogates are
# refused, as tests/core/test_hostile_input.py shows).
text = st.lists(
    st.one_of(
        st.characters(min_codepoint=1, max_codepoint=0x10FFFF, exclude_categories=["Cs"]),
        st.sampled_from(["\\", '"', "\\u", "\\ud83d", "\U0001f600", "é"]),
    ),
    max_size=60,
).map("".join)


@given(text, st.booleans())
@settings(max_examples=200, deadline=None, derandomize=True)
def test_text_comes_back_as_json_reads_it(content: str, ascii_only: bool) -> None:
    doc = json.loads(_chatkeep(content))
    raw = json.dumps(doc, ensure_ascii=ascii_only).encode()
    reader = ExportReader(io.BytesIO(raw), LIMITS)
    try:
        [[checked]] = list(reader.batches())
    finally:
        reader.close()
    assert checked.conversation.messages[0].content == content
