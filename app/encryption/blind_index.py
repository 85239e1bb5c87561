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

This module makes the tokens; the table that holds them (`message_search_token`) is
written and read by `app.conversations.repository`.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from app.core.text import is_unspaced
from app.encryption.crypto import Keyring

MIN_PREFIX = 2
MAX_PREFIX = 16
_WORD = re.compile(r"[^\W_]+")


class SearchTerms(Protocol):
    """A search text split (`app.conversations.search.SearchTerms`): the words for
    full-text search, and the substring terms wanted and excluded."""

    @property
    def words(self) -> str | None: ...
    @property
    def substrings(self) -> Sequence[str]: ...
    @property
    def excluded(self) -> Sequence[str]: ...


@lru_cache(maxsize=4096)
def _needs_gram(ch: str) -> bool:
    return is_unspaced(ch)


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
