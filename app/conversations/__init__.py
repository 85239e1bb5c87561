"""Conversations and their messages: storage, the trash, tags, search and the sweep."""

# Sealed messages and titles feed the blind index through an ORM hook that this import adds,
# so every writer of conversations has it whichever module it imported first.
import app.conversations.repository  # noqa: F401
