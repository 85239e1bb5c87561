"""ENCRYPTION_KEYS: checked with every `Settings()`, and attached to every engine built.

Both hooks are added on import, which `app/__init__.py` does first, so `core` never names
this package.
"""

from __future__ import annotations

from typing import Any

from app.core.config import Settings, settings_check
from app.core.db import engine_setup
from app.encryption.crypto import KeyFormatError, Keyring, attach_keyring, parse_keys


def keyring_for(settings: Settings) -> Keyring | None:
    """The parsed ENCRYPTION_KEYS (checked at start-up), None when encryption is off."""
    return parse_keys(settings.encryption_keys or "")


@settings_check
def check_encryption_keys(settings: Settings) -> None:
    try:
        keyring_for(settings)
    except KeyFormatError as exc:
        raise ValueError(str(exc)) from None


@engine_setup
def attach_settings_keyring(sync_engine: Any, settings: Settings) -> None:
    attach_keyring(sync_engine, keyring_for(settings))
