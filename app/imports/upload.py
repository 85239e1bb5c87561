"""Receiving an import: the uploaded file (multipart field `file`, or the raw body) into a
temporary file, its size bounded while it is read."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncGenerator
from typing import IO

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.core.errors import InvalidInputError, PayloadTooLargeError
from app.imports.limits import ImportLimits

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
