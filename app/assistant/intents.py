"""Intent recognition for the built-in Chatkeep assistant.

Pure and deterministic: no database, no network, no model.  ``classify`` turns
one chat message (plus two facts about the conversation state) into an
:class:`Intent`.

Precedence, from strongest to weakest:

1. a clear request to create a post *with a topic* (wins over yes/no words
   in the same message, e.g. "no, write a LinkedIn post about X instead");
2. a request to regenerate / write another version;
3. a request to create a post without a topic -> UNCLEAR ("what about?");
4. publish / cancel words (both at once -> UNCLEAR);
5. help, then small talk;
6. anything else -> UNCLEAR with a clarification question.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from app.assistant.platforms import (
    PLATFORM_ALIASES,
    PLATFORMS,
    canonical_platform,
    name_pattern,
    verb_pattern,
)
from app.assistant.replies import (
    ASK_CONFIRM,
    ASK_CONFLICT,
    ASK_GENERIC,
    ASK_PENDING,
    NOTHING_TO_PUBLISH,
    NOTHING_TO_REGENERATE,
    ask_topic,
)
from app.core.text import grapheme_floor

__all__ = [
    # The platform vocabulary lives in `platforms`; these stay importable from here.
    "PLATFORMS",
    "PLATFORM_ALIASES",
    "Intent",
    "IntentKind",
    "canonical_platform",
    "classify",
]


class IntentKind(StrEnum):
    CREATE_POST = "create_post"
    PUBLISH = "publish"
    CANCEL = "cancel"
    REGENERATE = "regenerate"
    HELP = "help"
    SMALLTALK = "smalltalk"
    QUESTION = "question"  # a question that is not about posts: the built-in can't answer it
    UNCLEAR = "unclear"


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    platform: str | None = None
    topic: str | None = None
    with_image: bool = False
    confidence: float = 1.0
    clarification: str | None = None
    # Mostly in a script the rules don't read (Hindi, Arabic, Chinese, ...).
    offline_language: bool = False


# ---------------------------------------------------------------------------
# Text normalisation
# ---------------------------------------------------------------------------

# A few emoji carry meaning in a chat reply; everything else pictographic is dropped.
_EMOJI_WORDS: dict[str, str] = {
    "\N{THUMBS UP SIGN}": "yes",
    "\N{OK HAND SIGN}": "ok",
    "\N{WHITE HEAVY CHECK MARK}": "yes",
    "\N{HEAVY CHECK MARK}": "yes",
    "\N{THUMBS DOWN SIGN}": "no",
    "\N{CROSS MARK}": "no",
    "\N{NO ENTRY SIGN}": "no",
    "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}": "regenerate",
    "\N{CLOCKWISE RIGHTWARDS AND LEFTWARDS OPEN CIRCLE ARROWS}": "regenerate",
    "\N{WAVING HAND SIGN}": "hi",
    "\N{PERSON WITH FOLDED HANDS}": "thanks",
}

_DROP_CATEGORIES = frozenset({"So", "Sk", "Cs", "Co", "Cn", "Cc", "Cf"})
_KEEP_FORMAT = frozenset({"\u200c", "\u200d"})  # ZWNJ / ZWJ matter inside Indic words
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})


def _clean(text: str) -> str:
    """Case-preserving cleanup: drop emoji/control characters, collapse whitespace.

    Not `app.core.text.one_line`: it also drops symbols, and keeps a ZWJ / ZWNJ after a
    tab or a newline (one_line would make that a space, after which the joiner goes)."""
    text = unicodedata.normalize("NFC", text).translate(_QUOTES)
    out: list[str] = []
    prev_dropped = True
    for ch in text:
        word = _EMOJI_WORDS.get(ch)
        if word is not None:
            out.append(f" {word} ")
            prev_dropped = True
            continue
        if ch in "\t\n\r\v\f":
            out.append(" ")
            prev_dropped = False
            continue
        cat = unicodedata.category(ch)
        if "\ufe00" <= ch <= "\ufe0f" or ch == "\u20e3":
            prev_dropped = True
            continue
        if ch in _KEEP_FORMAT:
            if not prev_dropped:
                out.append(ch)
            continue
        if cat in _DROP_CATEGORIES:
            out.append(" ")
            prev_dropped = True
            continue
        out.append(ch)
        prev_dropped = ch.isspace()
    cleaned = "".join(out)
    # A joiner left next to a removed emoji or a space is noise.
    cleaned = re.sub(r"[\u200c\u200d]+(?=\s|$)", "", cleaned)
    return re.sub(r"\s+", " ", cleaned).strip()


def _norm(cleaned: str) -> str:
    """Lower-case word form used for keyword matching."""
    low = cleaned.lower().replace("w/o", " without ").replace("w/", " with ")
    low = re.sub(r"[^\w']+", " ", low)
    low = re.sub(r"(?<!\w)'|'(?!\w)", " ", low)
    low = re.sub(
        r"\b(do|does|is|are|was|were|should|would|could|can|will|wo|have|has)n t\b", r"\1n't", low
    )
    low = re.sub(r"\b(dont|doesnt|shouldnt|wont|cant)\b", lambda m: m.group(1)[:-2] + "n't", low)
    return re.sub(r"\s+", " ", low).strip()


def _has(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


# ---------------------------------------------------------------------------
# Platform and image detection
# ---------------------------------------------------------------------------

_PLAT = name_pattern()
_PLAT_END = r"(?![\w'-])"
_PLAT_CHAIN = rf"(?:\s*(?:,|/|&|\+|\band\b|\bor\b)\s*(?:on\s+|for\s+)?{_PLAT}{_PLAT_END})*"
_PLATFORM_CONTEXT = re.compile(
    rf"(?<![\w-])(?:on|for|to|in|via|onto|at)\s+(?:my\s+|our\s+|the\s+|your\s+)?"
    rf"(?P<p>{_PLAT}){_PLAT_END}"
    r"(?:\s+(?:page|account|feed|profile|audience|followers))?"
    rf"{_PLAT_CHAIN}",
    re.IGNORECASE,
)
_POSTISH = (
    r"(?:posts?|updates?|captions?|status|stor(?:y|ies)|reels?|carousels?|threads?|content|copy"
    r"|messages?|ads?|text|page|blurbs?|announcements?)\b"
)
_PLATFORM_BEFORE_NOUN = re.compile(
    rf"(?<![\w-])(?P<p>{_PLAT})(?:\s*/\s*{_PLAT})?{_PLAT_END}(?=\s*-?\s*{_POSTISH})",
    re.IGNORECASE,
)
_PLATFORM_VERB = re.compile(rf"\b(?P<p>{verb_pattern()})(?:s|ed|ing)?\b", re.IGNORECASE)

_IMG = (
    r"(?:images?|pictures?|pics?|photos?|photographs?|visuals?|graphics?|illustrations?"
    r"|artwork|banners?|thumbnails?)"
)
_IMG_MOD = (
    r"(?:(?:an?|some|one|the|matching|relevant|nice|cool|good|great|beautiful|pretty|festive"
    r"|fitting|suitable|catchy|generated|ai|custom|eye-catching|simple|small|bright|colou?rful)\s+){0,3}"
)
_NO_IMAGE = re.compile(
    rf"[,;]?\s*(?:\b(?:without|no|minus)\s+(?:an?\s+|any\s+)?{_IMG}\b|\bw/o\s+(?:an?\s+)?{_IMG}\b"
    r"|\btext[\s-]only\b|\bjust\s+text\b)",
    re.IGNORECASE,
)
_WITH_IMAGE = re.compile(
    rf"[,;]?\s*(?:(?:\b(?:with|plus|and|including|include|incl|add|adding|attach|attaching|featuring)"
    rf"|\bw/|\balong\s+with)\s+(?:also\s+)?(?:(?:create|make|generate|add|include|attach)\s+)?"
    rf"{_IMG_MOD}(?:[\w-]+\s+)?{_IMG}\b(?:\s+(?:too|as\s+well|also|for\s+it|to\s+go\s+with\s+it))?)",
    re.IGNORECASE,
)
_IMAGE_BEFORE_NOUN = re.compile(rf"\b{_IMG}(?=\s+(?:posts?|tweets?|updates?)\b)", re.IGNORECASE)


def _extract_platform(work: str) -> tuple[str | None, str]:
    """Return (canonical platform or None, text with platform phrases removed)."""
    found: list[tuple[int, str]] = []
    for m in _PLATFORM_CONTEXT.finditer(work):
        found.append((m.start(), m.group("p")))
    for m in _PLATFORM_BEFORE_NOUN.finditer(work):
        found.append((m.start(), m.group("p")))
    for m in _PLATFORM_VERB.finditer(work):
        found.append((m.start(), m.group("p")))
    platform: str | None = None
    if found:
        found.sort(key=lambda item: item[0])
        platform = canonical_platform(re.sub(r"\s+", " ", found[0][1]))
    work = _PLATFORM_CONTEXT.sub(" ", work)
    work = _PLATFORM_BEFORE_NOUN.sub(" ", work)
    return platform, re.sub(r"\s+", " ", work).strip()


def _extract_image(work: str) -> tuple[bool, str]:
    """Return (with_image, text with the image phrase removed)."""
    if _NO_IMAGE.search(work):
        return False, re.sub(r"\s+", " ", _NO_IMAGE.sub(" ", work)).strip()
    with_image = False
    if _WITH_IMAGE.search(work):
        with_image = True
        work = _WITH_IMAGE.sub(" ", work)
    if _IMAGE_BEFORE_NOUN.search(work):
        with_image = True
        work = _IMAGE_BEFORE_NOUN.sub(" ", work)
    return with_image, re.sub(r"\s+", " ", work).strip()


# ---------------------------------------------------------------------------
# Create-post detection and topic extraction
# ---------------------------------------------------------------------------

_NEG = r"(?<!n't )(?<!not )(?<!never )(?<!no )(?<!stop )"
_CREATE_VERB = (
    _NEG + r"\b(?:create|write|draft|make|compose|generate|prepare|craft|produce|put\s+together"
    r"|whip\s+up|come\s+up\s+with|do|need|want|give\s+me|get\s+me|can\s+i\s+(?:get|have)"
    r"|i'd\s+like|i\s+would\s+like|let's\s+(?:do|write|make|create))\b"
)
_POST_NOUN = (
    r"(?<!\bto )\b(?:posts?|tweets?|toots?|captions?|updates?|status(?:es)?|announcements?"
    r"|stor(?:y|ies)|reels?|threads?|content|copy|blurbs?|something|anything|text|drafts?)\b"
    r"(?!\s+(?:it|this|that|now|them|away)\b)"
)
_CREATE_VERB_RE = re.compile(_CREATE_VERB, re.IGNORECASE)
_POST_NOUN_RE = re.compile(_POST_NOUN, re.IGNORECASE)

_ANNOUNCE = (
    r"(?:announcing|celebrating|promoting|highlighting|introducing|launching|showcasing|featuring"
    r"|sharing|advertising|marketing|saying|(?:to|that)\s+(?:announces?|celebrates?|promotes?"
    r"|highlights?|introduces?|launch(?:es)?|showcases?|shares?|advertises?|marks?|says?))"
)
_GREET_FAMILY = (
    r"(?:thanking|congratulating|wishing|welcoming|inviting|(?:to|that)\s+(?:thanks?|congratulates?"
    r"|wish(?:es)?|welcomes?|invites?))"
)
_ABOUT = (
    r"(?:about|regarding|concerning|re:|on\s+the\s+(?:topic|subject|theme)\s+of|covering"
    r"|talking\s+about|focused\s+on|focusing\s+on|centered\s+on|themed\s+(?:around|on))"
)

_TOPIC_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"\b(?:posts?|tweets?|toots?|captions?|updates?|something|content|text|copy)\s*[:\u2013\u2014]\s*(?P<t>.+)$",
        re.IGNORECASE,
    ),
    re.compile(rf"\b{_ABOUT}\s+(?P<t>.+)$", re.IGNORECASE),
    re.compile(rf"\b{_ANNOUNCE}\s+(?P<t>.+)$", re.IGNORECASE),
    re.compile(rf"\b(?P<t>{_GREET_FAMILY}\s+.+)$", re.IGNORECASE),
)
_ON_FOR = (
    re.compile(r"\bon\s+(?P<t>.+)$", re.IGNORECASE),
    re.compile(r"\bfor\s+(?P<t>.+)$", re.IGNORECASE),
)
_BEFORE_NOUN = re.compile(
    _CREATE_VERB + r"\s+(?:me\s+|us\s+)?(?:(?:a|an|the|some|one|my|our)\s+)?(?P<t>.+?)\s+"
    r"(?:posts?|tweets?|toots?|captions?|updates?|announcements?|stor(?:y|ies)|reels?|threads?)\b",
    re.IGNORECASE,
)

_ADJECTIVES_WORDS = """
    new short quick fun funny long good great nice social media cool simple brief small
    another different professional playful casual formal catchy engaging creative little
    single sweet witty friendly warm serious punchy viral trendy fresh detailed longer
    shorter big
"""
_ADJECTIVES = frozenset(_ADJECTIVES_WORDS.split())
_PRONOUN_TOPICS = frozenset(
    {
        "it",
        "this",
        "that",
        "them",
        "me",
        "us",
        "you",
        "something",
        "anything",
        "the same",
        "the same thing",
        "the same topic",
        "the previous one",
        "the last one",
        "the previous post",
        "the last post",
    }
)
_PRONOUN_WORDS_TEXT = """
    it this that them me us you him her something anything same again one previous last
"""
_PRONOUN_WORDS = frozenset(_PRONOUN_WORDS_TEXT.split())
_TRAILING_FILLER = re.compile(
    r"(?:[\s,;]+(?:please|pls|plz|thanks|thank\s+you|thx|for\s+me|for\s+us|now|asap|right\s+now"
    r"|too|as\s+well|also|ok|okay|post|instead|if\s+you\s+can|if\s+possible))+$",
    re.IGNORECASE,
)
_TONE_TAIL = re.compile(
    r"(?:[,;]\s*|\s+)(?:and\s+)?(?:please\s+)?(?:(?:make|keep)\s+it\b|(?:in|with|using)\s+(?:an?\s+)?"
    r"(?:[\w-]+\s+){0,2}(?:tone|voice|style)\b).*$",
    re.IGNORECASE,
)
_MAX_TOPIC = 200


def _tidy_topic(raw: str) -> str | None:
    topic = raw.strip()
    # Keep only the first sentence ("Diwali. Make it fun!" -> "Diwali").
    topic = re.split(r"(?<=[^\s.])[.!?]+\s+(?=\S)|\n", topic, maxsplit=1)[0]
    topic = _TONE_TAIL.sub("", topic)
    for _ in range(3):
        topic = topic.strip(" \t,;:-\u2013\u2014.!?\u2026")
        topic = _TRAILING_FILLER.sub("", topic)
        topic = re.sub(r"\s+(?:on|for|to|in|and|with|a|an|the)$", "", topic, flags=re.IGNORECASE)
    topic = re.sub(r"^(?:an?|please)\s+", "", topic, flags=re.IGNORECASE)
    if len(topic) >= 2 and topic[0] == topic[-1] and topic[0] in "\"'`":
        topic = topic[1:-1].strip()
    topic = topic.strip(" \t,;:-\u2013\u2014.!?\u2026\"'`")
    if not topic:
        return None
    if topic.casefold() in _PRONOUN_TOPICS or all(
        w in _PRONOUN_WORDS or w in {"the", "a", "an", "post", "same"} for w in _norm(topic).split()
    ):
        return None
    if len(topic) > _MAX_TOPIC:
        cut = topic[: grapheme_floor(topic, _MAX_TOPIC)]
        space = cut.rfind(" ")
        topic = (cut[:space] if space > _MAX_TOPIC // 2 else cut).rstrip(" ,;:-")
    return topic


def _extract_topic(work: str, anchor: int) -> str | None:
    """Find the topic in ``work`` (platform and image phrases already removed)."""
    for pattern in _TOPIC_PATTERNS:
        m = pattern.search(work)
        if m:
            topic = _tidy_topic(m.group("t"))
            if topic:
                return topic
    tail = work[anchor:]
    for pattern in _ON_FOR:
        m = pattern.search(tail)
        if m:
            topic = _tidy_topic(m.group("t"))
            if topic:
                return topic
    m = _BEFORE_NOUN.search(work)
    if m:
        words = m.group("t").split()
        while words and words[0].lower() in _ADJECTIVES:
            words.pop(0)
        if words and not any(w.lower() in {"a", "an", "the"} for w in words):
            return _tidy_topic(" ".join(words))
    return None


@dataclass(frozen=True)
class _CreateParse:
    detected: bool
    platform: str | None
    topic: str | None
    with_image: bool


def _parse_create(cleaned: str) -> _CreateParse:
    with_image, work = _extract_image(cleaned)
    platform, work = _extract_platform(work)
    verb = _CREATE_VERB_RE.search(work)
    noun = _POST_NOUN_RE.search(work, verb.end()) if verb else None
    detected = False
    anchor = 0
    if verb and (noun or platform is not None):
        detected = True
        anchor = noun.end() if noun else verb.end()
    elif (noun := _POST_NOUN_RE.search(work)) and re.match(
        rf"\s*(?::|\u2013|\u2014|{_ABOUT}\b|{_ANNOUNCE}\b|{_GREET_FAMILY}\b|on\b|for\b)",
        work[noun.end() :],
        re.IGNORECASE,
    ):
        detected = True
        anchor = noun.end()
    elif _PLATFORM_VERB.search(work) and re.search(
        rf"\b{verb_pattern()}s?\s+{_ABOUT}\b", work, re.IGNORECASE
    ):
        detected = True
    elif re.match(rf"\s*{_ABOUT}\s+\S", work, re.IGNORECASE):
        # A bare "about Diwali" (typically the answer to "what should it be about?").
        detected = True
    if not detected:
        return _CreateParse(False, platform, None, with_image)
    return _CreateParse(True, platform, _extract_topic(work, anchor), with_image)


# ---------------------------------------------------------------------------
# Keyword families (matched against the lower-case word form)
# ---------------------------------------------------------------------------

_REGENERATE = (
    r"\bre ?gen(?:erate|erated|erating)?\b",
    r"\bre ?roll\b",
    r"\bredo\b",
    r"\bre ?write\b",
    r"\bre ?phrase\b",
    r"\bre ?word\b",
    r"\bre ?draft\b",
    r"\btry (?:it |that |this |one more time )?again\b",
    r"\btry another\b",
    r"\b(?:another|different|new|alternative|alternate|fresh|second|other) "
    r"(?:version|one|take|draft|variant|variation|option|attempt|try|wording|spin)s?\b",
    r"\banother (?:post|tweet|toot|caption)\b",
    r"^(?:another|again|one more|once more)(?: one| please| pls)?$",
    r"\bone more (?:time|version|try|please)\b",
    r"\bsomething (?:else|different)\b",
    r"\b(?:write|make|do|generate|create|draft|compose) (?:\w+ ){0,3}again\b",
    r"\bdo (?:it|that|this) over\b",
    r"\bmake (?:it|this|that|the post) (?:a (?:bit|little) )?"
    r"(?:more|less|shorter|longer|funnier|punchier|simpler|better|catchier|snappier|warmer|friendlier|different)\b",
    r"^(?:shorter|longer|funnier|more formal|more casual|more fun)(?: please)?$",
    r"\bnot (?:quite )?(?:right|good enough)\b.*\b(?:again|another|different)\b",
)
_NOT_REGENERATE = (
    r"\b(?:don't|do not|no need to|never|not) (?:regenerate|redo|rewrite|try again|write another)\b"
)

_CANCEL = (
    r"\b(?:don't|do not|never|not|no need to|shouldn't|won't) "
    r"(?:post|publish|send|share|ship|put)\b"
    r"(?: (?:it|this|that|them))?",
    r"\b(?:don't|do not|didn't|no longer) (?:want|wanna|need|like) (?:to )?"
    r"(?:post|publish|share|it|this)\b"
    r"(?: (?:it|this|that|them))?",
    r"\b(?:don't|do not) (?:make|write|create|bother)\b",
    r"\bcancel(?:led|ed|ing)?\b",
    r"\babort\b",
    r"\bdiscard\b",
    r"\bdelete(?: it| this| that| the draft)?\b",
    r"\bscrap(?: it| this| that)?\b",
    r"\bdrop it\b",
    r"\btrash(?: it)?\b",
    r"\bthrow (?:it|this|that) (?:away|out)\b",
    r"\bdismiss\b",
    r"\bnever ?mind\b",
    r"\bnvm\b",
    r"\bforget (?:it|that|this|about it)\b",
    r"\bno thanks?\b",
    r"\bno thank you\b",
    r"\bnot now\b",
    r"\bnot interested\b",
    r"\bhold off\b",
    r"^stop\b",
    r"\bskip(?: it| this)?$",
    r"\bno+\b",
    r"\bnope\b",
    r"\bnah\b",
    r"\bnay\b",
)
_NOT_CANCEL = r"\bno (?:problem|worries|prob|biggie|doubt)\b|\bno one\b"

_PUBLISH_STRONG = (
    r"\byes+\b",
    r"\byep\b",
    r"\byeah\b",
    r"\byup\b",
    r"\bya\b",
    r"\byas\b",
    r"^y$",
    r"\baffirmative\b",
    r"\babsolutely\b",
    r"\bdefinitely\b",
    r"\bof course\b",
    r"\bpublish(?:ed|ing)?\b",
    r"\bpost (?:it|this|that|them|now|away|the draft|the post)\b",
    r"\bgo ahead\b",
    r"\bgo for it\b",
    r"\bship it\b",
    r"\bsend it\b",
    r"\bshare it\b",
    r"\bput it (?:out|up|live)\b",
    r"\bmake it live\b",
    r"\bdo it\b",
    r"\blet's do (?:it|this)\b",
    r"\blet's go\b",
    r"\blgtm\b",
    r"\blooks good\b",
    r"\bsounds good\b",
    r"\bapprove[ds]?\b",
    r"\bconfirm(?:ed)?\b",
)
_PUBLISH_WEAK = (
    r"^(?:ok|okay|k|kk|sure|alright|all right|fine|ok then|sure thing|okey)(?: please)?$",
)
_PRAISE = (
    r"^(?:great|perfect|nice|awesome|amazing|love it|i love it|love this|i like it|i like this"
    r"|good|very good|wonderful|excellent|brilliant|fantastic|cool|neat|beautiful|wow|so good)"
    r"(?: thanks?| thank you)?$",
)
_HELP = (
    r"^(?:help|help me|help please|please help|commands|menu|options|usage|instructions|info|h)$",
    r"\bwhat (?:can|do|else can|could) you (?:do|help with|help me with|offer)\b",
    r"\bwhat (?:are|is) (?:you|this|your (?:features|capabilities|commands|options))\b",
    r"\bhow (?:does (?:this|it|that) work|do (?:i|you) use|can you help|do i start"
    r"|do i get started|to use)\b",
    r"\bwho are you\b",
    r"\bwhat should i (?:say|type|ask)\b",
    r"\b(?:help|capabilities|features)\b",
)
_SMALLTALK = (
    r"\b(?:hi|hii+|hello|hey|heya|hiya|howdy|yo|hola|namaste|greetings|sup)\b",
    r"\bgood (?:morning|afternoon|evening|night|day)\b",
    r"\b(?:thanks|thank you|thx|ty|cheers|appreciate it|much appreciated)\b",
    r"\bhow are you\b",
    r"\bhow's it going\b",
    r"\bwhat's up\b",
    r"\b(?:bye|goodbye|see you|see ya|later|good night)\b",
    r"\bno (?:problem|worries)\b",
    r"^(?:lol|haha+|hehe+|cool|nice|great|awesome|ok cool|wow|ok thanks)$",
)


def _any(patterns: tuple[str, ...], text: str) -> bool:
    return any(re.search(p, text) for p in patterns)


def _strip_matches(patterns: tuple[str, ...], text: str) -> str:
    for p in patterns:
        text = re.sub(p, " ", text)
    return re.sub(r"\s+", " ", text).strip()


_QUESTION_MARKS = ("?", "\uff1f", "\u061f", "\u00bf")
_QUESTION_WORDS = re.compile(
    r"(?:what|what's|whats|when|where|who|whom|whose|why|how|which|is|are|was|were|do|does|"
    r"did|can|could|would|will|should|shall|may|tell me|explain)\b"
)


def _looks_like_question(cleaned: str, norm: str) -> bool:
    return cleaned.rstrip().endswith(_QUESTION_MARKS) or _QUESTION_WORDS.match(norm) is not None


def _mostly_other_script(cleaned: str) -> bool:
    """More letters outside Latin than in it: the English rules can't have understood it."""
    letters = [ch for ch in cleaned if ch.isalpha()]
    if not letters:
        return False
    latin = sum(1 for ch in letters if "LATIN" in unicodedata.name(ch, ""))
    return latin * 2 < len(letters)


# ---------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------


def classify(text: str, *, has_pending_draft: bool, has_any_draft: bool) -> Intent:
    """Classify one user chat message.

    ``has_pending_draft``: a draft is waiting for "post / regenerate / cancel".
    ``has_any_draft``: at least one earlier draft exists (published or not), so
    "regenerate the previous post" has something to work from.
    """
    has_any_draft = has_any_draft or has_pending_draft
    cleaned = _clean(text or "")
    norm = _norm(cleaned)

    if not norm:
        if re.fullmatch(r"[?\s\uff1f\u00bf]+", cleaned or "-"):
            return Intent(IntentKind.HELP, confidence=0.6)
        if text and text.strip():
            # Only emoji / symbols: treat it as a friendly reaction.
            return Intent(IntentKind.SMALLTALK, confidence=0.5)
        return Intent(
            IntentKind.UNCLEAR,
            confidence=0.0,
            clarification=ASK_PENDING if has_pending_draft else ASK_GENERIC,
        )

    create = _parse_create(cleaned)
    regenerate = _any(_REGENERATE, norm) and not _has(_NOT_REGENERATE, norm)

    # 1. A clear new request with a topic wins over everything else.
    if create.detected and create.topic:
        return Intent(
            IntentKind.CREATE_POST,
            platform=create.platform,
            topic=create.topic,
            with_image=create.with_image,
            confidence=0.95 if create.platform else 0.9,
        )

    # 2. Regenerate / another version.
    if regenerate:
        if not has_any_draft:
            return Intent(
                IntentKind.UNCLEAR,
                platform=create.platform,
                with_image=create.with_image,
                confidence=0.4,
                clarification=NOTHING_TO_REGENERATE,
            )
        return Intent(
            IntentKind.REGENERATE,
            platform=create.platform,
            with_image=create.with_image,
            confidence=0.9,
        )

    # 3. "Write a LinkedIn post" without saying what about.
    if create.detected:
        return Intent(
            IntentKind.UNCLEAR,
            platform=create.platform,
            with_image=create.with_image,
            confidence=0.5,
            clarification=ask_topic(create.platform),
        )

    # 4. Publish / cancel.
    cancel_text = re.sub(_NOT_CANCEL, " ", norm)
    wants_cancel = _any(_CANCEL, cancel_text)
    rest = _strip_matches(_CANCEL[:3], norm)  # "don't post it" must not count as "post it"
    wants_publish = _any(_PUBLISH_STRONG, rest)
    weak_publish = _any(_PUBLISH_WEAK, rest)
    bare_post = re.fullmatch(r"(?:please )?post(?: please| now)?", rest) is not None

    if wants_cancel and (wants_publish or weak_publish):
        return Intent(
            IntentKind.UNCLEAR,
            confidence=0.3,
            clarification=ASK_CONFLICT if has_pending_draft else NOTHING_TO_PUBLISH,
        )
    if wants_cancel:
        return Intent(IntentKind.CANCEL, confidence=0.9 if has_pending_draft else 0.7)
    if bare_post and not has_pending_draft:
        return Intent(IntentKind.UNCLEAR, confidence=0.3, clarification=ask_topic(None))
    if wants_publish or bare_post:
        if has_pending_draft:
            return Intent(IntentKind.PUBLISH, platform=create.platform, confidence=0.9)
        return Intent(IntentKind.UNCLEAR, confidence=0.4, clarification=NOTHING_TO_PUBLISH)
    if weak_publish and has_pending_draft:
        return Intent(IntentKind.PUBLISH, confidence=0.7)
    if has_pending_draft and _any(_PRAISE, norm):
        return Intent(IntentKind.UNCLEAR, confidence=0.5, clarification=ASK_CONFIRM)

    # 5. Help and small talk.
    if _any(_HELP, norm):
        return Intent(IntentKind.HELP, confidence=0.9)
    if weak_publish or _any(_SMALLTALK, norm) or _any(_PRAISE, norm):
        return Intent(IntentKind.SMALLTALK, confidence=0.8)

    # 6. A question about something else, or a language the rules don't read.
    if _looks_like_question(cleaned, norm):
        return Intent(IntentKind.QUESTION, confidence=0.6)

    # 7. Anything else.
    if re.fullmatch(r"(?:a |an |the )?(?:posts?|tweets?|drafts?)", norm):
        return Intent(
            IntentKind.UNCLEAR,
            confidence=0.3,
            clarification=ASK_PENDING if has_pending_draft else ask_topic(create.platform),
        )
    return Intent(
        IntentKind.UNCLEAR,
        platform=create.platform,
        confidence=0.2,
        clarification=ASK_PENDING if has_pending_draft else ASK_GENERIC,
        offline_language=_mostly_other_script(cleaned),
    )
