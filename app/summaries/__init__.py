"""Summaries of long conversations written by the model after a turn (added to
`app.turns.runner.TURN_CLOSED_HOOKS` by this import)."""

import app.summaries.service  # noqa: F401
