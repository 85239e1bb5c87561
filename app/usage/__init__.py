"""Usage and token budgets: what turns used, per user and model, and the budget check a
turn passes to open (added to `app.turns.start.TURN_OPEN_CHECKS` by this import)."""

import app.usage.service  # noqa: F401
