"""Deterministic post composition for the built-in Chatkeep assistant.

``compose_post`` writes a social-media post from templates: the same
(platform, topic, context, version) always gives the same text, and
consecutive versions differ in opening, body, structure and call to action.
No network, no model, no randomness.

It puts together what the neighbouring modules know: the platform's rules
(`platforms`), the topic and the context as the user gave them (`context`),
hashtags and emoji for the topic (`topics`), the wording (`post_templates`), and
fitting the result to the platform's limit (`fitting`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from app.assistant.context import MAX_TOPIC_CHARS, cap_topic, parse_context
from app.assistant.fitting import Segment, fit
from app.assistant.platforms import DEFAULT_PLATFORM, PLATFORM_RULES, canonical_platform, measure
from app.assistant.post_templates import AUDIENCE_LINES, BODIES, BULLETS, CTAS, OPENERS
from app.assistant.replies import describe_capabilities
from app.assistant.topics import choose_hashtags, topic_emoji
from app.core.text import one_line

# MAX_TOPIC_CHARS, PLATFORM_RULES, describe_capabilities and measure are defined beside
# the composer (`context`, `platforms`, `replies`) and stay importable from here.
__all__ = [
    "MAX_TOPIC_CHARS",
    "PLATFORM_RULES",
    "Draft",
    "compose_post",
    "describe_capabilities",
    "measure",
]


@dataclass(frozen=True)
class Draft:
    platform: str
    topic: str
    text: str
    hashtags: tuple[str, ...]  # with the leading "#", in the order they appear in ``text``
    version: int


def _sentence_case(text: str) -> str:
    """Capitalise the first letter unless the first word already has capitals ("iPhone")."""
    if not text:
        return text
    first = text.split(" ", 1)[0]
    if first != first.lower() or not text[0].islower():
        return text
    return text[0].upper() + text[1:]


def _pick(seed: bytes, slot: int, version: int, size: int) -> int:
    """Stable index: a per-input base from the hash, advanced by one for each version."""
    base = int.from_bytes(seed[slot * 4 : slot * 4 + 4], "big")
    return (base + version) % size


def compose_post(*, platform: str | None, topic: str, context: str | None, version: int) -> Draft:
    """Write a draft post.

    ``platform``: canonical name or alias ("fb", "twitter"...); None means Facebook.
    Raises ValueError for an unknown platform name.  ``topic`` is user text (any
    Unicode, capped to ``MAX_TOPIC_CHARS``); ``context`` is free text such as
    "We are Acme Bakery, playful tone, audience: families".
    """
    name = DEFAULT_PLATFORM if platform is None else canonical_platform(platform)
    if name is None or name not in PLATFORM_RULES:
        raise ValueError(f"unknown platform: {platform!r}")
    rule = PLATFORM_RULES[name]
    clean_topic = cap_topic(topic)
    ctx = parse_context(context)
    tone = ctx.tone or rule.default_tone

    seed = hashlib.sha256(
        "\x1f".join((name, clean_topic, one_line(context or ""))).encode("utf-8", "surrogatepass")
    ).digest()
    opener_t = OPENERS[tone][_pick(seed, 0, version, 7)]
    body_t = BODIES[tone][_pick(seed, 1, version, 5)]
    cta_t = CTAS[tone][_pick(seed, 2, version, 6)]
    structure = _pick(seed, 3, version, 2)
    span = rule.max_hashtags - rule.min_hashtags + 1
    tag_count = rule.min_hashtags + int.from_bytes(seed[16:18], "big") % span

    brand = ctx.brand
    values = {
        "topic": clean_topic,
        "Topic": _sentence_case(clean_topic),
        "We": f"At {brand}, we" if brand else "We",
        "we": "we",
        "Team": f"The {brand} team" if brand else "Our team",
        "team": f"the {brand} team" if brand else "our team",
        "audience": ctx.audience or "",
        "Audience": _sentence_case(ctx.audience or ""),
    }

    def fill(template: str) -> str:
        return template.format(**values)

    emoji_level = rule.emoji
    if tone == "professional":
        emoji_level = min(emoji_level, 1 if rule.id == "instagram" else 0)
    emoji = topic_emoji(clean_topic)

    opener = fill(opener_t)
    if emoji_level >= 1:
        opener = f"{opener} {emoji}" if structure == 0 or emoji_level == 1 else f"{emoji} {opener}"
    body = [fill(s) for s in body_t]
    if rule.id == "linkedin":
        # LinkedIn rewards a little more substance: add a second, different paragraph.
        body += [fill(s) for s in BODIES[tone][(_pick(seed, 1, version, 5) + 2) % 5]]
    if emoji_level >= 2:
        body[-1] = f"{body[-1]} \U0001f4ab"
    cta = fill(cta_t)
    if emoji_level >= 2:
        cta = f"{cta} \U0001f447"
    audience_line = fill(AUDIENCE_LINES[tone]) if ctx.audience else ""

    hashtags = choose_hashtags(clean_topic, rule, tone, brand, tag_count)
    short = rule.id in {"x", "threads"}
    paragraphs: list[list[Segment]]
    if short:
        main = [Segment(opener, 0), Segment(body[0], 4)]
        if rule.id == "threads":
            main.append(Segment(body[1], 5))
        main += [Segment(audience_line, 3), Segment(cta, 2)]
        if structure == 1:
            main.insert(1, main.pop(-1))  # call to action right after the opening
        paragraphs = [main]
        bullets = None
    else:
        head = [Segment(opener, 0)]
        middle = [Segment(s, 4 + i) for i, s in enumerate(body)] + [Segment(audience_line, 3)]
        tail = [Segment(cta, 2)]
        if structure == 1 and rule.id in BULLETS:
            bullets = BULLETS[rule.id]
            paragraphs = [head, middle, tail]
        else:
            bullets = None
            paragraphs = [head, middle, tail]
    text, hashtags = fit(paragraphs, bullets, brand, hashtags, rule)
    return Draft(platform=name, topic=clean_topic, text=text, hashtags=hashtags, version=version)
