"""Every domain's tables, gathered for Alembic and the test that compares models to migrations,
and the domains' reactions to each other's changes (sharing ends the links of trashed
conversations), so that whatever loads the models has them."""

from app.apikeys.models import ApiKey
from app.auth.models import AccountEvent, SignIn, User
from app.conversations.models import (
    AuditEvent,
    ChatMessage,
    ChatSession,
    MessageSearchToken,
    PathSummary,
    RetentionRun,
    SweepRun,
)
from app.core.db import metadata
from app.drafts.models import PostDraft, PostDraftVersion, PublishedPost, StoredImage
from app.exports.models import ChatImport
from app.jobs.models import Job, JobChunk
from app.ratelimit.models import RateLimitOverride
from app.sharing import service as _sharing_reactions  # noqa: F401
from app.sharing.models import SharedLink
from app.summaries import service as _summaries  # noqa: F401  (summaries after a turn)
from app.titles import service as _titles  # noqa: F401  (titles after a first exchange)
from app.turns.models import ChatTurn
from app.usage.models import UsageBudget

__all__ = [
    "AccountEvent",
    "ApiKey",
    "AuditEvent",
    "ChatImport",
    "ChatMessage",
    "ChatSession",
    "ChatTurn",
    "Job",
    "JobChunk",
    "MessageSearchToken",
    "PathSummary",
    "PostDraft",
    "PostDraftVersion",
    "PublishedPost",
    "RateLimitOverride",
    "RetentionRun",
    "SharedLink",
    "SignIn",
    "StoredImage",
    "SweepRun",
    "UsageBudget",
    "User",
    "metadata",
]
