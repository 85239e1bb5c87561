"""What the user says about a post: its topic, and the context it comes with.

``cap_topic`` tidies the topic; ``parse_context`` reads the brand, the audience and the
tone from free text such as "We are Acme Bakery, playful tone, audience: families".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.text import ELLIPSIS, grapheme_floor, one_line

__all__ = ["MAX_TOPIC_CHARS", "Context", "cap_topic", "parse_context"]

MAX_TOPIC_CHARS = 120


def cap_topic(topic: str) -> str:
    """The topic on one line, without quotes or end punctuation, cut to ``MAX_TOPIC_CHARS``
    (at a word when one ends in the second half, never inside a grapheme cluster)."""
    topic = one_line(topic).strip(" \"'`").rstrip(".,;:!?" + ELLIPSIS + " ")
    if len(topic) > MAX_TOPIC_CHARS:
        cut = topic[: grapheme_floor(topic, MAX_TOPIC_CHARS)]
        space = cut.rfind(" ")
        topic = cut[:space] if space > MAX_TOPIC_CHARS // 2 else cut
        topic = topic.rstrip(" ,;:-")
    return topic or "our latest update"


_TONES = ("friendly", "playful", "professional", "inspiring", "urgent")
_TONE_WORDS: dict[str, tuple[str, ...]] = {
    "playful": (
        "playful",
        "fun",
        "funny",
        "casual",
        "witty",
        "humorous",
        "humour",
        "humor",
        "cheeky",
        "lighthearted",
        "light-hearted",
        "quirky",
        "silly",
        "jokey",
        "cheerful",
        "informal",
    ),
    "professional": (
        "formal",
        "professional",
        "corporate",
        "serious",
        "business",
        "authoritative",
        "polished",
        "b2b",
        "executive",
    ),
    "inspiring": (
        "inspiring",
        "inspirational",
        "motivational",
        "motivating",
        "uplifting",
        "empowering",
        "aspirational",
        "hopeful",
        "inspire",
    ),
    "urgent": (
        "urgent",
        "urgency",
        "hurry",
        "asap",
        "limited time",
        "last chance",
        "time-sensitive",
        "fomo",
        "deadline",
    ),
    "friendly": ("friendly", "warm", "heartfelt", "welcoming", "caring", "kind", "approachable"),
}

_STOP_AT = r"(?=\s+(?:and|who|that|which|with|in|from|based|located|serving)\b|[,.;:!?\n(]|$)"
_BRAND_RE = re.compile(
    r"(?:\bwe\s+are|\bwe're|\bthis\s+is|\bi\s+am|\bi'm|\bcompany(?:\s+name)?\s*(?:is|[:=-])"
    r"|\bbrand(?:\s+name)?\s*(?:is|[:=-])|\bbusiness(?:\s+name)?\s*(?:is|[:=-])"
    r"|\borgani[sz]ation\s*(?:is|[:=-])|\bname\s*[:=-]|\bposting\s+as|\bon\s+behalf\s+of)\s*"
    r"(?P<b>[^,.;:!?\n(]+?)" + _STOP_AT,
    re.IGNORECASE,
)
_AUDIENCE_RE = re.compile(
    r"\b(?:target\s+audience|audience|target|readers|customers)\s*(?:is|are|[:=-])\s*"
    r"(?P<a>[^,.;:!?\n(]+?)(?=[,.;:!?\n(]|$)",
    re.IGNORECASE,
)
_FOR_RE = re.compile(
    r"\b(?:aimed\s+at|for)\s+(?P<a>[^,.;:!?\n(]+?)(?=[,.;:!?\n(]|$)", re.IGNORECASE
)
# "for Facebook" names a platform, not an audience. The names are spelled out rather than
# taken from `platforms.name_pattern()`, which would also stop "for linked in ...".
_NOT_AUDIENCE = re.compile(
    r"^(?:facebook|fb|instagram|insta|ig|linkedin|twitter|x|threads|mastodon|(?:a|an|the|this|our|my)"
    r"\s+(?:post|tweet|caption|brand|company|business|change)|now|today|example|instance|sure)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Context:
    brand: str | None
    audience: str | None
    tone: str | None


def _short_phrase(text: str, max_words: int, max_chars: int) -> str | None:
    words = one_line(text).strip(" \"'`").split()
    if not words:
        return None
    phrase = " ".join(words[:max_words])
    return phrase[: grapheme_floor(phrase, max_chars)].rstrip() or None


def parse_context(context: str | None) -> Context:
    if not context:
        return Context(None, None, None)
    ctx = one_line(context)
    ctx = ctx[: grapheme_floor(ctx, 1000)].replace("\u2019", "'")
    brand: str | None = None
    m = _BRAND_RE.search(ctx)
    if m:
        candidate = m.group("b").strip()
        first = candidate.split(" ", 1)[0].lower() if candidate else ""
        # "We are a small bakery" describes, it does not name.
        if first not in {
            "a",
            "an",
            "some",
            "very",
            "so",
            "really",
            "here",
            "excited",
            "happy",
            "proud",
        }:
            brand = _short_phrase(candidate, 6, 50)
    audience: str | None = None
    m = _AUDIENCE_RE.search(ctx)
    if m is None:
        m = next((f for f in _FOR_RE.finditer(ctx) if not _NOT_AUDIENCE.match(f.group("a"))), None)
    if m:
        audience = _short_phrase(m.group("a"), 8, 60)
    low = ctx.casefold()
    tone: str | None = None
    best = len(low) + 1
    for name, words in _TONE_WORDS.items():
        for word in words:
            hit = re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", low)
            if hit and hit.start() < best:
                best, tone = hit.start(), name
    return Context(brand, audience, tone)
