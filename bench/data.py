"""Deterministic conversation text: readable-length messages that do not compress to nothing."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "sa",
    "tu",
    "vel",
    "no",
    "pra",
    "di",
    "qua",
    "ster",
    "ba",
    "fin",
    "go",
    "hal",
    "jo",
    "ku",
    "mar",
    "net",
    "or",
    "pel",
    "ri",
    "son",
    "tam",
    "ul",
    "vi",
    "wen",
    "xo",
    "yu",
    "zel",
    "an",
    "bri",
    "cor",
    "dun",
    "el",
    "fra",
    "gil",
    "hos",
    "is",
]


@lru_cache(maxsize=1)
def _words() -> tuple[str, ...]:
    rng = random.Random(7)
    words = {"".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(4000)}
    return tuple(sorted(words))


def sentence_text(rng: random.Random, chars: int) -> str:
    """About `chars` characters of word salad with sentence punctuation."""
    words = _words()
    out: list[str] = []
    size = 0
    while size < chars:
        sentence = rng.choices(words, k=rng.randint(6, 16))
        text = " ".join(sentence).capitalize() + rng.choice([".", ".", ".", "?", "!"])
        out.append(text)
        size += len(text) + 1
    return " ".join(out)


# A user's message is short; an assistant's reply is a paragraph or a draft post.
USER_CHARS = (60, 240)
ASSISTANT_CHARS = (300, 900)


@dataclass(frozen=True)
class SeedMessage:
    role: str
    content: str


class TextSource:
    def __init__(self, seed: int = 42) -> None:
        self.rng = random.Random(seed)

    def message(self, role: str) -> SeedMessage:
        low, high = USER_CHARS if role == "user" else ASSISTANT_CHARS
        return SeedMessage(role, sentence_text(self.rng, self.rng.randint(low, high)))

    def conversation(self, length: int) -> list[SeedMessage]:
        return [self.message("user" if i % 2 == 0 else "assistant") for i in range(length)]

    def user_message(self) -> str:
        return sentence_text(self.rng, self.rng.randint(*USER_CHARS))
