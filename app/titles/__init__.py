"""Titles written by the model after a conversation's first exchange (added to
`app.turns.runner.TURN_CLOSED_HOOKS` by this import)."""

import app.titles.service  # noqa: F401
