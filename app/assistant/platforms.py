"""The platforms a post can be written for: the one place that knows them.

Each platform has an id (stored with drafts and sent to publishers), the name users read,
the other words users call it by, the length it allows and how it counts that length, and
what a good post on it looks like. The rules, the composer, the model's prompt and the
web page (`page_data`, rendered into the page) all read this table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFAULT_PLATFORM",
    "PLATFORMS",
    "PLATFORM_ALIASES",
    "PLATFORM_RULES",
    "Platform",
    "canonical_platform",
    "display_name",
    "measure",
    "name_pattern",
    "page_data",
    "verb_pattern",
]


@dataclass(frozen=True)
class Platform:
    id: str
    name: str  # as users read it
    max_chars: int  # hard limit: a draft never exceeds it (see ``measure``)
    target_chars: int  # what a good post aims for
    min_hashtags: int
    max_hashtags: int
    emoji: int  # 0 none, 1 light, 2 rich
    default_tone: str
    weighted_length: bool = False  # X counts most non-Latin characters and emoji as 2
    aliases: tuple[str, ...] = ()  # other names users give it ("fb", "twitter")
    verbs: tuple[str, ...] = ()  # what posting on it is called ("tweet")


PLATFORM_RULES: Mapping[str, Platform] = MappingProxyType(
    {
        p.id: p
        for p in (
            Platform("facebook", "Facebook", 63206, 500, 1, 3, 1, "friendly", aliases=("fb",)),
            Platform(
                "instagram", "Instagram", 2200, 700, 5, 10, 2, "playful", aliases=("insta", "ig")
            ),
            Platform(
                "linkedin", "LinkedIn", 3000, 900, 3, 5, 0, "professional", aliases=("linked in",)
            ),
            Platform(
                "x",
                "X",
                280,
                240,
                1,
                2,
                1,
                "friendly",
                weighted_length=True,
                aliases=("twitter",),
                verbs=("tweet",),
            ),
            Platform("threads", "Threads", 500, 350, 1, 1, 1, "friendly"),
            Platform("mastodon", "Mastodon", 500, 400, 2, 4, 1, "friendly", verbs=("toot",)),
        )
    }
)
PLATFORMS: tuple[str, ...] = tuple(PLATFORM_RULES)
DEFAULT_PLATFORM = "facebook"

PLATFORM_ALIASES: Mapping[str, str] = MappingProxyType(
    {word: p.id for p in PLATFORM_RULES.values() for word in (p.id, *p.aliases, *p.verbs)}
)


def canonical_platform(name: str | None) -> str | None:
    """Map a platform name or alias ("fb", "Twitter", "IG") to its canonical name.

    Returns None for None or an unknown name.
    """
    if name is None:
        return None
    key = re.sub(r"\s+", " ", name.strip().casefold())
    return PLATFORM_ALIASES.get(key)


def display_name(platform: str) -> str:
    """The name users read, for a platform id ("linkedin" -> "LinkedIn")."""
    rule = PLATFORM_RULES.get(platform)
    return rule.name if rule else platform.capitalize()


def _alternation(words: list[str]) -> str:
    # Longest first; a space in an alias ("linked in") may be one space or none.
    ordered = sorted(words, key=lambda w: (-len(w), w))
    return "(?:" + "|".join(re.escape(w).replace(r"\ ", r"\s?") for w in ordered) + ")"


def name_pattern() -> str:
    """A regular expression (no groups) for any platform's id or alias, as a noun."""
    return _alternation([w for p in PLATFORM_RULES.values() for w in (p.id, *p.aliases)])


def verb_pattern() -> str:
    """A regular expression (no groups) for the verbs of posting ("tweet", "toot")."""
    return _alternation([v for p in PLATFORM_RULES.values() for v in p.verbs])


def page_data() -> list[dict[str, Any]]:
    """What the web page knows of each platform (rendered into the page as JSON)."""
    return [{"id": p.id, "name": p.name, "maxChars": p.max_chars} for p in PLATFORM_RULES.values()]


# ---------------------------------------------------------------------------
# Length, as each platform counts it
# ---------------------------------------------------------------------------

# X's weighted counting: these code point ranges count 1, everything else 2.
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def _char_weight(ch: str) -> int:
    cp = ord(ch)
    return 1 if any(lo <= cp <= hi for lo, hi in _LIGHT_RANGES) else 2


def measure(platform: str, text: str) -> int:
    """Length of ``text`` as ``platform`` counts it (weighted for X, code points elsewhere).

    The X count is conservative: an emoji sequence counts 2 per code point.
    """
    rule = PLATFORM_RULES[platform]
    if rule.weighted_length:
        return sum(_char_weight(ch) for ch in text)
    return len(text)
