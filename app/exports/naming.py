"""File names for downloads and archive members: ASCII slugs, RFC 5987 for the rest."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from urllib.parse import quote

from app.core.text import grapheme_floor
from app.core.validation import format_utc

SLUG_MAX_CHARS = 60
UNICODE_NAME_MAX_CHARS = 100
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# Characters no file system or browser accepts in a name, plus controls.
_NOT_IN_NAMES = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def slugify(title: str, *, fallback: str = "conversation") -> str:
    """Lower-case ASCII letters, digits and dashes; accents dropped, other scripts omitted."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    slug = slug[:SLUG_MAX_CHARS].rstrip("-")
    return slug or fallback


def day(value: datetime) -> str:
    return format_utc(value, "%Y-%m-%d")


def download_name(title: str, when: datetime, ext: str) -> tuple[str, str]:
    """(ASCII file name, Unicode file name) for a conversation's download."""
    ascii_name = f"{slugify(title)}-{day(when)}.{ext}"
    unicode_title = " ".join(_NOT_IN_NAMES.sub(" ", title).split())
    unicode_title = unicode_title[: grapheme_floor(unicode_title, UNICODE_NAME_MAX_CHARS)]
    unicode_name = f"{unicode_title or 'conversation'}-{day(when)}.{ext}"
    return ascii_name, unicode_name


def content_disposition(ascii_name: str, unicode_name: str | None = None) -> str:
    """`attachment` with a plain filename, plus filename* (RFC 5987) when it is not ASCII."""
    value = f'attachment; filename="{ascii_name}"'
    if unicode_name and not unicode_name.isascii():
        value += f"; filename*=UTF-8''{quote(unicode_name, safe='')}"
    return value


def short_id(session_id: str) -> str:
    """The last 8 characters of a session id: its random part, enough to tell names apart."""
    tail = re.sub(r"[^A-Za-z0-9]", "", session_id)[-8:]
    return tail or "x"
