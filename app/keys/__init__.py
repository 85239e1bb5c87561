"""Encryption keys: generating them, and moving stored content onto the newest one."""
