"""The turn's statements, written once as SQL: a chat turn runs them on every message.

Two things cost a turn most, and both are avoided here:
- round trips: the ORM's unit of work sends one statement per table (session, message,
  turn); these write all of a step's rows in one statement with data-modifying CTEs
  (foreign keys are checked at the end of the statement, so a message may name the
  session inserted beside it);
- building statements: an ORM or Core construct is built, coerced and given a cache key
  on every call, which costs more CPU than the database's work on these rows. A
  `TextClause` built at import costs neither.

The columns and values named here (statuses 'generating', 'active', 'archived'; roles
'user', 'assistant') are those of `ChatSession`, `ChatMessage` and `ChatTurn`, whose check
constraints hold them to it; the turn tests run every statement. Writing SQL by hand means
doing by hand what the ORM's hooks do elsewhere: every statement names `user_id`
(`app.core.tenancy`'s rule), and with ENCRYPTION_KEYS the content goes in sealed
(`sealed_content`, `sealed_title`) with its blind-index row beside it.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from app.conversations.models import ChatMessage, ChatSession
from app.encryption.crypto import Keyring
from app.encryption.sealed import seal_row
from app.events.bus import CHANNEL

# The owner's session row, locked.
LOCKED_SESSION = sa.text(
    """
    SELECT status, last_activity_at, message_count, head_seq FROM chat_session
    WHERE id = :session_id AND user_id = :user_id
    FOR UPDATE
    """
)

# Once the lock is held, in a statement of its own (READ COMMITTED gives it a snapshot
# that sees whatever the lock's previous holder committed): the turn generating on the
# session, if any, and the assistant's context: the path from the new message's parent up
# through its parents, newest first, read by one recursive query that stops after :limit
# messages (CONTEXT_MAX_MESSAGES), however long the conversation or wide its tree.
#
# Where the path starts depends on what the turn does (`:target_seq` null: a new message
# after the head; with `:regenerate` false: an edit of the user message `:target_seq`,
# which gets that message's parent; with `:regenerate` true: a new reply to the user
# message `:target_seq` is, or answers). The target's row comes back for the service to
# check (a missing target, or one of the wrong role, writes nothing).
BUSY_TURN_AND_CONTEXT = sa.text(
    """
    WITH RECURSIVE target AS (
        SELECT seq, role, parent_seq FROM chat_message
        WHERE session_id = :session_id AND user_id = :user_id
          AND seq = CAST(:target_seq AS integer)
    ),
    asked AS (
        SELECT m.seq, m.role, m.parent_seq, m.content, m.content_sealed, m.key_id
        FROM chat_message m
        WHERE CAST(:regenerate AS boolean)
          AND m.session_id = :session_id AND m.user_id = :user_id
          AND m.seq = (SELECT CASE WHEN role = 'assistant' THEN parent_seq ELSE seq END
                       FROM target)
    ),
    start AS (
        SELECT CASE WHEN CAST(:target_seq AS integer) IS NULL THEN CAST(:head_seq AS integer)
                    WHEN CAST(:regenerate AS boolean) THEN (SELECT parent_seq FROM asked)
                    ELSE (SELECT parent_seq FROM target) END AS seq
    ),
    path (seq, parent_seq, role, content, image_url, content_sealed, key_id, n) AS (
        SELECT m.seq, m.parent_seq, m.role, m.content, m.image_url, m.content_sealed,
               m.key_id, 1
        FROM chat_message m
        WHERE m.session_id = :session_id AND m.user_id = :user_id
          AND m.seq = (SELECT seq FROM start)
        UNION ALL
        SELECT m.seq, m.parent_seq, m.role, m.content, m.image_url, m.content_sealed,
               m.key_id, p.n + 1
        FROM path p
        JOIN chat_message m ON m.session_id = :session_id AND m.user_id = :user_id
                           AND m.seq = p.parent_seq
        WHERE p.n < :limit
    )
    SELECT t.id AS turn_id, t.user_seq, t.heartbeat_at, t.idempotency_key, t.request_hash,
           (SELECT coalesce(json_agg(json_build_array(p.seq, p.role, p.content, p.image_url,
                                                      p.content_sealed, p.key_id)
                                     ORDER BY p.n), '[]')
            FROM path p) AS context,
           (SELECT seq FROM start) AS parent_seq,
           (SELECT role FROM target) AS target_role,
           (SELECT parent_seq FROM target) AS target_parent_seq,
           (SELECT seq FROM asked) AS asked_seq,
           (SELECT role FROM asked) AS asked_role,
           (SELECT content FROM asked) AS asked_content,
           (SELECT content_sealed FROM asked) AS asked_sealed,
           (SELECT key_id FROM asked) AS asked_key_id
    FROM (SELECT 1) AS one
    LEFT JOIN chat_turn t ON t.session_id = :session_id AND t.user_id = :user_id
                         AND t.status = 'generating'
    """
)

ARCHIVE_SESSION = sa.text(
    """
    UPDATE chat_session SET status = 'archived', archived_at = :now
    WHERE id = :session_id AND user_id = :user_id
    """
)

# `POST /api/chat` with `restore`: the archived session becomes active again, in the turn's
# opening transaction (the append that follows sets its last activity).
RESTORE_SESSION = sa.text(
    """
    UPDATE chat_session SET status = 'active', archived_at = NULL
    WHERE id = :session_id AND user_id = :user_id
    """
)


def notify_params(payloads: list[str]) -> dict[str, Any]:
    """Parameters of the `notified` part of a turn's last statement: the events that the
    PostgreSQL bus would otherwise send in a statement of their own before the commit
    (none with another bus). A SELECT in a WITH runs only when referenced, hence the
    RETURNING that counts it."""
    return {"channel": CHANNEL, "payloads": payloads}


def sealed_content(
    keyring: Keyring | None, *, user_id: uuid.UUID, session_id: str, seq: int, content: str
) -> dict[str, Any]:
    """`content`, `content_sealed` and `key_id` of a message row: the text as it is, or
    sealed with ENCRYPTION_KEYS (`app.encryption.sealed`, the ORM's own rule for messages)."""
    row = {"user_id": user_id, "session_id": session_id, "seq": seq, "content": content}
    sealed = seal_row(keyring, ChatMessage, row)
    return {
        "content": sealed["content"],
        "content_sealed": sealed.get("content_sealed"),
        "key_id": sealed.get("key_id"),
    }


def sealed_title(
    keyring: Keyring | None, *, user_id: uuid.UUID, session_id: str, title: str
) -> dict[str, Any]:
    """`title`, `title_sealed` and `title_key_id` of a new session row."""
    sealed = seal_row(keyring, ChatSession, {"user_id": user_id, "id": session_id, "title": title})
    return {
        "title": sealed["title"],
        "title_sealed": sealed.get("title_sealed"),
        "title_key_id": sealed.get("key_id"),
    }


def _joined(*parts: str) -> sa.TextClause:
    """One statement from constant parts (no input ever goes into the text)."""
    return sa.text("".join(parts))


_TURN = """
    INSERT INTO chat_turn
        (id, user_id, session_id, status, user_seq, assistant, expired_session_id,
         idempotency_key, request_hash, started_at, heartbeat_at)
    VALUES (:turn_id, :user_id, :session_id, 'generating', :seq, :assistant,
            :expired_session_id, :idempotency_key, :request_hash, :now, :now)
    RETURNING (SELECT count(*) FROM notified) AS notified
"""

# Both openings end alike: the user's message (a child of `:parent_seq`, one deeper) and
# the turn (the RETURNING runs `notified`).
_MESSAGE_AND_TURN = "".join(
    (
        """
    user_message AS (
        INSERT INTO chat_message
            (session_id, seq, user_id, parent_seq, depth, role, content, content_sealed,
             key_id, image_url, metadata, created_at)
        VALUES (:session_id, :seq, :user_id, CAST(:parent_seq AS integer),
                coalesce((SELECT depth FROM chat_message
                          WHERE session_id = CAST(:session_id AS varchar) AND user_id = :user_id
                            AND seq = CAST(:parent_seq AS integer)), 0) + 1,
                'user', :content, :content_sealed, :key_id, NULL, :meta, :now)
    )
    """,
        _TURN,
    )
)

# Step 1's writes on an existing session: its count, head and activity, the user's
# message and the turn, in one statement (the session row is already locked).
OPEN_ON_SESSION = _joined(
    """
    WITH notified AS (
        SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) p
    ),
    session_row AS (
        UPDATE chat_session SET message_count = :seq, head_seq = :seq, last_activity_at = :now
        WHERE id = :session_id AND user_id = :user_id
    ),
    """,
    _MESSAGE_AND_TURN,
).bindparams(sa.bindparam("meta", type_=JSONB))

# Step 1's writes of a regenerated reply: no new user message (the turn answers the stored
# one, `:seq`); the session's activity and the turn, in one statement.
OPEN_REGENERATE = _joined(
    """
    WITH notified AS (
        SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) p
    ),
    session_row AS (
        UPDATE chat_session SET last_activity_at = :now
        WHERE id = :session_id AND user_id = :user_id
    )
    """,
    _TURN,
)

# Step 1's writes for a new session: the session, the user's message and the turn.
OPEN_WITH_NEW_SESSION = _joined(
    """
    WITH notified AS (
        SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) p
    ),
    new_session AS (
        INSERT INTO chat_session
            (id, user_id, title, title_sealed, key_id, status, created_at, last_activity_at,
             message_count, head_seq, pinned, tags, prompt_tokens, completion_tokens)
        VALUES (:session_id, :user_id, :title, :title_sealed, :title_key_id, 'active', :now,
                :now, 1, 1, false, '{}', 0, 0)
    ),
    """,
    _MESSAGE_AND_TURN,
).bindparams(sa.bindparam("meta", type_=JSONB))

# Step 3's first statement: lock the session row, give the reply the next `seq`, count its
# tokens and end the turn, if the turn is still this process's to end; the head moves to
# the reply unless it was moved elsewhere while the model wrote (`:expected_head` is the
# head the turn left). Answers (session's message count, reply seq): a null count means
# the session is gone; a null reply seq means the turn was failed elsewhere (and nothing
# changed).
CLAIM_REPLY = sa.text(
    """
    WITH locked AS (
        SELECT id, message_count FROM chat_session
        WHERE id = :session_id AND user_id = :user_id
        FOR UPDATE
    ),
    claimed AS (
        UPDATE chat_turn
        SET status = :status, reply_seq = (SELECT message_count + 1 FROM locked),
            partial_reply = NULL, prompt_tokens = :prompt_tokens,
            completion_tokens = :completion_tokens, finished_at = :now, heartbeat_at = :now
        WHERE id = :turn_id AND session_id = :session_id AND user_id = :user_id
          AND status = 'generating'
          AND EXISTS (SELECT 1 FROM locked)
        RETURNING reply_seq
    ),
    bumped AS (
        UPDATE chat_session
        SET message_count = message_count + 1, last_activity_at = :now,
            head_seq = CASE WHEN head_seq IS NOT DISTINCT FROM CAST(:expected_head AS integer)
                            THEN (SELECT reply_seq FROM claimed) ELSE head_seq END,
            prompt_tokens = prompt_tokens + :prompt_add,
            completion_tokens = completion_tokens + :completion_add
        WHERE id = :session_id AND user_id = :user_id AND EXISTS (SELECT 1 FROM claimed)
    )
    SELECT (SELECT message_count FROM locked) AS message_count,
           (SELECT reply_seq FROM claimed) AS reply_seq
    """
)

# Step 3's reply (a child of the message it answers), after the assistant recorded what
# it names.
INSERT_REPLY = sa.text(
    """
    WITH notified AS (
        SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) p
    )
    INSERT INTO chat_message
        (session_id, seq, user_id, parent_seq, depth, role, content, content_sealed, key_id,
         image_url, metadata, created_at)
    VALUES (:session_id, :seq, :user_id, :parent_seq,
            coalesce((SELECT depth FROM chat_message
                      WHERE session_id = CAST(:session_id AS varchar)
                        AND user_id = :user_id AND seq = :parent_seq), 0) + 1,
            'assistant', :content, :content_sealed, :key_id, :image_url, :meta, :now)
    RETURNING (SELECT count(*) FROM notified) AS notified
    """
).bindparams(sa.bindparam("meta", type_=JSONB))


# The checkpoint's heartbeat: one small statement for every turn generating in a process,
# apart from the partial replies (which may be large, or wait on a lock).
HEARTBEAT = sa.text(
    """
    UPDATE chat_turn SET heartbeat_at = :now
    WHERE id = ANY(CAST(:ids AS uuid[])) AND status = 'generating'
    RETURNING id, cancel_requested_at IS NOT NULL AS cancel
    """
)

# The checkpoint's partial replies (each at most MAX_REPLY_CHARS), after the heartbeat.
SAVE_PARTIALS = sa.text(
    """
    UPDATE chat_turn AS t SET partial_reply = v.text
    FROM unnest(CAST(:ids AS uuid[]), CAST(:texts AS text[])) AS v(id, text)
    WHERE t.id = v.id AND t.status = 'generating'
    RETURNING t.id
    """
)

# A time limit on the rest of the current transaction (waiting on locks included).
LIMIT_TRANSACTION = sa.text(
    "SELECT set_config('statement_timeout', :limit, true), set_config('lock_timeout', :limit, true)"
)
