"""Import: receiving the upload; reading, checking and writing live in `app.imports`.

Accepted, recognised by content: Chatkeep's per-conversation JSON (`chatkeep.conversation`
v1), the all-at-once JSON (`chatkeep.export` v1) and the ZIP holding it; ChatGPT's
`conversations.json` or the split `conversations-NNN.json` of its ZIP; Claude's
`conversations.json`; Open WebUI's chat export. The file is recognised by its first bytes
and keys and streamed one conversation at a time under budgets (`app.imports.reading`);
other products' entries are turned into Chatkeep's shape (`app.imports.formats`) and
checked like Chatkeep's own (`app.imports.checks`); batches bounded by rows and bytes are
written in the request's one transaction (`app.imports.service`). A broken entry is left
out and listed in the answer; a refused file leaves nothing behind.

Hostile input is refused with a 4xx and no change: over MAX_IMPORT_BYTES while reading
(413), ZIPs whose declared or actual uncompressed size or compression ratio is too high,
encrypted members, unsafe member names (`..`, absolute, backslashes, drive letters), bad
JSON, nesting deeper than 64 levels, unknown format or version, too many conversations or
messages, a conversation over MAX_IMPORT_CONVERSATION_BYTES, over-long strings, unknown
roles, timestamps without a time zone or outside 1970-2100, text PostgreSQL cannot store
(NUL, lone surrogates; code `invalid_text`).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncGenerator
from typing import IO

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.core.errors import InvalidInputError, PayloadTooLargeError
from app.imports.checks import ImportFailure
from app.imports.limits import ImportLimits
from app.imports.service import ImportOutcome, import_file

__all__ = ["ImportFailure", "ImportLimits", "ImportOutcome", "import_file", "receive_upload"]

SPOOL_BYTES = 1024 * 1024


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
