"""Import: bring Chatkeep exports back as archived conversations of the importing user.

Accepted: the per-conversation JSON (`chatkeep.conversation` v1), the all-at-once JSON
(`chatkeep.export` v1) and the ZIP holding it (its `conversations.json`). Everything is
checked before anything is written, and the writes happen in the request's one
transaction: an import adds all its conversations or none.

Every imported conversation gets a new id and status `archived`. A `chat_import` row keeps
(source id, content hash) per user, so importing the same file again adds nothing.

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
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.conversations.ids import new_session_id
from app.conversations.models import ChatMessage, ChatSession, SessionStatus
from app.conversations.service import DEFAULT_TITLE
from app.conversations.tags import normalize_tags
from app.core.config import Settings
from app.core.errors import InvalidInputError, PayloadTooLargeError
from app.core.validation import PG_INT_MAX, SaneDatetime, find_unstorable, invalid_text_error
from app.exports.models import ChatImport
from app.exports.service import ARCHIVE_FORMAT, CONVERSATION_FORMAT, EXPORT_FORMAT_VERSION
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
class ImportOutcome:
    imported: int
    skipped: int
    sessions: list[str]


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


def _json_from_zip(upload: IO[bytes], limits: ImportLimits) -> bytes:
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
        if CONVERSATIONS_FILE not in names:
            raise _rejected(
                f"The archive has no {CONVERSATIONS_FILE}; is it a Chatkeep export?",
                "unsupported_format",
            )
        try:
            data = _read_member(zf, zf.getinfo(CONVERSATIONS_FILE), limits.max_uncompressed_bytes)
            if MANIFEST_FILE in names:
                manifest_raw = _read_member(zf, zf.getinfo(MANIFEST_FILE), MAX_MANIFEST_BYTES)
                _check_manifest(manifest_raw, data)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError):
            raise _rejected("The archive is damaged.", "bad_archive") from None
    return data


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
    messages: list[ImportedMessage]


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _documents(doc: Any, limits: ImportLimits) -> list[Any]:
    """The raw conversation objects of either export file, after format and size checks."""
    if not isinstance(doc, dict):
        raise _rejected(
            "The file is not a Chatkeep export (expected a JSON object).", "unsupported_format"
        )
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
    if len(raw) > limits.max_conversations:
        raise _rejected(
            f"The file holds {len(raw)} conversations; at most {limits.max_conversations} "
            "can be imported at once (MAX_IMPORT_CONVERSATIONS).",
            "too_many_conversations",
        )
    total = sum(
        len(c["messages"])
        for c in raw
        if isinstance(c, dict) and isinstance(c.get("messages"), list)
    )
    if total > limits.max_messages:
        raise _rejected(
            f"The file holds {total} messages; at most {limits.max_messages} can be imported "
            "at once (MAX_IMPORT_MESSAGES).",
            "too_many_messages",
        )
    return list(raw)


def _validate(raw: list[Any], limits: ImportLimits) -> list[ImportedConversation]:
    out: list[ImportedConversation] = []
    prefix = "conversation" if len(raw) == 1 else "conversations"
    for index, item in enumerate(raw):
        where = prefix if len(raw) == 1 else f"{prefix}.{index}"
        bad_text = find_unstorable(item, where)
        if bad_text is not None:
            raise invalid_text_error(*bad_text)
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
        out.append(conv)
    return out


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


def read_export(upload: IO[bytes], limits: ImportLimits) -> list[ImportedConversation]:
    """Parse and check an uploaded export (blocking; run it in a worker thread)."""
    upload.seek(0)
    magic = upload.read(4)
    upload.seek(0)
    if not magic:
        raise _rejected("The upload is empty.", "empty_upload")
    if magic[:2] == b"PK":
        data = _json_from_zip(upload, limits)
    else:
        data = upload.read(limits.max_bytes + 1)
        if len(data) > limits.max_bytes:
            raise _too_large(limits.max_bytes)
    doc = _parse_json(data)
    del data
    return _validate(_documents(doc, limits), limits)


# ---------------------------------------------------------------------------- writing


async def import_conversations(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    conversations: list[ImportedConversation],
    now: datetime,
) -> ImportOutcome:
    """Adds the conversations as archived sessions of the user, skipping ones this user
    already imported (same source id and content). Flushes; the caller commits."""
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
            sa.select(_imports.c.source_id, _imports.c.content_hash).where(
                _imports.c.user_id == user_id,
                _imports.c.source_id.in_(source_ids[start : start + INSERT_BATCH]),
            )
        )
        known.update((r.source_id, r.content_hash) for r in rows)

    created: list[tuple[str, ImportedConversation]] = []
    skipped = 0
    session_rows: list[dict[str, Any]] = []
    message_rows: list[dict[str, Any]] = []
    import_rows: list[dict[str, Any]] = []

    async def flush_messages() -> None:
        if message_rows:
            await session.execute(sa.insert(_messages), message_rows)
            message_rows.clear()

    for conv, digest in keyed:
        if (conv.id, digest) in known:
            skipped += 1
            continue
        known.add((conv.id, digest))
        new_id = new_session_id(now)
        created.append((new_id, conv))
        session_rows.append(
            {
                "id": new_id,
                "user_id": user_id,
                "title": " ".join(conv.title.split()) or DEFAULT_TITLE,
                "status": SessionStatus.ARCHIVED.value,
                "created_at": conv.created_at,
                "last_activity_at": conv.last_activity_at,
                "archived_at": conv.archived_at or now,
                "message_count": len(conv.messages),
                "pinned": conv.pinned,
                "tags": conv.tags,
            }
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
    for new_id, conv in created:
        for m in conv.messages:
            message_rows.append(
                {
                    "session_id": new_id,
                    "seq": m.seq,
                    "user_id": user_id,
                    "role": m.role,
                    "content": m.content,
                    "image_url": m.image_url,
                    "metadata": m.metadata,
                    "created_at": m.created_at,
                }
            )
            if len(message_rows) >= INSERT_BATCH:
                await flush_messages()
    await flush_messages()
    for start in range(0, len(import_rows), INSERT_BATCH):
        await session.execute(sa.insert(_imports), import_rows[start : start + INSERT_BATCH])
    await session.flush()
    return ImportOutcome(
        imported=len(created), skipped=skipped, sessions=[new_id for new_id, _ in created]
    )


async def import_file(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    upload: IO[bytes],
    limits: ImportLimits,
    now: datetime,
) -> ImportOutcome:
    conversations = await anyio.to_thread.run_sync(read_export, upload, limits)
    return await import_conversations(
        session=session, user_id=user_id, conversations=conversations, now=now
    )
