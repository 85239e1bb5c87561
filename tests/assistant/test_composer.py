"""Post composition: determinism, versions, limits, context, hashtags, Unicode."""

from __future__ import annotations

import re
import unicodedata

import pytest

from app.assistant.composer import (
    MAX_TOPIC_CHARS,
    PLATFORM_RULES,
    Draft,
    compose_post,
    describe_capabilities,
    measure,
)
from app.assistant.fitting import truncate
from app.core.text import graphemes

PLATFORMS = sorted(PLATFORM_RULES)
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")


def draft(
    platform: str | None = "facebook",
    topic: str = "Diwali",
    context: str | None = None,
    version: int = 1,
) -> Draft:
    return compose_post(platform=platform, topic=topic, context=context, version=version)


def test_platform_rules_table() -> None:
    assert set(PLATFORM_RULES) == {"facebook", "instagram", "linkedin", "x", "threads", "mastodon"}
    limits = {name: rule.max_chars for name, rule in PLATFORM_RULES.items()}
    assert limits == {
        "x": 280,
        "threads": 500,
        "mastodon": 500,
        "instagram": 2200,
        "linkedin": 3000,
        "facebook": 63206,
    }
    assert PLATFORM_RULES["linkedin"].min_hashtags == 3
    assert PLATFORM_RULES["linkedin"].max_hashtags == 5
    assert PLATFORM_RULES["x"].max_hashtags <= 2
    assert PLATFORM_RULES["instagram"].max_hashtags > PLATFORM_RULES["facebook"].max_hashtags
    for rule in PLATFORM_RULES.values():
        assert rule.target_chars <= rule.max_chars
        assert 0 <= rule.min_hashtags <= rule.max_hashtags


@pytest.mark.parametrize("platform", PLATFORMS)
def test_same_inputs_same_text(platform: str) -> None:
    a = draft(platform, "Diwali", "We are Acme Bakery, playful tone", 3)
    b = draft(platform, "Diwali", "We are Acme Bakery, playful tone", 3)
    assert a == b
    assert a.platform == platform
    assert a.topic == "Diwali"
    assert a.version == 3


@pytest.mark.parametrize("platform", PLATFORMS)
def test_versions_give_visibly_different_texts(platform: str) -> None:
    texts = [draft(platform, "our new office", None, v).text for v in range(1, 21)]
    assert len(set(texts)) == len(texts)
    openings = [t.split("\n", 1)[0][:25] for t in texts[:7]]
    assert len(set(openings)) > 1  # not only the tail changes


@pytest.mark.parametrize("platform", PLATFORMS)
def test_consecutive_versions_change_the_opening(platform: str) -> None:
    for version in range(1, 8):
        one = draft(platform, "summer sale", None, version).text
        two = draft(platform, "summer sale", None, version + 1).text
        assert one.split(".")[0] != two.split(".")[0]


def test_default_platform_is_facebook() -> None:
    d = draft(None)
    assert d.platform == "facebook"
    assert d == draft("facebook")


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("fb", "facebook"), ("Twitter", "x"), ("IG", "instagram"), ("LinkedIn", "linkedin")],
)
def test_platform_aliases_are_accepted(alias: str, canonical: str) -> None:
    assert draft(alias).platform == canonical
    assert draft(alias).text == draft(canonical).text


def test_unknown_platform_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown platform"):
        draft("myspace")


LONG_TOPICS = [
    "an extraordinarily long and winding topic " * 20,
    "春节快乐" * 80,
    "🎉" * 400,
    "दिवाली की हार्दिक शुभकामनाएं " * 20,
    "x" * 5000,
    "supercalifragilisticexpialidocious " * 30,
]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    "topic", LONG_TOPICS, ids=["latin", "cjk", "emoji", "devanagari", "one-word", "long-words"]
)
@pytest.mark.parametrize(
    "context",
    [
        None,
        "We are Globex International Holdings, urgent tone, "
        "audience: enterprise technology leaders everywhere",
    ],
)
def test_length_limit_is_never_exceeded(platform: str, topic: str, context: str | None) -> None:
    limit = PLATFORM_RULES[platform].max_chars
    for version in range(1, 6):
        d = draft(platform, topic, context, version)
        assert measure(platform, d.text) <= limit
        assert len(d.text) <= limit
        assert d.text.strip()
        assert len(d.topic) <= MAX_TOPIC_CHARS
        # A cut never leaves a dangling combining mark at the start of a line.
        for line in d.text.split("\n"):
            if line:
                assert not unicodedata.category(line[0]).startswith("M")


def test_x_counts_cjk_as_two() -> None:
    assert measure("x", "abc") == 3
    assert measure("x", "春节") == 4
    assert measure("facebook", "春节") == 2
    d = draft("x", "春节快乐" * 80)
    assert measure("x", d.text) <= 280
    assert len(d.text) < 280  # the weighted count, not code points, was the binding limit


def test_truncation_ends_on_a_word_boundary_with_an_ellipsis() -> None:
    text = "alpha beta gamma delta epsilon zeta eta theta"
    cut = truncate(text, 20, len)
    assert cut == "alpha beta gamma\u2026"
    assert truncate(text, 100, len) == text
    assert truncate(text, 0, len) == ""


def test_truncation_never_splits_a_combining_sequence() -> None:
    text = "दिवाली" * 10  # no spaces: cut between characters, never before a vowel sign
    for limit in range(2, 30):
        cut = truncate(text, limit, len)
        assert len(cut) <= limit
        body = cut[:-1]
        if body:
            assert text.startswith(body)
            assert not unicodedata.category(text[len(body)]).startswith("M")


@pytest.mark.parametrize(
    "text",
    [
        "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466" * 8,  # joined emoji
        "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea" * 8,  # flags: pairs of regional indicators
        "\U0001f44d\U0001f3fd" * 12,  # emoji with a skin tone
    ],
    ids=["zwj", "flags", "skin-tone"],
)
def test_truncation_never_splits_an_emoji(text: str) -> None:
    whole = graphemes(text)
    for limit in range(2, 30):
        body = truncate(text, limit, len).removesuffix("\u2026")
        assert graphemes(body) == whole[: len(graphemes(body))]


def test_long_topic_is_capped_before_a_joined_emoji_it_cannot_hold() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
    assert draft(topic="a" * 115 + family).topic == "a" * 115  # not a half family and a ZWJ


def test_long_cjk_topic_is_truncated_on_x() -> None:
    d = draft("x", "春节快乐" * 80, None, 3)
    first = d.text.split("\n\n")[0]
    assert first.endswith("\u2026")
    assert measure("x", d.text) <= 280


def test_topic_is_capped_and_kept_unicode() -> None:
    assert draft(topic="  दिवाली  ").topic == "दिवाली"
    assert draft(topic="春节").topic == "春节"
    assert "春节" in draft(topic="春节").text
    assert "दिवाली" in draft(topic="दिवाली").text
    long = draft(topic="word " * 100).topic
    assert len(long) <= MAX_TOPIC_CHARS
    assert long.endswith("word")


def test_empty_topic_does_not_crash() -> None:
    d = draft(topic="   ")
    assert d.topic
    assert d.text


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    "topic",
    [
        "Diwali",
        "春节",
        "our new office",
        "AI in healthcare",
        "🎉🎉",
        "Summer sale: 50% off!",
        "{braces} and %s",
    ],
)
def test_hashtags_are_well_formed_and_appear_in_text(platform: str, topic: str) -> None:
    rule = PLATFORM_RULES[platform]
    d = draft(platform, topic)
    assert rule.min_hashtags <= len(d.hashtags) <= rule.max_hashtags
    assert len({t.casefold() for t in d.hashtags}) == len(d.hashtags)
    for tag in d.hashtags:
        assert re.fullmatch(r"#[\w\u0900-\u097f]+", tag), tag
        assert not tag[1:].isdigit()
        assert tag in d.text
    assert d.text.rstrip().endswith(d.hashtags[-1])


def test_hashtags_come_from_the_topic() -> None:
    assert draft("x", "Diwali").hashtags[0] == "#Diwali"
    assert "#FestivalOfLights" in draft("instagram", "Diwali").hashtags
    assert draft("linkedin", "our new office").hashtags[0] == "#NewOffice"
    assert draft("facebook", "AI in healthcare").hashtags[0] == "#AIHealthcare"
    assert draft("facebook", "春节").hashtags[0] == "#春节"
    assert draft("facebook", "iPhone launch").hashtags[0] == "#iPhoneLaunch"


def test_platform_style() -> None:
    linkedin = draft("linkedin", "our quarterly results")
    x = draft("x", "our quarterly results")
    insta = draft("instagram", "our quarterly results")
    assert 3 <= len(linkedin.hashtags) <= 5
    assert len(x.hashtags) <= 2
    assert len(insta.hashtags) >= 5
    assert not EMOJI.search(linkedin.text)  # professional by default
    assert EMOJI.search(insta.text)
    assert len(x.text) < len(linkedin.text)
    assert "\n\n" in linkedin.text  # paragraphs


def test_brand_name_appears_on_every_platform() -> None:
    for platform in PLATFORMS:
        for version in range(1, 8):
            d = draft(
                platform, "Diwali", "We are Acme Bakery, playful tone, audience: families", version
            )
            assert "Acme Bakery" in d.text, (platform, version)


@pytest.mark.parametrize(
    ("context", "brand"),
    [
        ("We are Acme Bakery, playful tone", "Acme Bakery"),
        ("we're Globex. Formal.", "Globex"),
        ("Company: Initech; audience: developers", "Initech"),
        ("Brand: Café Noir", "Café Noir"),
        ("brand name = 小米, urgent", "小米"),
    ],
)
def test_brand_is_detected_in_several_forms(context: str, brand: str) -> None:
    assert brand in draft("linkedin", "our anniversary", context).text


def test_description_is_not_taken_for_a_brand() -> None:
    d = draft("facebook", "bread", "We are a small family bakery")
    assert "a small family bakery" not in d.text
    assert "At a small" not in d.text


def test_brand_survives_a_long_topic_on_x() -> None:
    d = draft("x", "春节快乐" * 80, "Brand: Acme")
    assert "Acme" in d.text
    assert measure("x", d.text) <= 280


@pytest.mark.parametrize(
    "context",
    [
        "audience: families",
        "Target audience: families with kids",
        "posts for families",
        "We are Acme, audience = families",
    ],
)
def test_audience_is_woven_in(context: str) -> None:
    assert "families" in draft("facebook", "our summer fair", context).text


def test_tone_changes_the_wording() -> None:
    base = "We are Acme"
    playful = draft("facebook", "our new menu", f"{base}, playful tone").text
    formal = draft("facebook", "our new menu", f"{base}, formal tone").text
    urgent = draft("facebook", "our new menu", f"{base}, urgent").text
    inspiring = draft("facebook", "our new menu", f"{base}, inspiring").text
    assert len({playful, formal, urgent, inspiring}) == 4
    assert EMOJI.search(playful)
    assert not EMOJI.search(formal)
    # Every version of the formal post avoids exclamation-heavy, emoji-laden style.
    for v in range(1, 8):
        text = draft("facebook", "our new menu", f"{base}, professional", v).text
        assert not EMOJI.search(text)


def test_tone_words_select_template_families() -> None:
    # Same inputs but tone: the opener families do not overlap.
    def openers(context: str) -> set[str]:
        return {draft("x", "the launch", context, v).text.split(":")[0][:20] for v in range(7)}

    assert openers("playful").isdisjoint(openers("formal"))
    assert openers("urgent").isdisjoint(openers("inspiring"))


def test_context_changes_the_draft_even_without_tone() -> None:
    assert draft(context=None).text != draft(context="audience: students").text


def test_context_with_odd_characters_does_not_crash() -> None:
    for context in ["\x00\ud800", "We are " + "A" * 5000, "{We} {topic} %s", "🎉" * 100, ""]:
        d = draft("instagram", "cats", context)
        assert d.text
        assert measure("instagram", d.text) <= 2200


@pytest.mark.parametrize("version", [-3, 0, 1, 2, 10_000, 2**40])
def test_any_version_number_works(version: int) -> None:
    d = draft("threads", "coffee", None, version)
    assert d.version == version
    assert measure("threads", d.text) <= 500


def test_topic_with_braces_is_not_treated_as_a_template() -> None:
    d = draft("facebook", "{We} {topic} {0}")
    assert "{We} {topic} {0}" in d.text


def test_describe_capabilities() -> None:
    text = describe_capabilities()
    for name in ("Facebook", "Instagram", "LinkedIn", "X", "Threads", "Mastodon"):
        assert name in text
    assert text.count('\u2022 "') >= 2  # example phrasings
    assert "Create a Facebook post about Diwali with image" in text
    assert "regenerate" in text
    assert "cancel" in text
    assert describe_capabilities() == text
