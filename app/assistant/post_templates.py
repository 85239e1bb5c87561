"""The words of a built-in post, as data: openings, bodies, calls to action, per tone.

Placeholders: {topic} (as given), {Topic} (sentence start), {We} ("We" or "At Acme, we"),
{we}, {Team} ("Our team" / "The Acme team"), {team}, {audience}, {Audience}.
Counts are 7 openers, 5 bodies and 6 calls to action per tone, so that consecutive
versions change all three and 210 versions in a row are distinct.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["AUDIENCE_LINES", "BODIES", "BULLETS", "CTAS", "OPENERS"]


OPENERS: Mapping[str, tuple[str, ...]] = {
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

BODIES: Mapping[str, tuple[tuple[str, ...], ...]] = {
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

CTAS: Mapping[str, tuple[str, ...]] = {
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

AUDIENCE_LINES: Mapping[str, str] = {
    "friendly": "Especially for {audience}: this one's for you!",
    "playful": "Calling all {audience}!",
    "professional": "Particularly relevant for {audience}.",
    "inspiring": "To all {audience}: this is for you.",
    "urgent": "{Audience}, don't miss this!",
}

BULLETS: Mapping[str, str] = {
    "facebook": "\u2022 ",
    "instagram": "\u2728 ",
    "linkedin": "\u2192 ",
    "mastodon": "- ",
}
