"""Encryption at rest: keys, sealed columns and the settings check of ENCRYPTION_KEYS.

Repositories and the turn's prebuilt statements call it; the ORM does so by itself through
the sealed-column hooks. Nothing below it (`core`) knows it exists.
"""
