"""Chatkeep: server-side AI-chat conversations per user, in PostgreSQL."""

# Domains that check their own settings add the check on import; importing them here means
# every `Settings()` runs those checks, whichever module was imported first.
import app.ratelimit.config  # noqa: F401
