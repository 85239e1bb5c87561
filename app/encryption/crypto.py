"""Encryption at rest: the keys (ENCRYPTION_KEYS), AES-256-GCM, and the blind-index HMAC.

`ENCRYPTION_KEYS` is a comma-separated list of `kid:base64url(32 bytes)`. The first key
encrypts; every key decrypts. Each sealed value is `nonce (12 bytes) || ciphertext || tag`,
with associated data naming the table, column, owner and row, so a value copied to
another row or another user does not decrypt. The row records which key sealed it.

Search over sealed text uses a blind index: an HMAC of each word and prefix, under a key
derived from the encryption key with HKDF (never the encryption key itself).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import secrets
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.core.errors import AppError

NONCE_BYTES = 12
KEY_BYTES = 32
TOKEN_BYTES = 16  # a truncated HMAC-SHA256: collisions stay out of reach, rows stay small
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_INDEX_INFO = b"chatkeep blind index v1"
_AAD_PREFIX = b"chatkeep/v1"


class EncryptionKeyError(AppError):
    """A sealed row cannot be opened: its key is not configured, or it is not the key
    that sealed it. An operator's problem, answered as a clear 503 (never a trace)."""

    status_code = 503
    code = "encryption_key_unavailable"
    title = "Encryption key unavailable"


@dataclass(frozen=True)
class EncryptionKey:
    kid: str
    secret: bytes = field(repr=False)

    @property
    def aead(self) -> AESGCM:
        return _aead(self.secret)

    @property
    def index_key(self) -> bytes:
        return _index_key(self.secret)


@lru_cache(maxsize=64)
def _aead(secret: bytes) -> AESGCM:
    return AESGCM(secret)


@lru_cache(maxsize=64)
def _index_key(secret: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INDEX_INFO).derive(secret)


def associated_data(table: str, column: str, user_id: uuid.UUID | str, row: str) -> bytes:
    """What a sealed value is bound to: where it lives and whose it is."""
    return b"\x1f".join(
        (_AAD_PREFIX, table.encode(), column.encode(), str(user_id).encode(), row.encode())
    )


@dataclass(frozen=True)
class Keyring:
    keys: tuple[EncryptionKey, ...]

    @property
    def primary(self) -> EncryptionKey:
        return self.keys[0]

    def key(self, kid: str) -> EncryptionKey:
        for key in self.keys:
            if key.kid == kid:
                return key
        raise EncryptionKeyError(
            f"Stored data is encrypted with key {kid!r}, which ENCRYPTION_KEYS does not hold. "
            "Add that key back (after the newest one) and run `python -m app keys rotate`.",
            code="encryption_key_missing",
        )

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return self.primary.kid, nonce + self.primary.aead.encrypt(nonce, plaintext, aad)

    def open(self, kid: str, sealed: bytes, aad: bytes) -> bytes:
        key = self.key(kid)
        try:
            return key.aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except InvalidTag:
            raise EncryptionKeyError(
                f"Stored data does not decrypt with key {kid!r}: the key is not the one that "
                "encrypted it, or the value was altered or moved to another row.",
                code="decryption_failed",
            ) from None

    def tokens(self, kid: str, user_id: uuid.UUID | str, terms: Iterable[str]) -> list[bytes]:
        """The blind-index tokens of search terms of one user, under key `kid`."""
        key = self.key(kid).index_key
        owner = str(user_id).encode() + b"\x1f"
        # hmac.digest: the one-shot C path, a microsecond a token.
        return [hmac.digest(key, owner + t.encode(), "sha256")[:TOKEN_BYTES] for t in terms]

    def tokens_any_key(self, user_id: uuid.UUID | str, term: str) -> list[bytes]:
        """The term's token under every key: rows not yet rotated still match."""
        return [self.tokens(k.kid, user_id, [term])[0] for k in self.keys]


def open_or_refuse(keyring: Keyring | None, kid: str, sealed: bytes, aad: bytes) -> bytes:
    if keyring is None:
        raise EncryptionKeyError(
            f"Stored data is encrypted (key {kid!r}) but ENCRYPTION_KEYS is not set.",
            code="encryption_key_missing",
        )
    return keyring.open(kid, sealed, aad)


class KeyFormatError(ValueError):
    pass


@lru_cache(maxsize=16)
def parse_keys(text: str) -> Keyring | None:
    """`kid:base64url,kid2:base64url` -> Keyring; empty text -> None (encryption off)."""
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not entries:
        return None
    keys: list[EncryptionKey] = []
    for n, entry in enumerate(entries, 1):
        kid, sep, encoded = entry.partition(":")
        if not sep or not KEY_ID_PATTERN.fullmatch(kid):
            raise KeyFormatError(
                f"ENCRYPTION_KEYS entry {n} must be `kid:base64url-key` with a key id of 1-32 "
                "letters, digits, '.', '_' or '-' (generate one: python -m app keys generate)"
            )
        try:
            secret = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            secret = b""
        if len(secret) != KEY_BYTES:
            raise KeyFormatError(
                f"ENCRYPTION_KEYS entry {n} ({kid!r}): the key must be {KEY_BYTES} random bytes "
                "in base64url (generate one: python -m app keys generate)"
            )
        if any(k.kid == kid for k in keys):
            raise KeyFormatError(f"ENCRYPTION_KEYS: key id {kid!r} appears twice")
        if any(k.secret == secret for k in keys):
            raise KeyFormatError(f"ENCRYPTION_KEYS entry {n} ({kid!r}) repeats another key")
        keys.append(EncryptionKey(kid, secret))
    return Keyring(tuple(keys))


def generate_key_line(kid: str | None = None) -> str:
    kid = kid or f"k{secrets.token_hex(4)}"
    if not KEY_ID_PATTERN.fullmatch(kid):
        raise KeyFormatError("a key id is 1-32 letters, digits, '.', '_' or '-'")
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")
    return f"{kid}:{encoded}"


# The keyring of each engine, set where the engine is made from the settings: whoever
# holds a database session (a request, the CLI, a job, a benchmark) seals with the same keys.
_KEYRINGS: weakref.WeakKeyDictionary[Any, Keyring] = weakref.WeakKeyDictionary()


def attach_keyring(sync_engine: Any, keyring: Keyring | None) -> None:
    if keyring is None:
        _KEYRINGS.pop(sync_engine, None)
    else:
        _KEYRINGS[sync_engine] = keyring


def keyring_of_bind(bind: Any) -> Keyring | None:
    engine = getattr(bind, "engine", bind)
    return _KEYRINGS.get(engine)


def keyring_of(session: Any) -> Keyring | None:
    """The keyring of an (async or sync) ORM session's engine, None when encryption is off."""
    sync = getattr(session, "sync_session", session)
    bind = sync.bind
    if bind is None:
        return None
    return keyring_of_bind(getattr(bind, "sync_engine", bind))
