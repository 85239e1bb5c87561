"""What the drafting assistant says in its own words, in one place.

The rules (`intents`) pick a clarification from here; the assistant (`builtin`) writes the
rest around drafts, publications and cancellations. A model, when one is configured,
writes its own answers, but the ledger's replies (published, cancelled, nothing waiting)
still come from here.
"""

from __future__ import annotations

from app.assistant.platforms import PLATFORM_RULES, display_name

_EXAMPLE = '"Create a Facebook post about Diwali with image"'

# -- around a draft ----------------------------------------------------------------------

QUESTION = "Would you like to post this, regenerate, or cancel?"
PUBLISHED = "✅ Your post has been published successfully!"
CANCELLED = (
    "Okay, I have cancelled that draft. Nothing was posted. "
    'Say "regenerate the previous post" if you change your mind, '
    "or tell me what to write next."
)
DRAFT_STILL_WAITING = (
    'Your draft is still waiting: say "yes" to post it, "regenerate" for a new version, '
    'or "cancel" to discard it.'
)


def draft_lead(platform: str, topic: str, version: int) -> str:
    """The line before a draft's text; `platform` is the name users read."""
    if version > 1:
        return f"Here is a new version (v{version}) of your {platform} post about {topic}:"
    return f"Here is a draft of your {platform} post about {topic}:"


def no_image(problem: str) -> str:
    return f'(I could not add an image this time: {problem}. Say "regenerate" to try again.)'


def publish_failed(error: str) -> str:
    return (
        f"⚠️ I could not publish your post: {error}. The draft is still waiting; "
        'say "yes" to try again, "regenerate" for a new version, or "cancel".'
    )


# -- nothing to act on -------------------------------------------------------------------

NOTHING_TO_PUBLISH = "There is no draft waiting to be posted. Would you like me to write one?"
NOTHING_TO_CANCEL = (
    "There is no draft waiting to be posted, so there is nothing to cancel. "
    'Tell me what to write next, or say "regenerate the previous post".'
)
NOTHING_TO_REGENERATE = (
    "There is no previous post to regenerate yet. What would you like me to write about? "
    f"For example: {_EXAMPLE}."
)

# -- clarifications: the rules could not tell what the user wants --------------------------

ASK_PENDING = "Would you like me to post this draft, regenerate it, or cancel it?"
ASK_CONFLICT = "Just to be sure: should I publish the draft, or cancel it?"
ASK_CONFIRM = (
    'Glad you like it! Should I post it now? Reply "yes" to publish or "cancel" to discard it.'
)
ASK_GENERIC = (
    "I'm not sure what you'd like me to do. I can write social-media posts for you - "
    f"for example: {_EXAMPLE}. What should I write about?"
)


def ask_topic(platform: str | None) -> str:
    """Asked when a post was requested without saying what about; `platform` is an id."""
    what = f"{display_name(platform)} post" if platform else "post"
    article = "an" if what[0] in "AEIOUX" else "a"
    return (
        f'What should the {what} be about? For example: "{article} {what} about our summer sale".'
    )


# -- what the assistant is -----------------------------------------------------------------

OFFLINE_NOTE = (
    "I'm Chatkeep's built-in assistant. I work offline, without a language model, so I "
    "can't answer general questions or understand requests in every language. What I can "
    "do is write social-media posts, in English, from a request like "
    f"{_EXAMPLE}. For answers to anything, in any "
    "language, your administrator can connect a language model."
)


def describe_capabilities() -> str:
    """The assistant's answer to "help", greetings and messages it could not act on."""
    names = ", ".join(p.name for p in PLATFORM_RULES.values() if p.id != "x")
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
