"""Deterministic post composition for the built-in Chatkeep assistant.

``compose_post`` writes a social-media post from templates: the same
(platform, topic, context, version) always gives the same text, and
consecutive versions differ in opening, body, structure and call to action.
No network, no model, no randomness.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from app.assistant.intents import canonical_platform

__all__ = [
    "MAX_TOPIC_CHARS",
    "PLATFORM_RULES",
    "Draft",
    "PlatformRule",
    "compose_post",
    "describe_capabilities",
    "measure",
]

MAX_TOPIC_CHARS = 120
_ELLIPSIS = "\u2026"


@dataclass(frozen=True)
class PlatformRule:
    name: str
    display_name: str
    max_chars: int  # hard limit: a draft never exceeds it (see ``measure``)
    target_chars: int  # what a good post aims for
    min_hashtags: int
    max_hashtags: int
    emoji: int  # 0 none, 1 light, 2 rich
    default_tone: str
    weighted_length: bool = False  # X counts most non-Latin characters and emoji as 2


PLATFORM_RULES: Mapping[str, PlatformRule] = MappingProxyType(
    {
        "facebook": PlatformRule("facebook", "Facebook", 63206, 500, 1, 3, 1, "friendly"),
        "instagram": PlatformRule("instagram", "Instagram", 2200, 700, 5, 10, 2, "playful"),
        "linkedin": PlatformRule("linkedin", "LinkedIn", 3000, 900, 3, 5, 0, "professional"),
        "x": PlatformRule("x", "X", 280, 240, 1, 2, 1, "friendly", weighted_length=True),
        "threads": PlatformRule("threads", "Threads", 500, 350, 1, 1, 1, "friendly"),
        "mastodon": PlatformRule("mastodon", "Mastodon", 500, 400, 2, 4, 1, "friendly"),
    }
)
DEFAULT_PLATFORM = "facebook"


@dataclass(frozen=True)
class Draft:
    platform: str
    topic: str
    text: str
    hashtags: tuple[str, ...]  # with the leading "#", in the order they appear in ``text``
    version: int


# ---------------------------------------------------------------------------
# Length
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


def _is_joining(ch: str) -> bool:
    """True for characters that must stay attached to the character before them."""
    return (
        unicodedata.category(ch).startswith("M")
        or ch in "\u200c\u200d"
        or "\ufe00" <= ch <= "\ufe0f"
    )


def _truncate(text: str, limit: int, count: Callable[[str], int]) -> str:
    """Cut ``text`` so that ``count(result) <= limit``, on a word boundary when possible."""
    if count(text) <= limit:
        return text
    budget = limit - count(_ELLIPSIS)
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
    # Never split a base character from its combining marks / joiners.
    while 0 < end < len(text) and _is_joining(text[end]):
        end -= 1
    cut = text[:end]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space >= end // 2:
        cut = cut[:space]
    cut = cut.rstrip(" \n\t,;:-\u2013\u2014.")
    return cut + _ELLIPSIS if cut else ""


# ---------------------------------------------------------------------------
# Input cleanup and context
# ---------------------------------------------------------------------------


def _clean_line(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cs", "Co", "Zl", "Zp"} else ch for ch in text
    )
    return re.sub(r"\s+", " ", text).strip()


def _cap_topic(topic: str) -> str:
    topic = _clean_line(topic).strip(" \"'`").rstrip(".,;:!?\u2026 ")
    if len(topic) > MAX_TOPIC_CHARS:
        cut = topic[:MAX_TOPIC_CHARS]
        while cut and _is_joining(topic[len(cut)]):
            cut = cut[:-1]
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
_NOT_AUDIENCE = re.compile(
    r"^(?:facebook|fb|instagram|insta|ig|linkedin|twitter|x|threads|mastodon|(?:a|an|the|this|our|my)"
    r"\s+(?:post|tweet|caption|brand|company|business|change)|now|today|example|instance|sure)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Context:
    brand: str | None
    audience: str | None
    tone: str | None


def _short_phrase(text: str, max_words: int, max_chars: int) -> str | None:
    words = _clean_line(text).strip(" \"'`").split()
    if not words:
        return None
    phrase = " ".join(words[:max_words])
    return phrase[:max_chars].rstrip() or None


def _parse_context(context: str | None) -> _Context:
    if not context:
        return _Context(None, None, None)
    ctx = _clean_line(context)[:1000].replace("\u2019", "'")
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
    return _Context(brand, audience, tone)


# ---------------------------------------------------------------------------
# Topic knowledge: hashtags and emoji for common topics
# ---------------------------------------------------------------------------

_TOPIC_TABLE: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (r"diwali|deepavali|दिवाली", ("Diwali", "FestivalOfLights", "HappyDiwali"), "\U0001fa94"),
    (r"christmas|x-?mas|xmas", ("Christmas", "HolidaySeason", "MerryChristmas"), "\U0001f384"),
    (
        r"lunar new year|chinese new year|spring festival|春节",
        ("LunarNewYear", "SpringFestival"),
        "\U0001f9e7",
    ),
    (r"new year", ("NewYear", "HappyNewYear"), "\U0001f389"),
    (r"\beid\b", ("EidMubarak", "Eid"), "\U0001f319"),
    (r"ramadan|ramzan", ("Ramadan", "RamadanKareem"), "\U0001f319"),
    (r"\bholi\b", ("Holi", "FestivalOfColours"), "\U0001f3a8"),
    (r"halloween", ("Halloween", "SpookySeason"), "\U0001f383"),
    (r"thanksgiving", ("Thanksgiving", "Grateful"), "\U0001f983"),
    (r"valentine", ("ValentinesDay", "Love"), "\U0001f496"),
    (r"easter", ("Easter", "HappyEaster"), "\U0001f423"),
    (
        r"black friday|cyber monday|\bsale\b|discount|\bdeals?\b|\boffers?\b|% off",
        ("Sale", "Deals", "ShopNow"),
        "\U0001f6cd\ufe0f",
    ),
    (
        r"launch|release|new product|introduc",
        ("ProductLaunch", "NewRelease", "Innovation"),
        "\U0001f680",
    ),
    (
        r"hiring|\bjobs?\b|career|recruit|join our team|vacanc",
        ("Hiring", "Careers", "JoinOurTeam"),
        "\U0001f4bc",
    ),
    (r"\boffice\b|headquarters|\bhq\b", ("NewOffice", "Workplace", "TeamCulture"), "\U0001f3e2"),
    (
        r"\bai\b|artificial intelligence|machine learning|\bml\b|\bllms?\b",
        ("AI", "Tech", "Innovation"),
        "\U0001f916",
    ),
    (
        r"anniversary|birthday|milestone|\byears? of\b",
        ("Anniversary", "Milestone", "Celebration"),
        "\U0001f382",
    ),
    (
        r"webinar|conference|summit|meetup|\bevent\b|workshop",
        ("Events", "SaveTheDate"),
        "\U0001f4c5",
    ),
    (r"coffee|caf[eé]|latte|espresso", ("Coffee", "CoffeeLover"), "\u2615"),
    (
        r"bakery|\bcakes?\b|bread|baking|pastr|cupcake|cookie",
        ("Bakery", "Baking", "FreshlyBaked"),
        "\U0001f9c1",
    ),
    (
        r"\bfood\b|recipe|restaurant|dinner|lunch|brunch",
        ("Foodie", "FoodLover"),
        "\U0001f37d\ufe0f",
    ),
    (
        r"fitness|\bgym\b|workout|yoga|running|marathon",
        ("Fitness", "Wellness", "HealthyLiving"),
        "\U0001f4aa",
    ),
    (r"travel|vacation|holiday trip|\btrip\b", ("Travel", "Wanderlust"), "\u2708\ufe0f"),
    (r"summer", ("Summer", "SummerVibes"), "\u2600\ufe0f"),
    (r"winter|\bsnow", ("Winter", "WinterVibes"), "\u2744\ufe0f"),
    (r"spring\b", ("Spring", "SpringVibes"), "\U0001f338"),
    (r"autumn", ("Autumn", "AutumnVibes"), "\U0001f342"),
    (
        r"sustainab|climate|earth day|\bgreen\b|recycl|eco-?friendly",
        ("Sustainability", "GoGreen"),
        "\U0001f331",
    ),
    (r"\bcats?\b|kitten", ("Cats", "CatLovers"), "\U0001f431"),
    (r"\bdogs?\b|pupp", ("Dogs", "DogLovers"), "\U0001f436"),
    (r"music|concert|\bgig\b|album", ("Music", "LiveMusic"), "\U0001f3b5"),
    (r"\bbooks?\b|reading|author", ("Books", "Reading"), "\U0001f4da"),
    (
        r"results|revenue|\bq[1-4]\b|quarter|growth|funding",
        ("Growth", "Business", "Results"),
        "\U0001f4c8",
    ),
    (
        r"open source|open-source|github|software|\bcode\b|developer",
        ("OpenSource", "Tech"),
        "\U0001f4bb",
    ),
    (r"\bteam\b|culture|employee", ("TeamCulture", "TeamWork"), "\U0001f91d"),
)
_COMPILED_TABLE = tuple((re.compile(p, re.IGNORECASE), tags, e) for p, tags, e in _TOPIC_TABLE)

_GENERIC_TAGS: dict[str, tuple[str, ...]] = {
    "facebook": ("Community", "GoodVibes"),
    "instagram": (
        "InstaGood",
        "InstaDaily",
        "Community",
        "Inspiration",
        "PhotoOfTheDay",
        "Explore",
        "LoveWhatWeDo",
        "SmallBusiness",
    ),
    "linkedin": ("Leadership", "Business", "Innovation", "Growth", "Community"),
    "x": ("News",),
    "threads": ("Community",),
    "mastodon": ("Community", "Fediverse"),
}
_TONE_TAGS: dict[str, tuple[str, ...]] = {
    "friendly": ("Community",),
    "playful": ("GoodVibes", "FunTimes"),
    "professional": ("Business", "Leadership"),
    "inspiring": ("Inspiration", "Motivation"),
    "urgent": ("LimitedTime", "DontMissOut"),
}
_TAG_STOPWORDS_WORDS = """
    a an the our my your their his her its of and or in on at for to with from by about is
    are was were be this that these those we us you it as into over under le la les de des
    du el los las y et und der die das
"""
_TAG_STOPWORDS = frozenset(_TAG_STOPWORDS_WORDS.split())
_WEAK_TAG_WORDS_TEXT = """
    new big best great good latest first next more most some all very just now today week
    day
"""
_WEAK_TAG_WORDS = frozenset(_WEAK_TAG_WORDS_TEXT.split())
_MAX_TAG_CHARS = 30


def _tag_word(word: str) -> str:
    kept = "".join(ch for ch in word if unicodedata.category(ch)[0] in "LMN" or ch == "_")
    if not kept:
        return ""
    if kept[0].islower() and kept[1:] == kept[1:].lower():  # "iPhone" keeps its own casing
        return kept[0].upper() + kept[1:]
    return kept


def _make_tag(words: list[str]) -> str | None:
    body = "".join(_tag_word(w) for w in words)
    if not body or body.isdigit() or unicodedata.category(body[0])[0] == "M":
        return None
    if len(body) > _MAX_TAG_CHARS:
        body = body[:_MAX_TAG_CHARS]
        while body and _is_joining(body[-1]):
            body = body[:-1]
    return "#" + body if body else None


def _topic_words(topic: str) -> list[str]:
    words = re.split(r"[\s\-/&+,;:.!?\"'()\[\]{}]+", topic)
    return [w for w in words if w and w.casefold() not in _TAG_STOPWORDS and _tag_word(w)]


def _hashtags(
    topic: str, rule: PlatformRule, tone: str, brand: str | None, count: int
) -> tuple[str, ...]:
    candidates: list[str] = []
    words = _topic_words(topic)
    for n in (3, 2, 1):
        whole = _make_tag(words[:n]) if len(words) >= n else None
        if whole and (len(whole) <= _MAX_TAG_CHARS + 1 or n == 1):
            candidates.append(whole)
            break
    for pattern, tags, _emoji in _COMPILED_TABLE:
        if pattern.search(topic):
            candidates.extend("#" + t for t in tags)
    if 1 < len(words) <= 4:
        for w in words:
            tag = _make_tag([w])
            if tag and len(tag) > 3 and w.casefold() not in _WEAK_TAG_WORDS:
                candidates.append(tag)
    if brand:
        tag = _make_tag(brand.split())
        if tag:
            candidates.append(tag)
    candidates.extend("#" + t for t in _TONE_TAGS[tone])
    candidates.extend("#" + t for t in _GENERIC_TAGS[rule.name])
    seen: set[str] = set()
    unique: list[str] = []
    for tag in candidates:
        key = tag.casefold()
        if key not in seen:
            seen.add(key)
            unique.append(tag)
    return tuple(unique[:count])


def _topic_emoji(topic: str) -> str:
    for pattern, _tags, emoji in _COMPILED_TABLE:
        if pattern.search(topic):
            return emoji
    return "\u2728"


# ---------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------
# Placeholders: {topic} (as given), {Topic} (sentence start), {We} ("We" or
# "At Acme, we"), {we}, {Team} ("Our team" / "The Acme team"), {team}.
# Counts are 7 openers, 5 bodies and 6 calls to action per tone, so that
# consecutive versions change all three and 210 versions in a row are distinct.

_OPENERS: dict[str, tuple[str, ...]] = {
    "friendly": (
        "Let's talk about {topic}!",
        "Here's to {topic}!",
        "Guess what's on our minds today? {Topic}!",
        "We've been looking forward to sharing this: {topic}.",
        "A little something about {topic}.",
        "Say hello to {topic}!",
        "It's all about {topic} today.",
    ),
    "playful": (
        "Okay, can we talk about {topic} for a sec?",
        "Plot twist: {topic} just got even better!",
        "Stop scrolling, it's {topic} time!",
        "Guess who's obsessed with {topic}? (Spoiler: us.)",
        "Breaking news from the fun department: {topic}!",
        "{Topic}? Yes, please!",
        "Warning: {topic} may cause extreme happiness.",
    ),
    "professional": (
        "We're pleased to share an update on {topic}.",
        "A few thoughts on {topic}.",
        "{Topic}: why it matters.",
        "Today we want to highlight {topic}.",
        "Key insight of the week: {topic}.",
        "Here is what we have learned about {topic}.",
        "Spotlight on {topic}.",
    ),
    "inspiring": (
        "Every big journey starts with a single step, and {topic} is ours.",
        "Here's to {topic} and everything it stands for.",
        "Some things are worth celebrating. {Topic} is one of them.",
        "Dream big. Start with {topic}.",
        "{Topic} reminds us what is possible.",
        "Believe in the power of {topic}.",
        "Today, {topic} is our reminder to keep going.",
    ),
    "urgent": (
        "Don't miss out: {topic}!",
        "Last chance: {topic}!",
        "Heads up! {Topic} is happening now.",
        "Time is running out: {topic}!",
        "It's on: {topic}!",
        "Hurry, {topic} won't last long!",
        "Act fast: {topic}!",
    ),
}

_BODIES: dict[str, tuple[tuple[str, ...], ...]] = {
    "friendly": (
        (
            "{We} love how it brings people together.",
            "It's the little moments that make it special.",
        ),
        ("{We} put a lot of heart into this one.", "{Team} can't wait to hear what you think."),
        ("{We} wanted you to be among the first to know.", "Grab a coffee and take a look."),
        (
            "It's one of our favourite things to share with you.",
            "Thank you for being part of our community.",
        ),
        (
            "From {team} to you: this one is close to our hearts.",
            "We hope it makes your day a little brighter.",
        ),
    ),
    "playful": (
        ("{We} may have gotten a little too excited about this one.", "No regrets."),
        ("{Team} has been buzzing about it all week.", "Honestly, who could blame us?"),
        ("It's fun, it's fresh, and it's totally worth it.", "Trust us on this one."),
        ("{We} tried to play it cool.", "We failed."),
        ("Life's too short for boring posts.", "So here's a happy one, straight from {team}."),
    ),
    "professional": (
        (
            "{We} believe meaningful progress comes from focus and collaboration.",
            "This is a good example of that in practice.",
        ),
        (
            "{Team} has invested real time and care in getting this right.",
            "We are proud of the result.",
        ),
        (
            "It reflects our commitment to quality, transparency and long-term value.",
            "We look forward to building on it.",
        ),
        (
            "Moments like this remind us why we do what we do.",
            "Thank you to everyone who made it possible.",
        ),
        (
            "There is a lot to learn here for teams of every size.",
            "We are excited about what comes next.",
        ),
    ),
    "inspiring": (
        (
            "It's proof that passion and persistence pay off.",
            "{We} are grateful for every step of the way.",
        ),
        (
            "Behind it are people who chose to show up and give their best.",
            "That's what inspires {team}.",
        ),
        ("Progress isn't always loud, but it's always worth it.", "Keep going."),
        ("{We} hope it sparks something in you too.", "Great things are ahead."),
        (
            "It's a reminder that small steps add up to big change.",
            "Let's keep moving forward together.",
        ),
    ),
    "urgent": (
        ("This won't be around for long, so now is the time.", "{We} don't want you to miss it."),
        ("Interest is high and time is short.", "Make sure you're in."),
        ("Mark your calendar and set a reminder.", "You'll be glad you did."),
        ("Once it's gone, it's gone.", "Don't wait until tomorrow."),
        ("{Team} is ready for you right now.", "Come and see what the buzz is about."),
    ),
}

_CTAS: dict[str, tuple[str, ...]] = {
    "friendly": (
        "What do you think? Tell us in the comments!",
        "Share this with someone who'd love it.",
        "Hit like if you're with us!",
        "Tag a friend who needs to see this.",
        "How does this make you feel? Let us know below.",
        "Follow us so you don't miss what's next.",
    ),
    "playful": (
        "Tag your partner in crime!",
        "Tell us your favourite part in the comments!",
        "Give this a like if you agree!",
        "Who's in? Drop a comment!",
        "Share this with your most fun friend.",
        "Save this for later (you'll thank us).",
    ),
    "professional": (
        "What is your perspective? Share it in the comments.",
        "We would love to hear how your organisation approaches this.",
        "Follow our page for more updates.",
        "Feel free to reach out if you would like to learn more.",
        "Agree or disagree? Let's discuss.",
        "Share this with a colleague who would find it useful.",
    ),
    "inspiring": (
        "What inspires you today? Share it below.",
        "Pass this on to someone who needs a little motivation.",
        "Let's make it count, together.",
        "Tell us what keeps you going.",
        "Share your story in the comments.",
        "Follow along for more moments like this.",
    ),
    "urgent": (
        "Act now before it's too late!",
        "Don't wait, join in today!",
        "Share this with someone who can't miss it!",
        "Get in touch today!",
        "Set a reminder now!",
        "Be quick, and tell your friends!",
    ),
}

_AUDIENCE_LINES: dict[str, str] = {
    "friendly": "Especially for {audience}: this one's for you!",
    "playful": "Calling all {audience}!",
    "professional": "Particularly relevant for {audience}.",
    "inspiring": "To all {audience}: this is for you.",
    "urgent": "{Audience}, don't miss this!",
}

_BULLETS: dict[str, str] = {
    "facebook": "\u2022 ",
    "instagram": "\u2728 ",
    "linkedin": "\u2192 ",
    "mastodon": "- ",
}


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


@dataclass(frozen=True)
class _Segment:
    text: str
    drop_order: int  # 0 = never dropped; higher numbers are dropped first


def _render(paragraphs: list[list[_Segment]], bullets: str | None) -> str:
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


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


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
    clean_topic = _cap_topic(topic)
    ctx = _parse_context(context)
    tone = ctx.tone or rule.default_tone

    seed = hashlib.sha256(
        "\x1f".join((name, clean_topic, _clean_line(context or ""))).encode(
            "utf-8", "surrogatepass"
        )
    ).digest()
    opener_t = _OPENERS[tone][_pick(seed, 0, version, 7)]
    body_t = _BODIES[tone][_pick(seed, 1, version, 5)]
    cta_t = _CTAS[tone][_pick(seed, 2, version, 6)]
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
        emoji_level = min(emoji_level, 1 if rule.name == "instagram" else 0)
    emoji = _topic_emoji(clean_topic)

    opener = fill(opener_t)
    if emoji_level >= 1:
        opener = f"{opener} {emoji}" if structure == 0 or emoji_level == 1 else f"{emoji} {opener}"
    body = [fill(s) for s in body_t]
    if rule.name == "linkedin":
        # LinkedIn rewards a little more substance: add a second, different paragraph.
        body += [fill(s) for s in _BODIES[tone][(_pick(seed, 1, version, 5) + 2) % 5]]
    if emoji_level >= 2:
        body[-1] = f"{body[-1]} \U0001f4ab"
    cta = fill(cta_t)
    if emoji_level >= 2:
        cta = f"{cta} \U0001f447"
    audience_line = fill(_AUDIENCE_LINES[tone]) if ctx.audience else ""

    hashtags = _hashtags(clean_topic, rule, tone, brand, tag_count)
    short = rule.name in {"x", "threads"}
    paragraphs: list[list[_Segment]]
    if short:
        main = [_Segment(opener, 0), _Segment(body[0], 4)]
        if rule.name == "threads":
            main.append(_Segment(body[1], 5))
        main += [_Segment(audience_line, 3), _Segment(cta, 2)]
        if structure == 1:
            main.insert(1, main.pop(-1))  # call to action right after the opening
        paragraphs = [main]
        bullets = None
    else:
        head = [_Segment(opener, 0)]
        middle = [_Segment(s, 4 + i) for i, s in enumerate(body)] + [_Segment(audience_line, 3)]
        tail = [_Segment(cta, 2)]
        if structure == 1 and rule.name in _BULLETS:
            bullets = _BULLETS[rule.name]
            paragraphs = [head, middle, tail]
        else:
            bullets = None
            paragraphs = [head, middle, tail]
    text, hashtags = _fit(paragraphs, bullets, brand, hashtags, rule)
    return Draft(platform=name, topic=clean_topic, text=text, hashtags=hashtags, version=version)


def _fit(
    paragraphs: list[list[_Segment]],
    bullets: str | None,
    brand: str | None,
    hashtags: tuple[str, ...],
    rule: PlatformRule,
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
        return measure(rule.name, text)

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
            paragraphs[pi][si] = _Segment("", 0)
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
            cut = _truncate(body, room, count)
            return (cut + tail if cut else tail.strip()), tg
    raise AssertionError("unreachable")  # pragma: no cover


def describe_capabilities() -> str:
    """The assistant's answer to "help", greetings and messages it could not act on."""
    names = ", ".join(r.display_name for r in PLATFORM_RULES.values() if r.name != "x")
    return (
        "I'm the Chatkeep post assistant. I write social-media posts for "
        f"{names} and X (Twitter), and can add a matching image card.\n\n"
        "Try for example:\n"
        '\u2022 "Create a Facebook post about Diwali with image"\n'
        '\u2022 "Write a LinkedIn post announcing our new office"\n'
        '\u2022 "Tweet about our summer sale"\n\n'
        'After each draft, reply "yes" to publish it, "regenerate" for a different version, '
        'or "cancel" to discard it. Later you can say "regenerate the previous post" '
        "for a fresh take on an earlier request."
    )
