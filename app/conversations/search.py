"""What a search text finds, and where: word prefixes by full-text search, the rest by
substring.

PostgreSQL's `simple` parser indexes words of letters and digits. Each word of the search
text matches words that start with it (`sourd` finds `sourdough`), through the GIN
indexes over the stored `tsvector`s, and the `websearch_to_tsquery` syntax keeps working
(`"a phrase"`, `or`, `-word`). A term the parser cannot see inside words, one holding
Chinese, Japanese or Korean characters, or a symbol such as an emoji, is matched as a
case-insensitive substring (`ILIKE`), since those scripts do not separate words with
spaces and emoji are not words at all. A term of symbols only (an emoji) has no trigram
either: the messages holding each of its symbols are looked up in the GIN index over
`content_symbols` (`app.conversations.symbols`), and only those are checked for the term.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, TSQUERY

from app.conversations.models import SEARCH_CONFIG
from app.conversations.symbols import UNREAD, symbols_of
from app.core.text import ELLIPSIS, grapheme_floor, is_unspaced

SNIPPET_BEFORE = 40
SNIPPET_CHARS = 160
_LEXEME = r"'([^']|'')*'"  # a quoted lexeme in a tsquery's text form


@dataclass(frozen=True)
class SearchTerms:
    """A search text split: what full-text search takes, and the substring terms."""

    words: str | None
    substrings: tuple[str, ...]
    excluded: tuple[str, ...]

    def highlight_terms(self) -> tuple[list[str], list[str]]:
        """(word prefixes, substrings) to mark in a snippet; excluded ones are not shown."""
        prefixes: list[str] = []
        for token in (self.words or "").split():
            if token.startswith("-") or token.lower() == "or":
                continue
            prefixes.extend(w for w in re.split(r"\W+", token) if w)
        return prefixes, list(self.substrings)


def split_terms(q: str) -> SearchTerms:
    words: list[str] = []
    substrings: list[str] = []
    excluded: list[str] = []
    for token in q.split():
        bare = token.strip('"')
        if bare and any(is_unspaced(ch) for ch in bare):
            if bare.startswith("-") and len(bare) > 1:
                excluded.append(bare[1:])
            else:
                substrings.append(bare)
        else:
            words.append(token)
    return SearchTerms(" ".join(words) or None, tuple(substrings), tuple(excluded))


def prefix_tsquery_sql(param: str) -> str:
    """SQL text of `prefix_tsquery` over a bound parameter (for EXPLAIN)."""
    lexeme = _LEXEME.replace("'", "''")
    plain = f"websearch_to_tsquery('{SEARCH_CONFIG}'::regconfig, {param})::text"
    return f"regexp_replace({plain}, '{lexeme}', '\\&:*', 'g')::tsquery"


def prefix_tsquery(words: str) -> sa.ColumnElement[Any]:
    """`websearch_to_tsquery` with every lexeme turned into a prefix (`'sourd':*`). The
    text form is read back as it is (a cast, not `to_tsquery`, which would parse the
    lexemes again and split `foo-bar` twice)."""
    config: sa.ColumnElement[Any] = sa.literal_column(f"'{SEARCH_CONFIG}'::regconfig")
    plain = sa.cast(sa.func.websearch_to_tsquery(config, words), sa.Text)
    return sa.cast(sa.func.regexp_replace(plain, _LEXEME, r"\&:*", "g"), TSQUERY)


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matches(
    terms: SearchTerms,
    text: sa.ColumnElement[Any],
    tsv: sa.ColumnElement[Any],
    symbols: sa.ColumnElement[Any] | None = None,
) -> sa.ColumnElement[bool]:
    """Whether one title or message holds every term (and none of the excluded ones).
    `symbols`: the text's stored symbols (`chat_message.content_symbols`), if it has them."""
    conds: list[sa.ColumnElement[bool]] = []
    if terms.words is not None:
        conds.append(tsv.op("@@")(prefix_tsquery(terms.words)))
    conds.extend(_contains(text, t, symbols) for t in terms.substrings)
    conds.extend(sa.not_(_contains(text, t)) for t in terms.excluded)
    return sa.and_(*conds)


_NO_SYMBOLS = sa.text("'{}'::text[]")  # as the partial index's predicate says it


def _contains(
    text: sa.ColumnElement[Any], term: str, symbols: sa.ColumnElement[Any] | None = None
) -> sa.ColumnElement[bool]:
    if any(ch.isalnum() for ch in term):
        return text.ilike(_like(term), escape="\\")  # served by the trigram index
    # Only symbols (emoji): pg_trgm takes no trigrams from them. Symbols have no case.
    found = sa.func.strpos(text, term) > 0
    wanted = symbols_of(term)
    if symbols is None or not wanted:  # titles; ASCII symbols: each text is checked
        return found
    # A text holding the term holds each of its symbols: the index finds those texts,
    # strpos decides (order and neighbours).
    held = symbols.op("@>")(sa.cast(sa.literal(wanted, ARRAY(sa.Text)), ARRAY(sa.Text)))
    unread = symbols.op("@>")(sa.cast(sa.literal([UNREAD], ARRAY(sa.Text)), ARRAY(sa.Text)))
    return sa.and_(symbols != _NO_SYMBOLS, sa.or_(held, unread), found)


@dataclass(frozen=True)
class Snippet:
    text: str
    highlights: list[tuple[int, int]]


def snippet(text: str, terms: SearchTerms) -> Snippet | None:
    """The part of `text` around the first match, with the (start, end) character offsets
    of every match in it; None when no term is found in the text."""
    flat = " ".join(text.split())
    prefixes, substrings = terms.highlight_terms()
    patterns = [rf"(?<!\w){re.escape(p)}" for p in prefixes] + [re.escape(s) for s in substrings]
    if not patterns:
        return None
    finder = re.compile("|".join(patterns), re.IGNORECASE)
    first = finder.search(flat)
    if first is None:
        return None
    start = max(0, first.start() - SNIPPET_BEFORE)
    if start > 0 and " " in flat[start : first.start()]:
        start = flat.index(" ", start) + 1  # begin at a word
    end = grapheme_floor(flat, min(len(flat), start + SNIPPET_CHARS))  # whole clusters
    lead = ELLIPSIS if start > 0 else ""
    piece = lead + flat[start:end] + (ELLIPSIS if end < len(flat) else "")
    shift = len(lead) - start
    marks = [
        (m.start() + shift, m.end() + shift)
        for m in finder.finditer(flat, start, end)
        if m.end() > m.start()
    ]
    return Snippet(text=piece, highlights=marks)
