"""What the history routes answer: lists, one conversation, bulk actions, tags, activity."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from app.conversations.models import AuditEvent
from app.conversations.tags import normalize_tags
from app.core.schemas import ApiModel
from app.core.validation import PG_INT_MAX
from app.drafts.schemas import DraftOut
from app.sharing.schemas import SharedOut


class MessageOut(ApiModel):
    seq: int
    parent_seq: int | None = Field(
        default=None, description="The message this one follows; null for a first message."
    )
    sibling_seqs: list[int] = Field(
        default_factory=list,
        description="The seqs of every message with the same parent, ascending, itself "
        "included: its versions.",
    )
    role: str
    content: str
    image_url: str | None
    created_at: datetime
    stopped: bool = Field(
        default=False, description="A reply the user stopped before the model finished it"
    )
    truncated: bool = Field(
        default=False, description="A reply cut at MAX_REPLY_CHARS (the model wrote more)"
    )
    tool_calls: list[dict[str, Any]] | None = Field(
        default=None,
        description="A reply through `/v1` that called the client's tools: the calls, in "
        "OpenAI's shape; null otherwise.",
    )
    tool_call_id: str | None = Field(
        default=None,
        description="A tool's result sent through `/v1` (stored with role `user`): the "
        "call it answers; null otherwise.",
    )
    model: str | None = Field(
        default=None,
        description="An assistant message: the model that wrote it (an id of GET /api/models, "
        "or an imported conversation's model name); null when not known.",
    )


class SessionOut(ApiModel):
    id: str
    title: str
    status: str
    created_at: datetime
    last_activity_at: datetime
    archived_at: datetime | None
    message_count: int = Field(
        description="Messages on the active path (root to head); other versions not counted."
    )
    trashed_at: datetime | None = Field(
        default=None, description="When it went to the trash; null when not in the trash."
    )
    purge_at: datetime | None = Field(
        default=None, description="When the trash deletes it for good; null when not in it."
    )
    pinned: bool = False
    tags: list[str] = Field(default_factory=list, description="Lower-case, in the order given.")
    imported_from: str | None = Field(
        default=None,
        description="Where an imported conversation came from: `chatgpt`, `claude`, "
        "`openwebui` or `chatkeep`; null for one started here.",
    )
    api_client: str | None = Field(
        default=None,
        description="The name of the API key a conversation was started with through "
        "`/v1/chat/completions`; null for one started anywhere else.",
    )
    model: str | None = Field(
        default=None,
        description="The model that answers here (an id of GET /api/models); null: the "
        "default model.",
    )
    temporary: bool = Field(
        default=False,
        description="A temporary conversation: in no list, search, export of everything or "
        "share; deleted for good once idle past the session TTL.",
    )


class UsageOut(ApiModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ActiveTurnOut(ApiModel):
    """A reply still being written: follow it at
    `GET /api/sessions/{sessionId}/turns/{turnId}/events`."""

    turn_id: str
    status: str
    started_at: datetime
    user_seq: int | None = Field(
        default=None, description="The user message the reply answers (its parent)."
    )


class FailedTurnOut(ApiModel):
    """The last reply that failed: the user message `userSeq` (the head) has no answer.
    `POST /api/sessions/{id}/messages/{userSeq}/regenerate` tries again."""

    turn_id: str
    user_seq: int
    code: str = Field(description="Why: `turn_interrupted` (the server stopped), a model error…")
    detail: str
    partial_reply: str | None = Field(
        default=None, description="What the model had written when it stopped, if anything."
    )
    finished_at: datetime | None = None


class SessionDetail(SessionOut):
    head_seq: int | None = Field(
        default=None,
        description="The leaf of the active branch; `messages` is the path from the root "
        "to it. Null while the conversation holds no message.",
    )
    usage: UsageOut = Field(description="Tokens the model's replies used in this conversation.")
    active_turn: ActiveTurnOut | None = Field(
        default=None, description="Present while a reply is being written."
    )
    failed_turn: FailedTurnOut | None = Field(
        default=None,
        description="Present when the head is a user message whose reply failed (and none "
        "is being written): say so, show the partial reply, offer to try again.",
    )
    messages: list[MessageOut] = Field(
        description="The active path, root to head (a page of it, after `after_seq`)."
    )
    next_after_seq: int | None = Field(
        default=None,
        description="Pass as after_seq to read the next page of messages; null at the end.",
    )
    shared: SharedOut | None = Field(
        default=None, description="Its live share link; null when it is not shared."
    )
    drafts: list[DraftOut] | None = Field(
        default=None,
        description="With `?drafts=true`: its drafts, as `GET /api/sessions/{id}/drafts` "
        "gives them (so one request opens a conversation); null otherwise.",
    )


# ----------------------------------------------------------------------------- history

TITLE_MAX_CHARS_EDIT = 200
BULK_IDS_MAX = 100


class SnippetOut(ApiModel):
    text: str = Field(description="The matching text, whitespace collapsed, cut with `…`.")
    highlights: list[tuple[int, int]] = Field(
        description="[start, end) offsets in `text` of each match, in Unicode code points."
    )


class SessionSummary(SessionOut):
    preview: str = Field(
        description="The start of the head (the active branch's last message), whitespace "
        "collapsed."
    )
    match_seq: int | None = Field(
        default=None,
        description="With `q`: the seq of the first matching message, on any branch; null "
        "when only the title matched.",
    )
    match_on_path: bool | None = Field(
        default=None,
        description="With `q` and a `matchSeq`: whether that message is on the active path; "
        'when false, `PUT /api/sessions/{id}/head` with `{"seq": matchSeq}` opens its branch. '
        "Null when `matchSeq` is null.",
    )
    snippet: SnippetOut | None = Field(
        default=None, description="With `q`: the text around the match, with its offsets."
    )
    expires_at: datetime | None = Field(
        default=None,
        description="An active conversation: when it is archived unless a message comes "
        "first (last activity plus the session TTL); null for any other.",
    )
    shared: SharedOut | None = Field(
        default=None, description="Its live share link; null when it is not shared."
    )


class SessionPage(ApiModel):
    items: list[SessionSummary]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to read the next page; null at the end."
    )
    now: datetime = Field(
        description="The server's clock when it answered: count `expiresAt` down from it, "
        "not from a client's clock, which may be off."
    )

    def compact_json(self) -> bytes:
        """The page as `compact=true` sends it: each item with only the fields a history
        row shows (`COMPACT_ITEM_FIELDS`), and every null field left out (`nextCursor`
        too, on the last page)."""
        return self.model_dump_json(
            by_alias=True,
            exclude_none=True,
            include={
                "items": {"__all__": set(COMPACT_ITEM_FIELDS)},
                "next_cursor": True,
                "now": True,
            },
        ).encode()


# What a history row shows (the web page's list): no createdAt, trashedAt, model or
# temporary (always false in a list).
COMPACT_ITEM_FIELDS = frozenset(
    {
        "id",
        "title",
        "status",
        "last_activity_at",
        "archived_at",
        "purge_at",
        "message_count",
        "preview",
        "pinned",
        "tags",
        "imported_from",
        "api_client",
        "expires_at",
        "shared",
        "match_seq",
        "match_on_path",
        "snippet",
    }
)


class HeadMove(ApiModel):
    """`PUT /api/sessions/{id}/head`: the head moves to the newest leaf under `seq`."""

    seq: int = Field(ge=1, le=PG_INT_MAX)


class SessionRename(ApiModel):
    """Any of: a new title, pinned or not, the tags (replacing the old ones)."""

    title: str | None = Field(default=None, max_length=2000)
    pinned: bool | None = None
    tags: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=100, description="At most 10 tags of 1 to 32 characters."
    )
    model: str | None = Field(
        default=None,
        max_length=100,
        description="The model to answer from now on (an id of GET /api/models).",
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else normalize_tags(value)

    @field_validator("title")
    @classmethod
    def _trimmed(cls, value: str | None) -> str | None:
        if value is None:
            return None
        title = " ".join(value.split())
        if not title:
            raise ValueError("the title is empty")
        if len(title) > TITLE_MAX_CHARS_EDIT:
            raise ValueError(f"the title is longer than {TITLE_MAX_CHARS_EDIT} characters")
        return title


class ArchiveAllResult(ApiModel):
    archived: int


class BulkRestoreRequest(ApiModel):
    ids: list[str] = Field(min_length=1, max_length=BULK_IDS_MAX)


class BulkRestoreResult(ApiModel):
    restored: list[str]
    not_found: list[str]


class BulkRequest(ApiModel):
    action: Literal["archive", "restore", "trash", "delete", "tag", "untag"] = Field(
        description="`delete` deletes for good; `trash` moves to the trash; `tag` and "
        "`untag` add or remove `tags`."
    )
    ids: list[str] = Field(min_length=1, max_length=BULK_IDS_MAX)
    tags: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=10)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return normalize_tags(value)


class TagOut(ApiModel):
    tag: str
    count: int = Field(description="Conversations with this tag, not counting the trash.")


class TagList(ApiModel):
    tags: list[TagOut]


class BulkResult(ApiModel):
    action: str
    ids: list[str]


class ActivityOut(ApiModel):
    id: int
    at: datetime
    action: str = Field(description="trash, restore, delete, purge or admin_delete")
    session_id: str
    title: str
    user_id: str = Field(description="Whose conversation it was.")
    actor_id: str | None = Field(description="Who did it; null for the trash purge.")
    ip: str | None


class ActivityPage(ApiModel):
    items: list[ActivityOut]
    next_before: int | None = Field(
        default=None, description="Pass as `before` to read older entries; null at the end."
    )


def activity_out(event: AuditEvent) -> ActivityOut:
    return ActivityOut(
        id=event.id or 0,
        at=event.at,
        action=event.action,
        session_id=event.session_id,
        title=event.title,
        user_id=str(event.user_id),
        actor_id=str(event.actor_id) if event.actor_id else None,
        ip=event.ip,
    )
