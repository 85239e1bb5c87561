"""Chatkeep: server-side AI-chat conversations per user, in PostgreSQL."""

# Packages that check their own settings (or set up every engine) add the hook on import;
# importing them here means every `Settings()` and every engine gets them, whichever module
# was imported first.
import app.encryption.config
import app.mail.config
import app.ratelimit.config  # noqa: F401
