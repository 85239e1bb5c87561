"""Property tests of the streaming reader: whatever the bytes (mangled exports of every
format, as JSON or inside a ZIP), it yields checked conversations or refuses with the one
problem shape; never another exception (which would be a 500). And a text with escapes is
read as `json.loads` reads it."""

from __future__ import annotations

import io
import json
import random
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


class _Trickle(io.BytesIO):
    """A file that hands out its bytes in the given small sizes, in turn."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        super().__init__(data)
        self._sizes = sizes
        self._turn = 0

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size <= 4:  # the format sniff, and ijson's first read of 0
            return super().read(size)
        self._turn += 1
        return super().read(min(size, self._sizes[self._turn % len(self._sizes)]))


# Escapes as they appear in JSON text: pairs, lone halves, and escaped backslashes before
# text that looks like an escape.
ESCAPES = ["\\ud83d\\ude00", "\\ud800", "\\udc00", "\\\\ud800", "\\\\\\ud83d\\ude00", "\\\\"]
ESCAPES += ["abc", "\\u00e9", " "]


@given(
    st.lists(st.sampled_from(ESCAPES), min_size=1, max_size=30),
    st.lists(st.integers(1, 40), min_size=1, max_size=8),
)
@settings(max_examples=400, deadline=None, derandomize=True)
def test_a_lone_surrogate_is_found_wherever_the_reads_split_the_text(
    pieces: list[str], sizes: list[int]
) -> None:
    body = "".join(pieces)
    doc = _chatkeep("PLACEHOLDER").replace("PLACEHOLDER", body)
    expected = json.loads(doc)["conversations"][0]["messages"][0]["content"]
    lone = any("\ud800" <= c <= "\udfff" for c in expected)
    reader = ExportReader(_Trickle(doc.encode(), sizes), LIMITS)
    try:
        [[checked]] = list(reader.batches())
    except AppError as exc:
        assert lone and exc.code == "invalid_text", (body, exc)
    else:
        assert not lone, body
        assert checked.conversation.messages[0].content == expected
    finally:
        reader.close()


def test_every_split_of_tricky_escapes() -> None:
    """Reads split at every place over texts where an escaped backslash sits next to a pair
    or a lone half."""
    for body, lone in (
        ("\\\\ud800\\udc00\\\\\\ud83d\\ude00abc", True),
        ("\\\\\\ud83d\\ude00\\ud800 \\\\ud800", True),
        ("\\\\ud800\\\\ud800\\\\\\ud83d\\ude00", False),
        ("\\ud83d\\ude00" * 8, False),
    ):
        doc = _chatkeep("PLACEHOLDER").replace("PLACEHOLDER", body).encode()
        for sizes in _size_runs():
            reader = ExportReader(_Trickle(doc, sizes), LIMITS)
            try:
                list(reader.batches())
                assert not lone, (body, sizes)
            except AppError as exc:
                assert lone and exc.code == "invalid_text", (body, sizes, exc)
            finally:
                reader.close()


def _size_runs() -> list[list[int]]:
    """Every read size from 1 to 40, and many seeded runs of mixed sizes."""
    rng = random.Random(20261207)
    return [[n] for n in range(1, 41)] + [
        [rng.randint(1, 40) for _ in range(16)] for _ in range(400)
    ]
