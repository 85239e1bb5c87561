"""What the composer knows of common topics: their hashtags and their emoji.

Plus the hashtags every platform and every tone falls back on, and how a hashtag is made
from the words of a topic or a brand.
"""

from __future__ import annotations

import re
import unicodedata

from app.assistant.platforms import Platform
from app.core.text import grapheme_floor

__all__ = ["choose_hashtags", "topic_emoji"]


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
        body = body[: grapheme_floor(body, _MAX_TAG_CHARS)]
    return "#" + body if body else None


def _topic_words(topic: str) -> list[str]:
    words = re.split(r"[\s\-/&+,;:.!?\"'()\[\]{}]+", topic)
    return [w for w in words if w and w.casefold() not in _TAG_STOPWORDS and _tag_word(w)]


def choose_hashtags(
    topic: str, rule: Platform, tone: str, brand: str | None, count: int
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
    candidates.extend("#" + t for t in _GENERIC_TAGS[rule.id])
    seen: set[str] = set()
    unique: list[str] = []
    for tag in candidates:
        key = tag.casefold()
        if key not in seen:
            seen.add(key)
            unique.append(tag)
    return tuple(unique[:count])


def topic_emoji(topic: str) -> str:
    for pattern, _tags, emoji in _COMPILED_TABLE:
        if pattern.search(topic):
            return emoji
    return "\u2728"
