"""tenant references carry the owner

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

A row that points at a conversation, a draft or an image points at its (id, user_id), so
the database refuses a row whose owner differs from the owner of what it points at.
`chat_session`, `post_draft` and `stored_image` get UNIQUE (id, user_id) for that (the
primary key stays `id`); then each single-column foreign key is replaced by a composite
one with the same delete rule: CASCADE stays CASCADE, and SET NULL clears only the
pointing column (`SET NULL (col)`, PostgreSQL 15+), so the row keeps its owner.

`published_post.session_id` had no foreign key: a post outlives its conversation. It
still does: deleting the conversation now clears the post's `session_id`. Posts whose
conversation is already gone get a null `session_id` here, before the key is added.

Adding a foreign key reads the referencing table once to validate it, holding a lock that
blocks writes to the two tables until the migration commits: on a large database, run it
at a quiet moment.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, referred table, delete rule): every reference between tenant rows.
_REFERENCES = [
    ("chat_message", "session_id", "chat_session", "CASCADE"),
    ("chat_turn", "session_id", "chat_session", "CASCADE"),
    ("chat_import", "session_id", "chat_session", "CASCADE"),
    ("post_draft", "session_id", "chat_session", "CASCADE"),
    ("post_draft", "parent_draft_id", "post_draft", "SET NULL"),
    ("post_draft_version", "draft_id", "post_draft", "CASCADE"),
    ("post_draft_version", "image_id", "stored_image", "SET NULL"),
    ("published_post", "draft_id", "post_draft", "SET NULL"),
    ("published_post", "session_id", "chat_session", "SET NULL"),
    ("published_post", "image_id", "stored_image", "SET NULL"),
]
_OWNER_KEYS = ["chat_session", "post_draft", "stored_image"]
# published_post.session_id had no foreign key before this revision.
_HAD_NO_KEY = {("published_post", "session_id")}


def _old_name(table: str, column: str, referred: str) -> str:
    return f"fk_{table}_{column}_{referred}"


def _new_name(table: str, column: str, referred: str) -> str:
    return f"fk_{table}_{column}_user_id_{referred}"


def upgrade() -> None:
    for table in _OWNER_KEYS:
        op.create_unique_constraint(f"uq_{table}_id_user_id", table, ["id", "user_id"])
    for table, column, referred, _rule in _REFERENCES:
        if (table, column) not in _HAD_NO_KEY:
            op.drop_constraint(_old_name(table, column, referred), table, type_="foreignkey")
    # Posts of conversations deleted before this revision (or, never written by the app, of
    # someone else's conversation) keep everything but the dangling session id.
    op.execute(
        "UPDATE published_post AS p SET session_id = NULL "
        "WHERE p.session_id IS NOT NULL AND NOT EXISTS ("
        "SELECT 1 FROM chat_session AS s WHERE s.id = p.session_id AND s.user_id = p.user_id)"
    )
    for table, column, referred, rule in _REFERENCES:
        op.create_foreign_key(
            _new_name(table, column, referred),
            table,
            referred,
            [column, "user_id"],
            ["id", "user_id"],
            ondelete=f"SET NULL ({column})" if rule == "SET NULL" else rule,
        )


def downgrade() -> None:
    for table, column, referred, rule in reversed(_REFERENCES):
        op.drop_constraint(_new_name(table, column, referred), table, type_="foreignkey")
        if (table, column) not in _HAD_NO_KEY:
            op.create_foreign_key(
                _old_name(table, column, referred),
                table,
                referred,
                [column],
                ["id"],
                ondelete=rule,
            )
    for table in reversed(_OWNER_KEYS):
        op.drop_constraint(f"uq_{table}_id_user_id", table, type_="unique")
