"""Import: bring exports back as archived conversations of the importing user.

Accepted, recognised by content: Chatkeep's per-conversation JSON (`chatkeep.conversation`
v1), the all-at-once JSON (`chatkeep.export` v1) and the ZIP holding it; ChatGPT's
`conversations.json` or the split `conversations-NNN.json` of its ZIP; Claude's
`conversations.json`; Open WebUI's chat export. Other products' entries are turned into
Chatkeep's shape first (`app.exports.formats`) and then checked like Chatkeep's own.
Everything is checked before anything is written, and the writes happen in the request's
one transaction. A broken entry is left out and listed in the answer.

A message keeps its `imageUrl` only when it names one of the importing user's own stored
images by this server's path (`/api/images/<id>`): `javascript:`, `data:` and outside
URLs, other paths, and images of other users (or gone) are dropped, so an import never
makes the page load something the user does not hold here.

Every imported conversation gets a new id, status `archived` and `imported_from`. A
`chat_import` row keeps (source id, content hash) per user, so importing the same file
again adds nothing; a Chatkeep conversation whose id is one of the user's own sessions,
which still starts with the same messages, is skipped as well.

Hostile input is refused with a 4xx and no change: over MAX_IMPORT_BYTES while reading
(413), ZIPs whose declared or actual uncompressed size or compression ratio is too high,
encrypted members, unsafe member names (`..`, absolute, backslashes, drive letters), bad
JSON, unknown format or version, too many conversations or messages, over-long strings,
unknown roles, timestamps without a time zone or outside 1970-2100, text PostgreSQL cannot
store (NUL, lone surrogates; code `invalid_text`).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
import uuid
import zipfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Literal

import anyio.to_thread
import sqlalchemy as sa
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.assistant.models import StoredImage
from app.assistant.schemas import image_url
from app.conversations import blind_index
from app.conversations.ids import new_session_id
from app.conversations.models import TITLE_SEQ, ChatMessage, ChatSession, SessionStatus
from app.conversations.service import DEFAULT_TITLE
from app.conversations.tags import normalize_tags
from app.core.config import Settings
from app.core.errors import InvalidInputError, PayloadTooLargeError
from app.core.tenancy import owned
from app.core.text import grapheme_floor
from app.core.validation import PG_INT_MAX, SaneDatetime, find_unstorable, invalid_text_error
from app.encryption.crypto import keyring_of
from app.encryption.sealed import open_column, seal_row
from app.exports import formats
from app.exports.models import ChatImport
from app.exports.service import (
    ARCHIVE_FORMAT,
    CONVERSATION_FORMAT,
    EXPORT_FORMAT_VERSION,
    stored_image_id,
)
from app.exports.zip_export import CONVERSATIONS_FILE, MANIFEST_FILE

SPOOL_BYTES = 1024 * 1024
READ_CHUNK = 64 * 1024
INSERT_BATCH = 1000
MAX_ZIP_MEMBERS = 100_000
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_IMAGE_URL_CHARS = 2048
MAX_METADATA_BYTES = 64 * 1024
MAX_SOURCE_ID_CHARS = 200
_DRIVE = re.compile(r"^[A-Za-z]:")
_SPLIT_MEMBER = re.compile(r"conversations-\d{1,6}\.json")

_sessions = ChatSession.__table__  # type: ignore[attr-defined]
_messages = ChatMessage.__table__  # type: ignore[attr-defined]
_imports = ChatImport.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int
    max_uncompressed_bytes: int
    max_ratio: int
    max_conversations: int
    max_messages: int
    max_message_chars: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportLimits:
        return cls(
            max_bytes=settings.max_import_bytes,
            max_uncompressed_bytes=settings.max_import_uncompressed_bytes,
            max_ratio=settings.max_import_compression_ratio,
            max_conversations=settings.max_import_conversations,
            max_messages=settings.max_import_messages,
            max_message_chars=settings.max_message_chars,
        )


@dataclass(frozen=True)
class ImportFailure:
    """An entry of the file that was not imported, and why."""

    index: int
    source_id: str | None
    title: str | None
    code: str
    detail: str


@dataclass(frozen=True)
class ImportOutcome:
    imported: int
    skipped: int
    sessions: list[str]
    failed: list[ImportFailure]


@dataclass(frozen=True)
class ReadExport:
    """A checked file: the conversations to import and the entries left out."""

    conversations: list[ImportedConversation]
    failed: list[ImportFailure]


def _rejected(detail: str, code: str) -> InvalidInputError:
    return InvalidInputError(detail, code=code)


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The upload is larger than {limit} bytes (MAX_IMPORT_BYTES).", code="import_too_large"
    )


# -------------------------------------------------------------------------- receiving


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _too_large(limit)
        yield chunk


async def receive_upload(request: Request, *, limits: ImportLimits) -> IO[bytes]:
    """The uploaded file (multipart field `file`, or the raw body) in a spooled temp file.

    The size limit is enforced while reading: a body over MAX_IMPORT_BYTES is never kept.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
        raise _too_large(limits.max_bytes)
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        parser = MultiPartParser(
            request.headers, _limited(request, limits.max_bytes), max_files=1, max_fields=10
        )
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise _rejected(
                f"The multipart upload is malformed: {exc.message}", "bad_upload"
            ) from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
        if upload is None:
            raise _rejected("Send the export as a multipart field named `file`.", "no_file")
        upload.file.seek(0)
        return upload.file
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    try:
        async for chunk in _limited(request, limits.max_bytes):
            spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


# ---------------------------------------------------------------------------- reading


def _unsafe_name(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or _DRIVE.match(name):
        return True
    return any(part in ("..", ".") for part in name.split("/"))


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """At most `cap` bytes of a member, counting what actually comes out, not what the
    header claims."""
    out = io.BytesIO()
    with zf.open(info) as member:
        while chunk := member.read(READ_CHUNK):
            out.write(chunk)
            if out.tell() > cap:
                raise PayloadTooLargeError(
                    f"{info.filename} unpacks to more than {cap} bytes.", code="archive_too_large"
                )
    return out.getvalue()


def _conversation_members(names: set[str]) -> list[str]:
    """The members holding conversations: `conversations.json` (Chatkeep, Claude, ChatGPT),
    or ChatGPT's split `conversations-000.json`, `conversations-001.json`, ... in order."""
    if CONVERSATIONS_FILE in names:
        return [CONVERSATIONS_FILE]
    return sorted(n for n in names if _SPLIT_MEMBER.fullmatch(n))


def _json_from_zip(upload: IO[bytes], limits: ImportLimits) -> list[bytes]:
    try:
        zf = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        raise _rejected("The file is not a readable ZIP archive.", "bad_archive") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise _rejected(f"The archive holds more than {MAX_ZIP_MEMBERS} files.", "bad_archive")
        names: set[str] = set()
        total = 0
        for info in infos:
            if _unsafe_name(info.filename):
                raise _rejected(
                    f"The archive holds an unsafe file name: {info.filename[:200]!r}.",
                    "unsafe_archive",
                )
            if info.filename in names:
                raise _rejected(f"The archive holds {info.filename!r} twice.", "unsafe_archive")
            names.add(info.filename)
            if info.flag_bits & 0x1:
                raise _rejected("The archive holds encrypted files.", "unsafe_archive")
            total += info.file_size
            if info.file_size > 0 and (
                info.compress_size == 0 or info.file_size / info.compress_size > limits.max_ratio
            ):
                raise _rejected(
                    f"{info.filename} is compressed more than {limits.max_ratio}:1; "
                    "refusing a possible ZIP bomb.",
                    "archive_ratio",
                )
        if total > limits.max_uncompressed_bytes:
            raise PayloadTooLargeError(
                f"The archive unpacks to more than {limits.max_uncompressed_bytes} bytes "
                "(MAX_IMPORT_UNCOMPRESSED_BYTES).",
                code="archive_too_large",
            )
        members = _conversation_members(names)
        if not members:
            raise _rejected(
                f"The archive has no {CONVERSATIONS_FILE}; is it an export of Chatkeep, "
                "ChatGPT, Claude or Open WebUI?",
                "unsupported_format",
            )
        out: list[bytes] = []
        try:
            left = limits.max_uncompressed_bytes
            for name in members:
                data = _read_member(zf, zf.getinfo(name), left)
                left -= len(data)
                out.append(data)
            if MANIFEST_FILE in names and members == [CONVERSATIONS_FILE]:
                manifest_raw = _read_member(zf, zf.getinfo(MANIFEST_FILE), MAX_MANIFEST_BYTES)
                _check_manifest(manifest_raw, out[0])
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError):
            raise _rejected("The archive is damaged.", "bad_archive") from None
    return out


def _check_manifest(raw: bytes, conversations: bytes) -> None:
    """If the manifest lists conversations.json, its hash must match: a damaged or edited
    archive is refused instead of half-trusted."""
    try:
        manifest = json.loads(raw)
        entries = manifest.get("files", []) if isinstance(manifest, dict) else []
        listed = next(
            (e for e in entries if isinstance(e, dict) and e.get("path") == CONVERSATIONS_FILE),
            None,
        )
    except (ValueError, RecursionError):
        raise _rejected("The archive's manifest.json is not valid JSON.", "bad_archive") from None
    if listed is not None and listed.get("sha256") != hashlib.sha256(conversations).hexdigest():
        raise _rejected(
            f"{CONVERSATIONS_FILE} does not match the archive's manifest (damaged or edited).",
            "bad_archive",
        )


def _parse_json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _rejected(
            "The file is neither a ZIP archive nor UTF-8 JSON.", "invalid_json"
        ) from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = f" ({exc})" if isinstance(exc, json.JSONDecodeError) else ""
        raise _rejected(f"The file is not valid JSON{where}.", "invalid_json") from None


# ---------------------------------------------------------------------------- checking


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=False)


class ImportedMessage(_Strict):
    seq: StrictInt = Field(ge=1, le=PG_INT_MAX)
    role: Literal["user", "assistant", "system"]
    content: StrictStr
    image_url: StrictStr | None = Field(
        default=None, alias="imageUrl", max_length=MAX_IMAGE_URL_CHARS
    )
    created_at: SaneDatetime = Field(alias="createdAt")
    metadata: dict[str, Any] = Field(default_factory=dict)


class ImportedConversation(_Strict):
    id: StrictStr = Field(min_length=1, max_length=MAX_SOURCE_ID_CHARS)
    title: StrictStr = Field(max_length=200)
    status: Literal["active", "archived", "trashed"] = "archived"
    created_at: SaneDatetime = Field(alias="createdAt")
    last_activity_at: SaneDatetime = Field(alias="lastActivityAt")
    archived_at: SaneDatetime | None = Field(default=None, alias="archivedAt")
    message_count: StrictInt = Field(alias="messageCount", ge=0, le=PG_INT_MAX)
    pinned: StrictBool = False
    tags: list[StrictStr] = Field(default_factory=list, max_length=100)
    imported_from: Literal["chatgpt", "claude", "openwebui", "chatkeep"] | None = Field(
        default=None, alias="importedFrom"
    )
    messages: list[ImportedMessage]


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _check_counts(conversations: int, messages: int, limits: ImportLimits) -> None:
    if conversations > limits.max_conversations:
        raise _rejected(
            f"The file holds {conversations} conversations; at most "
            f"{limits.max_conversations} can be imported at once (MAX_IMPORT_CONVERSATIONS).",
            "too_many_conversations",
        )
    if messages > limits.max_messages:
        raise _rejected(
            f"The file holds {messages} messages; at most {limits.max_messages} can be "
            "imported at once (MAX_IMPORT_MESSAGES).",
            "too_many_messages",
        )


def _chatkeep_documents(doc: dict[str, Any], limits: ImportLimits) -> list[Any]:
    """The raw conversation objects of either Chatkeep export file, after format and size
    checks."""
    kind = doc.get("format")
    if kind not in (CONVERSATION_FORMAT, ARCHIVE_FORMAT):
        raise _rejected(
            f"Unknown format {str(kind)[:80]!r}; expected {CONVERSATION_FORMAT!r} or "
            f"{ARCHIVE_FORMAT!r}.",
            "unsupported_format",
        )
    version = doc.get("version")
    if version != EXPORT_FORMAT_VERSION or isinstance(version, bool):
        raise _rejected(
            f"Unsupported {kind} version {str(version)[:20]}; this server reads version "
            f"{EXPORT_FORMAT_VERSION}.",
            "unsupported_version",
        )
    raw: Any
    if kind == CONVERSATION_FORMAT:
        raw = [doc.get("conversation")]
    else:
        raw = doc.get("conversations")
        if not isinstance(raw, list):
            raise _rejected("`conversations` must be a list.", "invalid_export")
    total = sum(
        len(c["messages"])
        for c in raw
        if isinstance(c, dict) and isinstance(c.get("messages"), list)
    )
    _check_counts(len(raw), total, limits)
    return list(raw)


def _entries(docs: list[Any], limits: ImportLimits) -> tuple[formats.Source | None, list[Any]]:
    """Which format the file is in (None for Chatkeep's own) and its raw entries."""
    if len(docs) == 1 and isinstance(docs[0], dict) and "format" in docs[0]:
        return None, _chatkeep_documents(docs[0], limits)
    entries: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("chat"), dict):
            doc = [doc]  # one Open WebUI chat on its own
        if not isinstance(doc, list):
            raise _rejected(
                "The file is not an export of Chatkeep, ChatGPT, Claude or Open WebUI.",
                "unsupported_format",
            )
        entries.extend(doc)
    source = formats.detect(entries)
    if source is None:
        raise _rejected(
            "The file is not an export of Chatkeep, ChatGPT, Claude or Open WebUI.",
            "unsupported_format",
        )
    _check_counts(len(entries), formats.message_total(source, entries), limits)
    return source, entries


def _check(item: Any, where: str, limits: ImportLimits) -> ImportedConversation:
    try:
        conv = ImportedConversation.model_validate(item)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        loc = _location((where, *first["loc"]))
        raise _rejected(f"{loc}: {first['msg']}", "invalid_export") from None
    for pos, message in enumerate(conv.messages):
        if len(message.content) > limits.max_message_chars:
            raise _rejected(
                f"{where}.messages.{pos}.content is {len(message.content)} characters long; "
                f"the limit is {limits.max_message_chars} (MAX_MESSAGE_CHARS).",
                "message_too_long",
            )
        if message.seq != pos + 1:
            raise _rejected(
                f"{where}.messages.{pos}.seq is {message.seq}; messages must be numbered "
                "1, 2, 3, ... in order.",
                "invalid_export",
            )
        if len(_canonical(message.metadata)) > MAX_METADATA_BYTES:
            raise _rejected(
                f"{where}.messages.{pos}.metadata is larger than {MAX_METADATA_BYTES} bytes.",
                "invalid_export",
            )
        # Only this server's image path, in its one spelling; whose image it is, is checked
        # when the rows are written (`_own_image_urls`).
        message.image_url = image_url(stored_image_id(message.image_url))
    try:
        conv.tags = normalize_tags(conv.tags)
    except InvalidInputError as exc:
        raise _rejected(f"{where}.tags: {exc.detail}", "invalid_export") from None
    if conv.message_count != len(conv.messages):
        raise _rejected(
            f"{where}.messageCount is {conv.message_count} but it holds "
            f"{len(conv.messages)} messages.",
            "invalid_export",
        )
    if conv.imported_from is None:
        conv.imported_from = "chatkeep"
    return conv


def _entry_label(source: formats.Source | None, item: Any) -> tuple[str | None, str | None]:
    """The entry's own id and title, as far as they can be read, for the answer."""
    keys: tuple[str, ...] = ("title",)
    if source is not None:
        ident = formats.source_id(source, item)
        keys = ("title", "name")
    else:
        ident = item.get("id") if isinstance(item, dict) else None
    title = next(
        (v for k in keys if isinstance(item, dict) and isinstance(v := item.get(k), str)), None
    )
    return (
        ident[:MAX_SOURCE_ID_CHARS] if isinstance(ident, str) else None,
        title[: grapheme_floor(title, 200)] if title is not None else None,
    )


def _validate(source: formats.Source | None, raw: list[Any], limits: ImportLimits) -> ReadExport:
    """Every entry checked; a broken one is left out and listed. A file with nothing to
    import but broken entries is refused with the first entry's reason."""
    out: list[ImportedConversation] = []
    failed: list[ImportFailure] = []
    first_error: InvalidInputError | None = None
    single = source is None and len(raw) == 1
    convert = formats.converter(source) if source is not None else None
    for index, item in enumerate(raw):
        where = "conversation" if single else f"conversations.{index}"
        # Text PostgreSQL cannot store refuses the whole file: it is hostile, not broken.
        bad_text = find_unstorable(item, where)
        if bad_text is not None:
            raise invalid_text_error(*bad_text)
        try:
            if convert is not None:
                try:
                    item = convert(item)
                except formats.BrokenEntry as exc:
                    raise _rejected(f"{where}: {exc.detail}", "invalid_export") from None
            out.append(_check(item, where, limits))
        except InvalidInputError as exc:
            first_error = first_error or exc
            ident, title = _entry_label(source, raw[index])
            failed.append(
                ImportFailure(
                    index=index,
                    source_id=ident,
                    title=title,
                    code=exc.code,
                    detail=exc.detail,
                )
            )
    if not out and first_error is not None:
        raise first_error
    return ReadExport(conversations=out, failed=failed)


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def content_hash(conv: ImportedConversation) -> str:
    """SHA-256 of what the conversation says, independent of formatting and key order."""
    doc = {
        "title": conv.title,
        "createdAt": conv.created_at.isoformat(),
        "messages": [
            [m.seq, m.role, m.content, m.image_url, m.created_at.isoformat(), m.metadata]
            for m in conv.messages
        ],
    }
    return hashlib.sha256(_canonical(doc).encode()).hexdigest()


def read_export(upload: IO[bytes], limits: ImportLimits) -> ReadExport:
    """Parse and check an uploaded export (blocking; run it in a worker thread)."""
    upload.seek(0)
    magic = upload.read(4)
    upload.seek(0)
    if not magic:
        raise _rejected("The upload is empty.", "empty_upload")
    if magic[:2] == b"PK":
        blobs = _json_from_zip(upload, limits)
    else:
        data = upload.read(limits.max_bytes + 1)
        if len(data) > limits.max_bytes:
            raise _too_large(limits.max_bytes)
        blobs = [data]
    docs = []
    while blobs:
        docs.append(_parse_json(blobs.pop(0)))
    source, raw = _entries(docs, limits)
    del docs
    return _validate(source, raw, limits)


# ---------------------------------------------------------------------------- writing


async def _still_here(
    *, session: AsyncSession, user_id: uuid.UUID, conversations: list[ImportedConversation]
) -> set[tuple[str, str]]:
    """(source id, content hash) of the conversations this account already holds: the file
    names one of the user's own sessions by its id, and that session starts with exactly
    the file's messages (an export of this account brought back, perhaps continued since)."""
    by_id: dict[str, list[ImportedConversation]] = {}
    for conv in conversations:
        by_id.setdefault(conv.id, []).append(conv)
    ids = list(by_id)
    s, m = _sessions.c, _messages.c
    found: set[tuple[str, str]] = set()
    for start in range(0, len(ids), INSERT_BATCH):
        batch = ids[start : start + INSERT_BATCH]
        held_ids = (
            await session.execute(owned(_sessions, user_id, s.id).where(s.id.in_(batch)))
        ).scalars()
        wanted = [(sid, max(len(c.messages) for c in by_id[sid])) for sid in held_ids]
        if not wanted:
            continue
        upto = sa.values(
            sa.column("sid", sa.String), sa.column("n", sa.Integer), name="wanted"
        ).data(wanted)
        rows = await session.execute(
            owned(
                _messages,
                user_id,
                m.session_id,
                m.seq,
                m.role,
                m.content,
                m.content_sealed,
                m.key_id,
            )
            .join(upto, sa.and_(m.session_id == upto.c.sid, m.seq <= upto.c.n))
            .order_by(m.session_id, m.seq)
        )
        keyring = keyring_of(session)
        stored: dict[str, list[tuple[int, str, str]]] = {}
        for row in rows:
            content = open_column(
                keyring,
                ChatMessage,
                "content",
                plain=row.content,
                sealed=row.content_sealed,
                key_id=row.key_id,
                user_id=user_id,
                row=(row.session_id, row.seq),
            )
            stored.setdefault(row.session_id, []).append((row.seq, row.role, content))
        for sid, held in stored.items():
            for conv in by_id[sid]:
                mine = [(msg.seq, msg.role, msg.content) for msg in conv.messages]
                if held[: len(mine)] == mine:
                    found.add((conv.id, content_hash(conv)))
    return found


async def _own_image_urls(
    *, session: AsyncSession, user_id: uuid.UUID, conversations: list[ImportedConversation]
) -> set[str]:
    """The `imageUrl`s among the conversations' messages that name the user's own images."""
    ids = list(
        {i for conv in conversations for m in conv.messages if (i := stored_image_id(m.image_url))}
    )
    image = col(StoredImage.id)
    found: set[str] = set()
    for start in range(0, len(ids), INSERT_BATCH):
        rows = await session.execute(
            owned(StoredImage, user_id, image).where(image.in_(ids[start : start + INSERT_BATCH]))
        )
        found.update(url for (i,) in rows if (url := image_url(i)) is not None)
    return found


async def import_conversations(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    conversations: list[ImportedConversation],
    now: datetime,
    failed: list[ImportFailure] | None = None,
) -> ImportOutcome:
    """Adds the conversations as archived sessions of the user, skipping ones this user
    already has: imported before (same source id and content), or still here (an export
    of this account). Flushes; the caller commits."""
    # One import per user at a time, so two uploads of one file cannot both add it.
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"chatkeep-import:{user_id}"},
    )
    keyed = [(conv, content_hash(conv)) for conv in conversations]
    known: set[tuple[str, str]] = set()
    source_ids = list({conv.id for conv in conversations})
    for start in range(0, len(source_ids), INSERT_BATCH):
        rows = await session.execute(
            owned(_imports, user_id, _imports.c.source_id, _imports.c.content_hash).where(
                _imports.c.source_id.in_(source_ids[start : start + INSERT_BATCH])
            )
        )
        known.update((r.source_id, r.content_hash) for r in rows)
    known |= await _still_here(session=session, user_id=user_id, conversations=conversations)

    created: list[tuple[str, ImportedConversation]] = []
    skipped = 0
    session_rows: list[dict[str, Any]] = []
    message_rows: list[dict[str, Any]] = []
    import_rows: list[dict[str, Any]] = []
    # With ENCRYPTION_KEYS set, rows go in sealed, each with its blind-index row.
    keyring = keyring_of(session)
    token_rows: list[dict[str, Any]] = []

    def index(session_id: str, seq: int, text: str) -> None:
        if keyring is not None:
            token_rows.append(
                blind_index.token_row(
                    keyring, user_id=user_id, session_id=session_id, seq=seq, text=text
                )
            )

    async def flush_messages() -> None:
        if message_rows:
            await session.execute(sa.insert(_messages), message_rows)
            message_rows.clear()
        if token_rows:
            await session.execute(blind_index.upsert(token_rows))
            token_rows.clear()

    for conv, digest in keyed:
        if (conv.id, digest) in known:
            skipped += 1
            continue
        known.add((conv.id, digest))
        new_id = new_session_id(now)
        created.append((new_id, conv))
        title = " ".join(conv.title.split()) or DEFAULT_TITLE
        session_rows.append(
            seal_row(
                keyring,
                ChatSession,
                {
                    "id": new_id,
                    "user_id": user_id,
                    "title": title,
                    "status": SessionStatus.ARCHIVED.value,
                    "created_at": conv.created_at,
                    "last_activity_at": conv.last_activity_at,
                    "archived_at": conv.archived_at or now,
                    "message_count": len(conv.messages),
                    "pinned": conv.pinned,
                    "tags": conv.tags,
                    "imported_from": conv.imported_from,
                },
            )
        )
        import_rows.append(
            {
                "user_id": user_id,
                "source_id": conv.id,
                "content_hash": digest,
                "session_id": new_id,
                "imported_at": now,
            }
        )
    for start in range(0, len(session_rows), INSERT_BATCH):
        await session.execute(sa.insert(_sessions), session_rows[start : start + INSERT_BATCH])
    own_images = await _own_image_urls(
        session=session, user_id=user_id, conversations=[conv for _, conv in created]
    )
    for new_id, conv in created:
        index(new_id, TITLE_SEQ, " ".join(conv.title.split()) or DEFAULT_TITLE)
        for m in conv.messages:
            message_rows.append(
                seal_row(
                    keyring,
                    ChatMessage,
                    {
                        "session_id": new_id,
                        "seq": m.seq,
                        "user_id": user_id,
                        "role": m.role,
                        "content": m.content,
                        "image_url": m.image_url if m.image_url in own_images else None,
                        "metadata": m.metadata,
                        "created_at": m.created_at,
                    },
                )
            )
            index(new_id, m.seq, m.content)
            if len(message_rows) >= INSERT_BATCH:
                await flush_messages()
    await flush_messages()
    for start in range(0, len(import_rows), INSERT_BATCH):
        await session.execute(sa.insert(_imports), import_rows[start : start + INSERT_BATCH])
    await session.flush()
    return ImportOutcome(
        imported=len(created),
        skipped=skipped,
        sessions=[new_id for new_id, _ in created],
        failed=list(failed or []),
    )


async def import_file(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    upload: IO[bytes],
    limits: ImportLimits,
    now: datetime,
) -> ImportOutcome:
    checked = await anyio.to_thread.run_sync(read_export, upload, limits)
    return await import_conversations(
        session=session,
        user_id=user_id,
        conversations=checked.conversations,
        now=now,
        failed=checked.failed,
    )
