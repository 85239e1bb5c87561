"""The words of each email. Plain text only: links are shown whole, nothing is tracked."""

from __future__ import annotations

SIGNATURE = "\n-- \nChatkeep\n"


def reset_message(*, link: str, minutes: int) -> tuple[str, str]:
    subject = "Reset your Chatkeep password"
    text = (
        "Someone (we hope you) asked to reset the password of your Chatkeep account.\n"
        "\n"
        "To choose a new password, open this link:\n"
        "\n"
        f"{link}\n"
        "\n"
        f"The link works once, for {minutes} minutes. Setting a new password signs you\n"
        "out everywhere else.\n"
        "\n"
        "If you did not ask for this, ignore this email: your password stays as it is.\n"
        f"{SIGNATURE}"
    )
    return subject, text


def signup_attempt_message(*, sign_in_link: str) -> tuple[str, str]:
    subject = "Your Chatkeep account"
    text = (
        "Someone (we hope you) tried to create a Chatkeep account with this email address,\n"
        "which already has one. Nothing has changed in your account.\n"
        "\n"
        'If it was you, sign in instead ("Forgot password?" there if you need a new one):\n'
        "\n"
        f"{sign_in_link}\n"
        "\n"
        "If it was not you, ignore this email.\n"
        f"{SIGNATURE}"
    )
    return subject, text


def verify_message(*, link: str) -> tuple[str, str]:
    subject = "Confirm your email for Chatkeep"
    text = (
        "Please confirm that this is your email address by opening this link:\n"
        "\n"
        f"{link}\n"
        "\n"
        "If you did not create a Chatkeep account, ignore this email.\n"
        f"{SIGNATURE}"
    )
    return subject, text
