"""Reading an export: recognised by its first bytes and keys, then streamed one
conversation at a time, with every budget checked as the items arrive.

Memory never grows with the file: the parser (ijson's event stream) holds one
conversation at a time, bounded by MAX_IMPORT_CONVERSATION_BYTES (its text plus
`VALUE_COST` bytes per JSON value), and the conversation and message counts are checked
as each entry arrives, before it is built. Nesting deeper than `MAX_DEPTH` is refused as
it is read. A tree-shaped source (ChatGPT's `mapping`, Open WebUI's `history`, Claude's
parents) arrives whole per conversation, with every node's id and parent, so the converters
in `app.imports.formats` see the whole tree.

Everything here is blocking: the caller runs it in a worker thread.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import ijson

from app.core.errors import AppError, InvalidInputError, PayloadTooLargeError
from app.core.validation import find_unstorable, invalid_text_error
from app.exports.service import (
    ARCHIVE_FORMAT,
    CONVERSATION_FORMAT,
    EXPORT_FORMAT_VERSION,
    READABLE_FORMAT_VERSIONS,
)
from app.exports.zip_export import CONVERSATIONS_FILE, MANIFEST_FILE
from app.imports import formats
from app.imports.checks import (
    ImportedConversation,
    ImportFailure,
    check,
    content_hash,
    entry_label,
    rejected,
)
from app.imports.limits import ImportLimits

READ_CHUNK = 64 * 1024
MAX_ZIP_MEMBERS = 100_000
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
# Deeper than any product's export (ChatGPT's is about 8 levels); the parser's own bookkeeping
# grows with the square of the depth, so this is checked on every value as it opens.
MAX_DEPTH = 64
# What one JSON value costs in memory beyond its text, about (a Python object and its slot).
VALUE_COST = 64
BOM = b"\xef\xbb\xbf"
_DRIVE = re.compile(r"^[A-Za-z]:")
_SPLIT_MEMBER = re.compile(r"conversations-\d{1,6}\.json")
# A `\uD800`-`\uDFFF` escape that is not half of a pair; the parser would turn it into "?",
# so it is found in the raw bytes (an escaped backslash before it does not count).
# A pair not after a backslash (after one, the careful scan counts them).
_PAIR = re.compile(rb"(?<!\\)\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LOW = re.compile(rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_NOT_AN_EXPORT = "The file is not an export of Chatkeep, ChatGPT, Claude or Open WebUI."


def _unsupported() -> InvalidInputError:
    return rejected(_NOT_AN_EXPORT, "unsupported_format")


def _invalid_json(why: str = "") -> InvalidInputError:
    where = f" ({why})" if why else ""
    return rejected(f"The file is not valid JSON{where}.", "invalid_json")


def _damaged() -> InvalidInputError:
    return rejected("The archive is damaged.", "bad_archive")


def too_many_conversations(count: int, limits: ImportLimits) -> InvalidInputError:
    return rejected(
        f"The file holds more than {count - 1} conversations; at most "
        f"{limits.max_conversations} can be imported at once (MAX_IMPORT_CONVERSATIONS).",
        "too_many_conversations",
    )


def too_many_messages(count: int, limits: ImportLimits) -> InvalidInputError:
    return rejected(
        f"The file holds at least {count} messages; at most {limits.max_messages} can be "
        "imported at once (MAX_IMPORT_MESSAGES).",
        "too_many_messages",
    )


# ----------------------------------------------------------------------------- bytes


class _Stream:
    """What the parser reads: the upload or one ZIP member, counted against a cap,
    optionally hashed, its BOM dropped, and lone surrogate escapes refused."""

    def __init__(
        self,
        raw: IO[bytes],
        *,
        cap: int | None = None,
        over: Callable[[], AppError] | None = None,
        hashed: bool = False,
        zipped: bool = False,
    ) -> None:
        self._raw = raw
        self._cap = cap
        self._over = over
        self._zipped = zipped
        self.seen = 0
        self.hash = hashlib.sha256() if hashed else None
        self._first = True
        self._carry = b""
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        if self._eof or size == 0:  # ijson reads 0 bytes first to learn the type
            return b""
        try:
            chunk = self._raw.read(READ_CHUNK if size is None or size < 0 else size)
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error, NotImplementedError):
            if self._zipped:
                raise _damaged() from None
            raise
        self.seen += len(chunk)
        if self._cap is not None and self.seen > self._cap and self._over is not None:
            raise self._over()
        if self.hash is not None:
            self.hash.update(chunk)
        if not chunk:
            self._eof = True
        self._scan(chunk)
        if self._first and chunk:
            self._first = False
            chunk = chunk.removeprefix(BOM)
            if not chunk:  # the BOM alone in the first read: read on
                return self.read(size)
        return chunk

    def _scan(self, chunk: bytes) -> None:
        """Refuses a lone surrogate escape; a pair split between two reads is joined first."""
        data = self._carry + chunk
        # Most text has no surrogate escape, or only whole pairs (emoji): two scans in C of
        # what the previous read left unchecked (from the start of a pair cut there). The
        # careful scan runs only where an escape looks lone, but for one in the last 12
        # bytes, which the next read completes (and checks).
        lone = None
        if b"\\u" in data:
            start = max(0, len(self._carry) - 12)
            start = next(
                (b for b in range(max(0, start - 11), start) if _PAIR.match(data, b)), start
            )
            while start > 0 and data[start - 1] == 0x5C:  # keep a run of backslashes whole
                start -= 1
            *between, last = _PAIR.split(data[start:])
            lone = _SURROGATE.search(b"|".join(between)) if between else None
            if lone is None:
                lone = _SURROGATE.search(last)
                if lone is not None and len(last) - lone.start() <= 12 and not self._eof:
                    lone = None
        if lone is not None:
            # An escape starting in the last 12 bytes may be half of a pair still to come.
            limit = len(data) if self._eof else len(data) - 12
            found = _lone_surrogate(data, report_from=len(self._carry) - 12, limit=limit)
            if found is not None:
                raise invalid_text_error(
                    "The file", f"holds a lone surrogate (U+{found[2:].decode().upper()})"
                )
        self._carry = data[-64:]

    def drain(self) -> None:
        while self.read(READ_CHUNK):
            pass


def _lone_surrogate(data: bytes, *, report_from: int, limit: int) -> bytes | None:
    """The first surrogate escape in `data` between `report_from` and `limit` that is not
    half of a pair (escapes before `report_from` were checked already)."""
    skip_to = 0
    for found in _SURROGATE.finditer(data):
        at = found.start()
        if at < skip_to:
            continue
        backslashes = 0
        while at - backslashes > 0 and data[at - backslashes - 1] == 0x5C:
            backslashes += 1
        if backslashes % 2:
            continue  # `\\u...`: an escaped backslash, then text
        escape = found.group()
        if escape[3:4] in b"89abAB" and _LOW.match(data, at + 6):
            skip_to = at + 12  # a whole pair
            continue
        if at >= limit:
            return None
        if at >= report_from:
            return escape
    return None


# ----------------------------------------------------------------------------- values


class _TooBig(Exception):
    """One conversation is over MAX_IMPORT_CONVERSATION_BYTES; what was read of it."""

    def __init__(self, partial: Any) -> None:
        super().__init__("too big")
        self.partial = partial


_STARTS = {"start_map": dict, "start_array": list}
_ENDS = {"end_map", "end_array"}


class _Events:
    """ijson's event stream of one document, with its depth and value budgets."""

    def __init__(self, stream: _Stream) -> None:
        self._events = ijson.basic_parse(stream, use_float=True, buf_size=READ_CHUNK)
        self.depth = 0
        self.cost = 0  # what the last value built took of its budget

    def next(self) -> tuple[str, Any]:
        try:
            event, value = next(self._events)
        except StopIteration:
            return "eof", None
        except UnicodeDecodeError:
            # yajl writes a lone surrogate escape as its UTF-8 form, which Python refuses.
            raise invalid_text_error("The file", "holds a lone surrogate") from None
        except ijson.JSONError as exc:
            why = str(exc.args[0] if exc.args else exc)
            if isinstance(exc.args[0] if exc.args else None, bytes):
                why = exc.args[0].decode("utf-8", "replace")
            raise _invalid_json(why.splitlines()[0] if why else "") from None
        if event in _STARTS:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _invalid_json(f"nested more than {MAX_DEPTH} levels deep")
        elif event in _ENDS:
            self.depth -= 1
        return event, value

    def value(self, event: str, value: Any, budget: int) -> Any:
        """The value that starts with this event, built whole within `budget` bytes;
        past it, the rest of the value is read without keeping it (`_TooBig`)."""
        if event not in _STARTS:
            self.cost = VALUE_COST + (len(value) if isinstance(value, str) else 0)
            return value
        left = budget - VALUE_COST
        root: Any = _STARTS[event]()
        current = root
        stack: list[tuple[Any, Any]] = []
        key: Any = None
        while True:
            event, value = self.next()
            if event == "map_key":
                key = value
                left -= len(value)
                continue
            if event in _ENDS:
                if not stack:
                    self.cost = budget - left
                    return root
                done = current
                current, key = stack.pop()
                if isinstance(current, dict):
                    current[key] = done
                else:
                    current.append(done)
                continue
            if event == "eof":
                raise _invalid_json("it ends too early")
            left -= VALUE_COST + (len(value) if isinstance(value, str) else 0)
            if left < 0:
                self._skip(len(stack) + (2 if event in _STARTS else 1))
                raise _TooBig(root)
            if event in _STARTS:
                stack.append((current, key))
                current = _STARTS[event]()
                continue
            if isinstance(current, dict):
                current[key] = value
            else:
                current.append(value)

    def _skip(self, levels: int) -> None:
        while levels:
            event, _ = self.next()
            if event in _STARTS:
                levels += 1
            elif event in _ENDS:
                levels -= 1
            elif event == "eof":
                raise _invalid_json("it ends too early")

    def items(self, budget: int, before: Callable[[], None]) -> Iterator[Any | _TooBig]:
        """The items of the array just opened, each built within `budget`; `before` runs
        as each item starts, before any of it is built."""
        while True:
            event, value = self.next()
            if event == "end_array":
                return
            if event == "eof":
                raise _invalid_json("it ends too early")
            before()
            try:
                yield self.value(event, value, budget)
            except _TooBig as big:
                yield big

    def end(self) -> None:
        """Reads to the end: anything after the document is an error."""
        event, _ = self.next()
        if event != "eof":
            raise _invalid_json("more than one document")


# ------------------------------------------------------------------------------ files


def _unsafe_name(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or _DRIVE.match(name):
        return True
    return any(part in ("..", ".") for part in name.split("/"))


def _conversation_members(names: set[str]) -> list[str]:
    """The members holding conversations: `conversations.json` (Chatkeep, Claude, ChatGPT),
    or ChatGPT's split `conversations-000.json`, `conversations-001.json`, ... in order."""
    if CONVERSATIONS_FILE in names:
        return [CONVERSATIONS_FILE]
    return sorted(n for n in names if _SPLIT_MEMBER.fullmatch(n))


def _archive_too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The archive unpacks to more than {limit} bytes (MAX_IMPORT_UNCOMPRESSED_BYTES).",
        code="archive_too_large",
    )


def _open_zip(upload: IO[bytes], limits: ImportLimits) -> tuple[zipfile.ZipFile, list[str]]:
    """The archive and the members to read, after every check of its directory."""
    try:
        zf = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        raise rejected("The file is not a readable ZIP archive.", "bad_archive") from None
    try:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise rejected(f"The archive holds more than {MAX_ZIP_MEMBERS} files.", "bad_archive")
        names: set[str] = set()
        total = 0
        for info in infos:
            if _unsafe_name(info.filename):
                raise rejected(
                    f"The archive holds an unsafe file name: {info.filename[:200]!r}.",
                    "unsafe_archive",
                )
            if info.filename in names:
                raise rejected(f"The archive holds {info.filename!r} twice.", "unsafe_archive")
            names.add(info.filename)
            if info.flag_bits & 0x1:
                raise rejected("The archive holds encrypted files.", "unsafe_archive")
            total += info.file_size
            if info.file_size > 0 and (
                info.compress_size == 0 or info.file_size / info.compress_size > limits.max_ratio
            ):
                raise rejected(
                    f"{info.filename} is compressed more than {limits.max_ratio}:1; "
                    "refusing a possible ZIP bomb.",
                    "archive_ratio",
                )
        if total > limits.max_uncompressed_bytes:
            raise _archive_too_large(limits.max_uncompressed_bytes)
        members = _conversation_members(names)
        if not members:
            raise rejected(
                f"The archive has no {CONVERSATIONS_FILE}; is it an export of Chatkeep, "
                "ChatGPT, Claude or Open WebUI?",
                "unsupported_format",
            )
        if MANIFEST_FILE in names and members == [CONVERSATIONS_FILE]:
            members.append(MANIFEST_FILE)
    except BaseException:
        zf.close()
        raise
    return zf, members


def _manifest_hash(zf: zipfile.ZipFile) -> str | None:
    """The sha256 the manifest lists for conversations.json, if it lists one."""
    stream = _Stream(
        zf.open(MANIFEST_FILE),
        cap=MAX_MANIFEST_BYTES,
        over=lambda: PayloadTooLargeError(
            f"{MANIFEST_FILE} unpacks to more than {MAX_MANIFEST_BYTES} bytes.",
            code="archive_too_large",
        ),
        zipped=True,
    )
    try:
        events = _Events(stream)
        event, value = events.next()
        manifest = events.value(event, value, MAX_MANIFEST_BYTES)
        events.end()
    except (InvalidInputError, _TooBig):
        raise rejected("The archive's manifest.json is not valid JSON.", "bad_archive") from None
    files = manifest.get("files", []) if isinstance(manifest, dict) else []
    listed = next(
        (e for e in files if isinstance(e, dict) and e.get("path") == CONVERSATIONS_FILE),
        None,
    )
    if listed is None:
        return None
    digest = listed.get("sha256")
    return digest if isinstance(digest, str) else ""


# --------------------------------------------------------------------------- entries


@dataclass
class Checked:
    """A conversation of the file, checked, with its content hash."""

    index: int
    conversation: ImportedConversation
    digest: str


_UNKNOWN = "unknown"
_LABEL_KEYS = ("id", "conversation_id", "uuid", "title", "name")


@dataclass
class _Pending:
    """An entry read before the file's format was known: only what its answer needs."""

    index: int
    stub: Any
    too_big: bool


@dataclass
class ExportReader:
    """One uploaded file, read once, front to back, in a worker thread (call `next` on
    `batches()` from there). What it holds at once: one conversation being built, one batch
    of checked ones, and a stub per entry read before the format was known."""

    upload: IO[bytes]
    limits: ImportLimits
    failed: list[ImportFailure] = field(default_factory=list)
    first_error: InvalidInputError | None = None
    checked: int = 0
    _conversations: int = 0
    _messages: int = 0
    _zip: zipfile.ZipFile | None = None

    @property
    def size(self) -> int:
        self.upload.seek(0, 2)
        size = self.upload.tell()
        self.upload.seek(0)
        return size

    def is_zip(self) -> bool:
        self.upload.seek(0)
        magic = self.upload.read(4)
        self.upload.seek(0)
        return magic[:2] == b"PK"

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def batches(self) -> Iterator[list[Checked]]:
        """The file's checked conversations in its order, in batches of about
        `limits.batch_bytes` of text (or one conversation). Entries left out are in
        `failed`; a file with nothing but such entries raises the first one's problem."""
        batch: list[Checked] = []
        size = 0
        for item in self._checked():
            batch.append(item)
            size += item.conversation.text_bytes()
            if size >= self.limits.batch_bytes:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch
        if not self.checked and self.first_error is not None:
            raise self.first_error

    def _checked(self) -> Iterator[Checked]:
        for source, index, single, item in self._entries():
            where = "conversation" if single else f"conversations.{index}"
            try:
                if isinstance(item, _TooBig):
                    raise rejected(
                        f"{where} is larger than {self.limits.max_conversation_bytes} bytes "
                        "(MAX_IMPORT_CONVERSATION_BYTES).",
                        "conversation_too_large",
                    )
                converted = item
                if source is not None:
                    try:
                        converted = formats.converter(source)(item)
                    except formats.BrokenEntry as exc:
                        raise rejected(f"{where}: {exc.detail}", "invalid_export") from None
                conv = check(converted, where, self.limits.max_message_chars)
            except InvalidInputError as exc:
                self.first_error = self.first_error or exc
                label = item.partial if isinstance(item, _TooBig) else item
                ident, title = entry_label(source, label)
                self.failed.append(
                    ImportFailure(
                        index=index, source_id=ident, title=title, code=exc.code, detail=exc.detail
                    )
                )
                continue
            self.checked += 1
            yield Checked(index=index, conversation=conv, digest=content_hash(conv))

    def _count(self) -> None:
        self._conversations += 1
        if self._conversations > self.limits.max_conversations:
            raise too_many_conversations(self._conversations, self.limits)

    def _count_messages(self, source: formats.Source | None, item: Any) -> None:
        if source is None:
            nodes = item.get("messages") if isinstance(item, dict) else None
            self._messages += len(nodes) if isinstance(nodes, list) else 0
        else:
            self._messages += formats.message_total(source, [item])
        if self._messages > self.limits.max_messages:
            raise too_many_messages(self._messages, self.limits)

    def _documents(self) -> Iterator[_Stream]:
        """The JSON documents of the upload: itself, or the archive's conversation files."""
        self.upload.seek(0)
        if not self.upload.read(4):
            raise rejected("The upload is empty.", "empty_upload")
        self.upload.seek(0)
        if not self.is_zip():
            yield _Stream(self.upload)
            return
        self._zip, members = _open_zip(self.upload, self.limits)
        expected = _manifest_hash(self._zip) if members[-1] == MANIFEST_FILE else None
        if members[-1] == MANIFEST_FILE:
            members.pop()
        left = self.limits.max_uncompressed_bytes
        for name in members:
            try:
                member = self._zip.open(name)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
                raise _damaged() from None
            stream = _Stream(
                member,
                cap=left,
                over=lambda: _archive_too_large(self.limits.max_uncompressed_bytes),
                hashed=expected is not None,
                zipped=True,
            )
            yield stream
            stream.drain()
            left -= stream.seen
            if stream.hash is not None and stream.hash.hexdigest() != expected:
                raise rejected(
                    f"{CONVERSATIONS_FILE} does not match the archive's manifest "
                    "(damaged or edited).",
                    "bad_archive",
                )

    def _entries(self) -> Iterator[tuple[formats.Source | None, int, bool, Any]]:
        """(source, index, single, raw entry) for every conversation of the file, each
        counted and scanned for unstorable text before it is used. Chatkeep's own entries
        have source None."""
        budget = self.limits.max_conversation_bytes
        source: formats.Source | str | None = _UNKNOWN
        pending: list[_Pending] = []
        index = -1

        def listed(item: Any) -> Iterator[tuple[formats.Source | None, int, bool, Any]]:
            nonlocal source, index, pending
            index += 1
            if not isinstance(item, _TooBig):
                bad = find_unstorable(item, f"conversations.{index}")
                if bad is not None:
                    raise invalid_text_error(*bad)
            if source == _UNKNOWN:
                found = None if isinstance(item, _TooBig) else formats.detect([item])
                if found is None:
                    stub_of = item.partial if isinstance(item, _TooBig) else item
                    stub = (
                        {k: v for k in _LABEL_KEYS if isinstance(v := stub_of.get(k), str)}
                        if isinstance(stub_of, dict)
                        else 0
                    )
                    pending.append(_Pending(index, stub, isinstance(item, _TooBig)))
                    return
                source = found
                for early in pending:
                    yield (
                        found,
                        early.index,
                        False,
                        _TooBig(early.stub) if early.too_big else early.stub,
                    )
                pending = []
            assert source != _UNKNOWN
            known: formats.Source | None = source  # type: ignore[assignment]
            if not isinstance(item, _TooBig):
                self._count_messages(known, item)
            yield known, index, False, item

        for stream in self._documents():
            events = _Events(stream)
            event, _ = events.next()
            if event == "start_array":
                for item in events.items(budget, self._count):
                    yield from listed(item)
            elif event == "start_map":
                top, streamed = yield from self._object(events, budget)
                if "format" in top or streamed:
                    source = None
                    self._check_header(top, final=True)
                    if top.get("format") == CONVERSATION_FORMAT:
                        self._count()
                        conv = top.get("conversation")
                        if not isinstance(conv, _TooBig):
                            bad = find_unstorable(conv, "conversation")
                            if bad is not None:
                                raise invalid_text_error(*bad)
                            self._count_messages(None, conv)
                        index += 1
                        yield None, index, True, conv
                    elif not streamed:
                        raise rejected("`conversations` must be a list.", "invalid_export")
                elif isinstance(top.get("chat"), dict):  # one Open WebUI chat on its own
                    self._count()
                    yield from listed(top)
                else:
                    raise _unsupported()
            elif event == "eof":
                raise _invalid_json("it is empty")
            else:
                raise _unsupported()
            events.end()
        if source == _UNKNOWN:
            raise _unsupported()

    def _object(
        self, events: _Events, budget: int
    ) -> Generator[tuple[formats.Source | None, int, bool, Any], None, tuple[dict[str, Any], bool]]:
        """A top-level object: Chatkeep's `conversations` are streamed as they come (their
        format is checked as soon as it is known); every other key is kept, all of them
        within one budget. Returns (the object without `conversations`, whether it had
        them)."""
        top: dict[str, Any] = {}
        streamed = False
        index = -1
        while True:
            event, value = events.next()
            if event == "end_map":
                break
            key = value
            event, value = events.next()
            if key == "conversations" and event == "start_array" and not streamed:
                if "format" in top:
                    self._check_header(top)
                streamed = True
                for item in events.items(budget, self._count):
                    index += 1
                    where = f"conversations.{index}"
                    if not isinstance(item, _TooBig):
                        bad = find_unstorable(item, where)
                        if bad is not None:
                            raise invalid_text_error(*bad)
                        self._count_messages(None, item)
                    yield None, index, False, item
                continue
            try:
                top[key] = events.value(event, value, budget)
                budget -= events.cost
            except _TooBig as big:
                if key == "conversation":
                    top[key] = big
                    budget = 0
                    continue
                raise rejected(
                    f"The file's `{str(key)[:80]}` is larger than what is left of "
                    f"{self.limits.max_conversation_bytes} bytes "
                    "(MAX_IMPORT_CONVERSATION_BYTES).",
                    "conversation_too_large",
                ) from None
        return top, streamed

    def _check_header(self, doc: dict[str, Any], *, final: bool = False) -> None:
        kind = doc.get("format")
        if kind not in (CONVERSATION_FORMAT, ARCHIVE_FORMAT):
            raise rejected(
                f"Unknown format {str(kind)[:80]!r}; expected {CONVERSATION_FORMAT!r} or "
                f"{ARCHIVE_FORMAT!r}.",
                "unsupported_format",
            )
        if "version" not in doc and kind == ARCHIVE_FORMAT and not final:
            return  # may still come after the conversations; checked again at the end
        version = doc.get("version")
        if version not in READABLE_FORMAT_VERSIONS or isinstance(version, bool):
            raise rejected(
                f"Unsupported {kind} version {str(version)[:20]}; this server reads versions "
                f"1 to {EXPORT_FORMAT_VERSION}.",
                "unsupported_version",
            )
