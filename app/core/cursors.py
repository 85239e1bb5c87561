"""The one cursor codec: a page's position as opaque, url-safe text.

Each keyset listing chooses what its position holds (a sort key and an id) and how to
check it; this module only wraps that text, so every cursor the API hands out is
unpadded base64url and every one it takes back is unwrapped the same way.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from app.core.errors import InvalidInputError
from app.core.validation import in_date_range

MAX_CURSOR_CHARS = 400


class CursorError(ValueError):
    """Not a cursor this API returned; callers answer with their `invalid_cursor` error."""


def encode(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode("utf-8")).decode("ascii").rstrip("=")


def decode(cursor: str) -> str:
    if not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise CursorError(cursor)
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError(cursor) from None


def encode_time_id(at: datetime, ident: uuid.UUID) -> str:
    """The position of a listing kept in (time, id) order."""
    return encode(f"{at.isoformat()}|{ident}")


def decode_time_id(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (time, id) of `encode_time_id`; `422 invalid_cursor` for anything else (a naive
    or out-of-range time included)."""
    try:
        when, _, ident = decode(cursor).partition("|")
        return in_date_range(datetime.fromisoformat(when)), uuid.UUID(ident)
    except (ValueError, TypeError) as exc:  # CursorError is a ValueError
        raise InvalidInputError(
            "`cursor` is not a cursor this API returned.", code="invalid_cursor"
        ) from exc
