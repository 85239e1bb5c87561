"""Fitting a post to its platform's limit.

A post is built as paragraphs of segments, each with a drop order. ``fit`` renders it
within the limit: it drops the optional segments first, then the extra hashtags, and only
then cuts what is left, on a word boundary, never inside a grapheme cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.assistant.platforms import Platform, measure
from app.core.text import ELLIPSIS, grapheme_floor

__all__ = ["Segment", "fit", "truncate"]


def truncate(text: str, limit: int, count: Callable[[str], int]) -> str:
    """Cut ``text`` so that ``count(result) <= limit``, on a word boundary when possible.

    ``count`` is the platform's measure (X weighs most chars 2), so the cut is found
    char by char; it never splits a grapheme cluster (a letter and its marks, a joined
    emoji, a flag).
    """
    if count(text) <= limit:
        return text
    budget = limit - count(ELLIPSIS)
    if budget <= 0:
        return ""
    used = 0
    end = 0
    for ch in text:
        w = count(ch)
        if used + w > budget:
            break
        used += w
        end += 1
    end = grapheme_floor(text, end)
    cut = text[:end]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space >= end // 2:
        cut = cut[:space]
    cut = cut.rstrip(" \n\t,;:-\u2013\u2014.")
    return cut + ELLIPSIS if cut else ""


@dataclass(frozen=True)
class Segment:
    text: str
    drop_order: int  # 0 = never dropped; higher numbers are dropped first


def _render(paragraphs: list[list[Segment]], bullets: str | None) -> str:
    out: list[str] = []
    for para in paragraphs:
        texts = [s.text for s in para if s.text]
        if not texts:
            continue
        if bullets is not None and para is paragraphs[1] and len(texts) > 1:
            out.append("\n".join(bullets + t for t in texts))
        else:
            out.append(" ".join(texts))
    return "\n\n".join(out)


def fit(
    paragraphs: list[list[Segment]],
    bullets: str | None,
    brand: str | None,
    hashtags: tuple[str, ...],
    rule: Platform,
) -> tuple[str, tuple[str, ...]]:
    """Render within the platform's limit: drop optional parts first, then truncate.

    A brand named in the context always shows: in the text, or as a sign-off line.
    The sign-off and the hashtags are kept as long as there is reasonable room.
    """

    def signoff_for(body: str) -> str:
        if brand and brand.casefold() not in body.casefold():
            return f"\u2014 {brand}"
        return ""

    def count(text: str) -> int:
        return measure(rule.id, text)

    def suffix(sig: str, tags: tuple[str, ...]) -> str:
        return (f"\n\n{sig}" if sig else "") + (f"\n\n{' '.join(tags)}" if tags else "")

    limit = rule.max_chars
    tags = hashtags
    while True:
        body = _render(paragraphs, bullets)
        signoff = signoff_for(body)
        if count(body + suffix(signoff, tags)) <= limit:
            return body + suffix(signoff, tags), tags
        droppable = [
            (seg.drop_order, pi, si)
            for pi, para in enumerate(paragraphs)
            for si, seg in enumerate(para)
            if seg.drop_order > 0 and seg.text
        ]
        if droppable:
            _, pi, si = max(droppable)
            paragraphs = [list(p) for p in paragraphs]
            paragraphs[pi][si] = Segment("", 0)
            continue
        if len(tags) > rule.min_hashtags:
            tags = tags[: rule.min_hashtags]
            continue
        break
    # Only the opening is left and it is too long: truncate it, keeping what fits after it.
    min_room = min(60, limit // 2)
    for sig, tg in ((signoff, tags), (signoff, ()), ("", tags), ("", ())):
        tail = suffix(sig, tg)
        room = limit - count(tail)
        if room >= min_room or not tail:
            cut = truncate(body, room, count)
            return (cut + tail if cut else tail.strip()), tg
    raise AssertionError("unreachable")  # pragma: no cover
