"""Search over sealed text: a blind index of keyed word, prefix and gram tokens.

With ENCRYPTION_KEYS set, message content and titles are stored sealed, so PostgreSQL
cannot index their words. Instead each sealed message (and title, at `message_seq` 0)
gets one `message_search_token` row: the HMAC (`Keyring.token`, keyed per user) of

- every word, `w:<word>`, and each of its prefixes of 2 to 16 characters, `p:<prefix>`
  (words as PostgreSQL's `simple` parser sees them: letters and digits, case-folded);
- every Chinese/Japanese/Korean character or symbol (emoji), `g:<char>`, and each pair of
  neighbouring characters that holds one, `g:<pair>`.

A search word of 2 or more characters looks up `p:` (a prefix: `sourd` finds
`sourdough`; past 16 characters its first 16 are compared), a single character `w:`
(the whole word only). A CJK or emoji term needs all of its pairs. Each term is hashed under
every configured key, so rows not yet rotated still match. What this leaks and loses is
in docs/operations.md.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.conversations.models import TITLE_SEQ, ChatMessage, ChatSession, MessageSearchToken
from app.conversations.search import SearchTerms
from app.conversations.search import _needs_substring as _substring_char
from app.core.tenancy import owned_by
from app.encryption import sealed
from app.encryption.crypto import Keyring

MIN_PREFIX = 2
MAX_PREFIX = 16
_WORD = re.compile(r"[^\W_]+")
_tokens = MessageSearchToken.__table__  # type: ignore[attr-defined]


@lru_cache(maxsize=4096)
def _needs_gram(ch: str) -> bool:
    return _substring_char(ch)


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _words(norm: str) -> list[str]:
    """Words of letters and digits, split at CJK characters (indexed as grams)."""
    out: list[str] = []
    for match in _WORD.finditer(norm):
        part = ""
        for ch in match.group():
            if _needs_gram(ch):
                if part:
                    out.append(part)
                part = ""
            else:
                part += ch
        if part:
            out.append(part)
    return out


def index_terms(text: str) -> set[str]:
    """The terms a text is found by (before hashing)."""
    norm = normalize(text)
    terms: set[str] = set()
    for word in set(_words(norm)):
        terms.add("w:" + word)
        for k in range(MIN_PREFIX, min(len(word), MAX_PREFIX) + 1):
            terms.add("p:" + word[:k])
    for i, ch in enumerate(norm):
        if not _needs_gram(ch):
            continue
        terms.add("g:" + ch)
        if i + 1 < len(norm) and not norm[i + 1].isspace():
            terms.add("g:" + norm[i : i + 2])
        if i > 0 and not norm[i - 1].isspace() and not _needs_gram(norm[i - 1]):
            terms.add("g:" + norm[i - 1 : i + 1])
    return terms


def _word_term(word: str) -> str:
    return "w:" + word if len(word) < MIN_PREFIX else "p:" + word[:MAX_PREFIX]


def _gram_terms(norm: str) -> list[str]:
    if len(norm) == 1:
        return ["g:" + norm]
    return [
        "g:" + norm[i : i + 2]
        for i in range(len(norm) - 1)
        if (_needs_gram(norm[i]) or _needs_gram(norm[i + 1]))
        and not norm[i].isspace()
        and not norm[i + 1].isspace()
    ]


@dataclass(frozen=True)
class TokenQuery:
    """Every `required` group must meet a row's tokens (any one of the group); no
    `excluded` entry may have all of its groups met."""

    required: list[list[bytes]]
    excluded: list[list[list[bytes]]]


def token_query(keyring: Keyring, user_id: uuid.UUID, terms: SearchTerms) -> TokenQuery:
    """The search text's terms as token lookups, under every key."""

    def hashed(names: set[str] | list[str]) -> list[bytes]:
        return [t for name in sorted(set(names)) for t in keyring.tokens_any_key(user_id, name)]

    required: list[list[bytes]] = []
    excluded: list[list[list[bytes]]] = []
    either = False
    for raw in (terms.words or "").split():
        if raw.lower() == "or":
            either = bool(required)
            continue
        negative = raw.startswith("-") and len(raw) > 1
        words = _words(normalize((raw[1:] if negative else raw).strip('"')))
        if not words:
            continue
        if negative:
            excluded.append([hashed([_word_term(w)]) for w in words])
        elif either:
            required[-1] = required[-1] + hashed([_word_term(w) for w in words])
        else:
            required.extend(hashed([_word_term(w)]) for w in words)
        either = False
    for term in terms.substrings:
        required.extend(hashed([g]) for g in _gram_terms(normalize(term)))
    for term in terms.excluded:
        grams = _gram_terms(normalize(term))
        if grams:
            excluded.append([hashed([g]) for g in grams])
    return TokenQuery(required=required, excluded=excluded)


def _overlaps(tokens: list[bytes]) -> sa.ColumnElement[bool]:
    found: sa.ColumnElement[bool] = _tokens.c.tokens.overlap(
        sa.literal(tokens, ARRAY(sa.LargeBinary))
    )
    return found


def matching_rows(
    query: TokenQuery, *, user_id: uuid.UUID, session_ids: list[str] | None = None
) -> sa.Select[Any]:
    """SELECT session_id, message_seq of the user's sealed messages and titles (seq 0)
    that the query finds."""
    t = _tokens.c
    conds: list[sa.ColumnElement[bool]] = [owned_by(_tokens, user_id)]
    if session_ids is not None:
        conds.append(t.session_id == sa.any_(sa.cast(session_ids, ARRAY(sa.String))))
    conds.extend(_overlaps(group) for group in query.required)
    conds.extend(sa.not_(sa.and_(*(_overlaps(g) for g in groups))) for groups in query.excluded)
    return sa.select(t.session_id, t.message_seq).where(*conds)


def token_row(
    keyring: Keyring, *, user_id: uuid.UUID, session_id: str, seq: int, text: str
) -> dict[str, Any]:
    kid = keyring.primary.kid
    return {
        "session_id": session_id,
        "message_seq": seq,
        "user_id": user_id,
        "key_id": kid,
        "tokens": sorted(keyring.tokens(kid, user_id, index_terms(text))),
    }


def upsert(rows: list[dict[str, Any]]) -> Any:
    stmt = pg_insert(_tokens).values(rows)
    return stmt.on_conflict_do_update(
        index_elements=[_tokens.c.session_id, _tokens.c.message_seq],
        set_={"tokens": stmt.excluded.tokens, "key_id": stmt.excluded.key_id},
    )


def write_tokens(
    connection: sa.Connection,
    keyring: Keyring,
    *,
    user_id: uuid.UUID,
    session_id: str,
    seq: int,
    text: str,
) -> None:
    """Index one sealed message or title, inside the flush that wrote it."""
    row = token_row(keyring, user_id=user_id, session_id=session_id, seq=seq, text=text)
    connection.execute(upsert([row]))


# The ORM's sealed writes of messages and titles index themselves here.
@sealed.on_sealed_write(ChatMessage)
def _index_message(connection: sa.Connection, target: Any, keyring: Keyring) -> None:
    write_tokens(
        connection,
        keyring,
        user_id=target.user_id,
        session_id=target.session_id,
        seq=target.seq,
        text=target.content,
    )


@sealed.on_sealed_write(ChatSession)
def _index_title(connection: sa.Connection, target: Any, keyring: Keyring) -> None:
    write_tokens(
        connection,
        keyring,
        user_id=target.user_id,
        session_id=target.id,
        seq=TITLE_SEQ,
        text=target.title,
    )
