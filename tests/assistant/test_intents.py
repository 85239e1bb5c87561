"""Intent recognition: many phrasings per intent, extraction, state and ambiguity."""

from __future__ import annotations

import pytest

from app.assistant.intents import (
    PLATFORM_ALIASES,
    PLATFORMS,
    Intent,
    IntentKind,
    canonical_platform,
    classify,
)

K = IntentKind


def pending(text: str) -> Intent:
    return classify(text, has_pending_draft=True, has_any_draft=True)


def idle(text: str) -> Intent:
    """No draft waiting, but earlier drafts exist."""
    return classify(text, has_pending_draft=False, has_any_draft=True)


def fresh(text: str) -> Intent:
    """A brand-new conversation: no drafts at all."""
    return classify(text, has_pending_draft=False, has_any_draft=False)


# --- create: (message, platform, topic, with_image) ------------------------------------------

CREATE_CASES = [
    ("Create a Facebook post about Diwali with image", "facebook", "Diwali", True),
    ("create a fb post on Diwali with an image please!", "facebook", "Diwali", True),
    ("CREATE A FACEBOOK POST ABOUT DIWALI!!!", "facebook", "DIWALI", False),
    (
        "Write an Instagram post about our summer sale 🌞 with a picture",
        "instagram",
        "our summer sale",
        True,
    ),
    ("make an insta post about latte art with a photo", "instagram", "latte art", True),
    ("draft an IG post about our new menu w/ pic", "instagram", "our new menu", True),
    ("Create an Instagram photo post about latte art", "instagram", "latte art", True),
    ("tweet about the new iPhone launch", "x", "the new iPhone launch", False),
    ("Write a tweet about remote work 🏠", "x", "remote work", False),
    ("compose a twitter post about AI safety", "x", "AI safety", False),
    ("post on x about open data", "x", "open data", False),
    ("Create a post for X about AI", "x", "AI", False),
    ("Post for LinkedIn announcing our new office", "linkedin", "our new office", False),
    (
        "write a linkedin post celebrating 10 years of Acme. Make it inspiring!",
        "linkedin",
        "10 years of Acme",
        False,
    ),
    (
        "I need a LinkedIn post about our Q3 results, make it formal",
        "linkedin",
        "our Q3 results",
        False,
    ),
    ("linkedin post about leadership", "linkedin", "leadership", False),
    ("write something for instagram about cats", "instagram", "cats", False),
    (
        "generate a mastodon post regarding open source funding",
        "mastodon",
        "open source funding",
        False,
    ),
    ("Compose a Threads post about 春节 🧧", "threads", "春节", False),
    ("Draft a post about दिवाली", None, "दिवाली", False),
    ("Can you write a Diwali post for Facebook?", "facebook", "Diwali", False),
    ("make a linkedin post for Diwali", "linkedin", "Diwali", False),
    ("Write a post about Diwali for Facebook and Instagram", "facebook", "Diwali", False),
    ("create a post about image processing", None, "image processing", False),
    ("write a post without image about cakes", None, "cakes", False),
    ("Write a tweet: big news, we are hiring!", "x", "big news, we are hiring", False),
    ("make a fun instagram post about puppies with a cute photo", "instagram", "puppies", True),
    (
        "Please create an IG post about our café opening ☕️ with a nice graphic",
        "instagram",
        "our café opening",
        True,
    ),
    ("Hey! Write a tweet about the Lakers game 🏀", "x", "the Lakers game", False),
    ("post about cats", None, "cats", False),
    ("a facebook post about diwali", "facebook", "diwali", False),
    ("Create a post about X-mas deals", None, "X-mas deals", False),
    ("Write a Diwali post", None, "Diwali", False),
    ("write another post about Holi", None, "Holi", False),
    ("about Diwali", None, "Diwali", False),
    ("generate a post about diwali with an illustration, thanks", None, "diwali", True),
]


@pytest.mark.parametrize(("text", "platform", "topic", "with_image"), CREATE_CASES)
def test_create_post_extracts_platform_topic_and_image(
    text: str, platform: str | None, topic: str, with_image: bool
) -> None:
    for intent in (pending(text), idle(text), fresh(text)):
        assert intent.kind is K.CREATE_POST, text
        assert intent.platform == platform, text
        assert intent.topic == topic, text
        assert intent.with_image is with_image, text
        assert intent.clarification is None
        assert 0.0 < intent.confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "no, write a LinkedIn post about hiring instead",
        "yes, create an instagram post about cats",
        "cancel that and write a facebook post about Holi",
        "don't post it, create a tweet about our webinar",
    ],
)
def test_a_new_create_request_wins_over_yes_no_words(text: str) -> None:
    intent = pending(text)
    assert intent.kind is K.CREATE_POST
    assert intent.topic


def test_create_keeps_unicode_topic_intact() -> None:
    assert fresh("write a facebook post about 春节快乐").topic == "春节快乐"
    assert fresh("create a post about Ünïcödé façade").topic == "Ünïcödé façade"
    assert fresh("Create a post about नमस्ते दुनिया please").topic == "नमस्ते दुनिया"


def test_very_long_topic_is_capped() -> None:
    intent = fresh("Write a post about " + "wonderful things " * 100)
    assert intent.kind is K.CREATE_POST
    assert intent.topic is not None
    assert 0 < len(intent.topic) <= 200
    assert intent.topic.startswith("wonderful things")


@pytest.mark.parametrize(
    ("text", "platform"),
    [
        ("create a facebook post", "facebook"),
        ("draft a tweet", "x"),
        ("write a LinkedIn post please", "linkedin"),
        ("make a post", None),
        ("Create a post about it", None),
        ("write a fun post", None),
        ("write me something", None),
    ],
)
def test_create_without_topic_asks_what_about(text: str, platform: str | None) -> None:
    intent = fresh(text)
    assert intent.kind is K.UNCLEAR
    assert intent.platform == platform
    assert intent.clarification is not None
    assert "about" in intent.clarification


def test_topic_question_names_the_platform_with_the_right_article() -> None:
    x = fresh("draft a tweet").clarification
    fb = fresh("create a facebook post").clarification
    assert x is not None and fb is not None
    assert "X post" in x and "an X post" in x
    assert "Facebook post" in fb and "a Facebook post" in fb


# --- publish ---------------------------------------------------------------------------------

PUBLISH = [
    "yes",
    "Yes!!",
    "YES.",
    "yep",
    "yeah",
    "yup 👍",
    "👍",
    "✅",
    "post it",
    "Post it!",
    "publish",
    "publish it",
    "go ahead",
    "Go ahead.",
    "looks good, post it",
    "ship it",
    "ship it 🚀",
    "sure",
    "ok",
    "okay",
    "lgtm",
    "sounds good",
    "yes please post it",
    "post it now please",
    "do it",
    "let's do it",
    "post",
]


@pytest.mark.parametrize("text", PUBLISH)
def test_publish_with_pending_draft(text: str) -> None:
    intent = pending(text)
    assert intent.kind is K.PUBLISH, text
    assert intent.clarification is None


@pytest.mark.parametrize(
    "text", ["yes", "yep 👍", "post it", "publish", "go ahead", "ship it", "looks good, post it"]
)
def test_publish_without_pending_draft_is_unclear(text: str) -> None:
    for intent in (idle(text), fresh(text)):
        assert intent.kind is K.UNCLEAR, text
        assert intent.clarification == (
            "There is no draft waiting to be posted. Would you like me to write one?"
        )


def test_bare_post_without_draft_asks_for_a_topic() -> None:
    intent = fresh("post")
    assert intent.kind is K.UNCLEAR
    assert intent.clarification is not None
    assert "What should the post be about?" in intent.clarification


def test_weak_yes_without_draft_is_just_small_talk() -> None:
    assert fresh("ok").kind is K.SMALLTALK
    assert fresh("sure").kind is K.SMALLTALK


def test_post_it_on_a_platform_carries_the_platform() -> None:
    intent = pending("post it on facebook")
    assert intent.kind is K.PUBLISH
    assert intent.platform == "facebook"


# --- cancel ----------------------------------------------------------------------------------

CANCEL = [
    "cancel",
    "Cancel.",
    "CANCEL!!!",
    "no",
    "No.",
    "nope",
    "nah",
    "discard",
    "discard it",
    "never mind",
    "nevermind",
    "nvm",
    "don't post it",
    "do not post it",
    "dont post this",
    "Don\u2019t publish",
    "no thanks",
    "forget it",
    "scrap it",
    "delete it",
    "❌",
    "👎",
    "I don't want to post it",
    "don't make a post",
    "stop",
    "abort",
]


@pytest.mark.parametrize("text", CANCEL)
def test_cancel(text: str) -> None:
    intent = pending(text)
    assert intent.kind is K.CANCEL, text
    assert fresh(text).kind is K.CANCEL, text


def test_negated_publish_is_not_publish() -> None:
    assert pending("don't post it").kind is K.CANCEL
    assert pending("please do not publish this").kind is K.CANCEL


# --- regenerate ------------------------------------------------------------------------------

REGENERATE = [
    "regenerate the previous post",
    "regenerate",
    "Regenerate!",
    "try again",
    "Try again 🙏",
    "make another version",
    "another one",
    "redo it",
    "give me a different version",
    "rewrite the last post",
    "write another post",
    "one more time please",
    "something different",
    "no, regenerate it",
    "🔄",
    "make it shorter",
    "can you make it more formal?",
    "reroll",
    "write it again",
    "another version please",
]


@pytest.mark.parametrize("text", REGENERATE)
def test_regenerate_with_a_draft(text: str) -> None:
    assert pending(text).kind is K.REGENERATE, text
    assert idle(text).kind is K.REGENERATE, text


@pytest.mark.parametrize("text", ["regenerate the previous post", "try again", "another one"])
def test_regenerate_without_any_draft_asks_what_to_write(text: str) -> None:
    intent = fresh(text)
    assert intent.kind is K.UNCLEAR
    assert intent.clarification is not None
    assert "What would you like me to write about?" in intent.clarification


def test_regenerate_carries_a_new_platform() -> None:
    intent = idle("regenerate it for linkedin")
    assert intent.kind is K.REGENERATE
    assert intent.platform == "linkedin"


def test_negated_regenerate_is_not_regenerate() -> None:
    assert pending("don't regenerate, post it").kind is K.PUBLISH


# --- help and small talk ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "help",
        "Help!",
        "what can you do?",
        "What can you do",
        "how does this work?",
        "commands",
        "who are you?",
        "I need help",
        "?",
    ],
)
def test_help(text: str) -> None:
    assert fresh(text).kind is K.HELP, text
    assert pending(text).kind is K.HELP, text


@pytest.mark.parametrize(
    "text",
    [
        "hi",
        "Hello!",
        "hey there 👋",
        "good morning 🙂",
        "thanks!",
        "thank you so much",
        "how are you?",
        "bye",
        "no problem",
        "🎉",
        "lol",
    ],
)
def test_smalltalk(text: str) -> None:
    assert fresh(text).kind is K.SMALLTALK, text


# --- ambiguity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["yes and no", "publish... actually cancel", "post it. no wait, cancel", "yes, cancel"]
)
def test_conflicting_publish_and_cancel_asks(text: str) -> None:
    intent = pending(text)
    assert intent.kind is K.UNCLEAR, text
    assert intent.clarification == "Just to be sure: should I publish the draft, or cancel it?"


@pytest.mark.parametrize("text", ["great", "perfect!", "love it", "nice"])
def test_praise_with_pending_draft_asks_to_confirm_rather_than_publishing(text: str) -> None:
    intent = pending(text)
    assert intent.kind is K.UNCLEAR
    assert intent.clarification is not None
    assert "post it now" in intent.clarification
    assert fresh(text).kind is K.SMALLTALK


@pytest.mark.parametrize("text", ["asdfgh", "Diwali", "purple monkey dishwasher"])
def test_unknown_messages_are_unclear_with_a_question(text: str) -> None:
    with_draft = pending(text)
    assert with_draft.kind is K.UNCLEAR
    assert with_draft.clarification == (
        "Would you like me to post this draft, regenerate it, or cancel it?"
    )
    without = fresh(text)
    assert without.kind is K.UNCLEAR
    assert without.clarification is not None
    assert without.clarification.endswith("?")
    assert "Create a Facebook post about Diwali" in without.clarification


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_message_is_unclear(text: str) -> None:
    intent = fresh(text)
    assert intent.kind is K.UNCLEAR
    assert intent.confidence == 0.0
    assert intent.clarification


@pytest.mark.parametrize(
    "text",
    [
        "\x00\x01\x02",
        "\ud800 lone surrogate",
        "🏳️‍🌈👨‍👩‍👧",
        "a" * 20000,
        "post " * 5000,
        "‮reversed",
        "\u200d\u200c",
        "write a post about " + "🎉" * 500,
    ],
)
def test_never_crashes_on_odd_input(text: str) -> None:
    for intent in (pending(text), fresh(text)):
        assert isinstance(intent.kind, IntentKind)
        if intent.kind is K.UNCLEAR:
            assert intent.clarification


def test_classify_is_deterministic() -> None:
    for text, *_ in CREATE_CASES:
        assert fresh(text) == fresh(text)


def test_intent_is_frozen() -> None:
    intent = fresh("hi")
    with pytest.raises(AttributeError):
        intent.kind = K.HELP  # type: ignore[misc]


# --- platforms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("fb", "facebook"),
        ("Facebook", "facebook"),
        ("IG", "instagram"),
        ("insta", "instagram"),
        ("twitter", "x"),
        ("tweet", "x"),
        ("X", "x"),
        ("Linked In", "linkedin"),
        ("threads", "threads"),
        ("mastodon", "mastodon"),
        ("myspace", None),
        (None, None),
    ],
)
def test_canonical_platform(alias: str | None, canonical: str | None) -> None:
    assert canonical_platform(alias) == canonical


def test_every_alias_maps_to_a_known_platform() -> None:
    assert set(PLATFORM_ALIASES.values()) == set(PLATFORMS)
    assert len(PLATFORMS) == 6


@pytest.mark.parametrize(
    ("text", "platform"),
    [
        ("create a facebook post about tea", "facebook"),
        ("create a fb post about tea", "facebook"),
        ("create an instagram post about tea", "instagram"),
        ("create an ig post about tea", "instagram"),
        ("create an insta post about tea", "instagram"),
        ("create a linkedin post about tea", "linkedin"),
        ("create a twitter post about tea", "x"),
        ("create an x post about tea", "x"),
        ("tweet about tea", "x"),
        ("create a threads post about tea", "threads"),
        ("create a mastodon post about tea", "mastodon"),
        ("create a post about tea for mastodon", "mastodon"),
        ("create a post about tea", None),
    ],
)
def test_platform_aliases_in_messages(text: str, platform: str | None) -> None:
    intent = fresh(text)
    assert intent.kind is K.CREATE_POST
    assert intent.platform == platform
    assert intent.topic == "tea"


def test_platform_name_inside_the_topic_is_left_alone() -> None:
    intent = fresh("write a post about Facebook's new privacy policy")
    assert intent.kind is K.CREATE_POST
    assert intent.platform is None
    assert intent.topic == "Facebook's new privacy policy"


@pytest.mark.parametrize(
    "text", ["What time is it in Tokyo?", "tell me a joke", "how tall is Everest", "¿Qué hora es?"]
)
def test_other_questions_are_questions_whatever_waits(text: str) -> None:
    assert fresh(text).kind is K.QUESTION
    assert pending(text).kind is K.QUESTION  # answered; the waiting draft stays waiting


@pytest.mark.parametrize(
    "text", ["दिवाली के बारे में एक पोस्ट बनाओ", "اكتب منشورا عن رمضان", "写一篇关于春节的帖子"]
)
def test_requests_in_other_scripts_are_marked_for_the_offline_note(text: str) -> None:
    intent = fresh(text)
    assert intent.kind is K.UNCLEAR
    assert intent.offline_language
