"""Tags: short, case-insensitive labels on a user's conversations."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations.repository import ConversationRepository
from app.conversations.repository import TagCount as TagCount
from app.core.errors import InvalidInputError

TAG_MAX_CHARS = 32
TAGS_PER_CONVERSATION = 10


def _refused(detail: str) -> InvalidInputError:
    return InvalidInputError(detail, code="invalid_tag")


# What an emoji is made of besides its symbol: the joiner of a sequence (👩‍💻), the
# variation selectors, and the keycap mark.
_EMOJI_PARTS = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}


def _allowed(ch: str) -> bool:
    if ch.isalnum() or ch in " -_./+" or ch in _EMOJI_PARTS:
        return True
    # Symbols (So: emoji, ★), modifiers (Sk: skin tones) and combining marks (Mn, Mc).
    return unicodedata.category(ch) in {"So", "Sk", "Mn", "Mc"}


def normalize_tag(raw: str) -> str:
    """One tag as stored: whitespace collapsed, lower-case (case-folded), 1 to 32 characters of
    letters, digits, emoji, spaces, `-`, `_`, `.`, `/` or `+`."""
    tag = unicodedata.normalize("NFC", " ".join(raw.split())).casefold()
    if not tag:
        raise _refused("A tag is empty.")
    if len(tag) > TAG_MAX_CHARS:
        raise _refused(f"The tag {tag[:40]!r} is longer than {TAG_MAX_CHARS} characters.")
    if not all(_allowed(ch) for ch in tag):
        raise _refused(
            f"The tag {tag!r} holds a character other than letters, digits, emoji, spaces "
            "and -_./+."
        )
    return tag


def normalize_tags(raw: Sequence[str]) -> list[str]:
    """The tags as stored: each normalised, repeats dropped, in the order given."""
    tags = list(dict.fromkeys(normalize_tag(t) for t in raw))
    if len(tags) > TAGS_PER_CONVERSATION:
        raise _refused(f"A conversation has at most {TAGS_PER_CONVERSATION} tags.")
    return tags


async def tag_counts(*, session: AsyncSession, user_id: uuid.UUID) -> list[TagCount]:
    """The user's tags with how many conversations (not in the trash) carry each, most used
    first."""
    return await ConversationRepository(session, user_id).tag_counts()
