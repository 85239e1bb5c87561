"""message symbols: the emoji and other symbols a message holds, under a GIN index

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07

`chat_message.content_symbols`: the distinct symbols (emoji, arrows, ©, ...) of a
message's plaintext content, so a search term of symbols is looked up instead of checked
against every message (`app.conversations.symbols`). A trigger fills it on every INSERT
and on every UPDATE of `content`, from `message_symbols(content)`; a sealed message
(ENCRYPTION_KEYS) has a blank `content`, so none of its symbols are stored: it is found
through the blind index as before. The partial GIN index holds only messages with a
symbol.

Existing rows: the column is added with an empty default (no table rewrite), then the
rows that hold a symbol are filled in batches of the primary key; the index is built
last. The character class below is a copy of `app.conversations.symbols.SYMBOL_CLASS` as
it was at this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SYMBOL_CLASS = (
    "["
    r"\u00a2-\u00a6\u00a8-\u00a9\u00ac\u00ae-\u00b1\u00b4\u00b8\u00d7\u00f7\u02c2-\u02c5"
    r"\u02d2-\u02df\u02e5-\u02eb\u02ed\u02ef-\u02ff\u0375\u0384-\u0385\u03f6\u0482"
    r"\u058d-\u058f\u0606-\u0608\u060b\u060e-\u060f\u06de\u06e9\u06fd-\u06fe\u07f6"
    r"\u07fe-\u07ff\u0888\u09f2-\u09f3\u09fa-\u09fb\u0af1\u0b70\u0bf3-\u0bfa\u0c7f\u0d4f"
    r"\u0d79\u0e3f\u0f01-\u0f03\u0f13\u0f15-\u0f17\u0f1a-\u0f1f\u0f34\u0f36\u0f38"
    r"\u0fbe-\u0fc5\u0fc7-\u0fcf\u0fd5-\u0fd8\u109e-\u109f\u1390-\u1399\u166d\u17db\u1940"
    r"\u19de-\u19ff\u1b61-\u1b6a\u1b74-\u1b7c\u1fbd\u1fbf-\u1fc1\u1fcd-\u1fcf\u1fdd-\u1fdf"
    r"\u1fed-\u1fef\u1ffd-\u1ffe\u2044\u2052\u207a-\u207c\u208a-\u208c\u20a0-\u20c0"
    r"\u2100-\u2101\u2103-\u2106\u2108-\u2109\u2114\u2116-\u2118\u211e-\u2123\u2125\u2127"
    r"\u2129\u212e\u213a-\u213b\u2140-\u2144\u214a-\u214d\u214f\u218a-\u2307\u230c-\u2328"
    r"\u232b-\u244a\u249c-\u24e9\u2500-\u2767\u2794-\u27c4\u27c7-\u27e5\u27f0-\u2982"
    r"\u2999-\u29d7\u29dc-\u29fb\u29fe-\u2bff\u2ce5-\u2cea\u2e50-\u2e51\u2e80-\u3002\u3004"
    r"\u3012-\u3013\u3020\u302a-\u302f\u3036-\u3037\u303e-\u303f\u309b-\u309c\u30a0\u30fb"
    r"\u3190-\u3191\u3196-\u319f\u31c0-\u31e3\u3200-\u321e\u322a-\u3247\u3250\u3260-\u327f"
    r"\u328a-\u32b0\u32c0-\u33ff\u4dc0-\u4dff\ua490-\ua4c6\ua700-\ua716\ua720-\ua721"
    r"\ua789-\ua78a\ua828-\ua82b\ua836-\ua839\uaa77-\uaa79\uab5b\uab6a-\uab6b\ufb29"
    r"\ufbb2-\ufbc2\ufd40-\ufd4f\ufdcf\ufdfc-\ufdff\ufe62\ufe64-\ufe66\ufe69\uff04\uff0b"
    r"\uff1c-\uff1e\uff3e\uff40\uff5c\uff5e\uffe0-\uffee\ufffc-\ufffd\U00010137-\U0001013f"
    r"\U00010179-\U00010189\U0001018c-\U000101fc\U00010877-\U00010878\U00010ac8\U0001173f"
    r"\U00011fd5-\U00011ff1\U00016b3c-\U00016b3f\U00016b45\U0001bc9c\U0001cf50-\U0001d164"
    r"\U0001d16a-\U0001d16c\U0001d183-\U0001d184\U0001d18c-\U0001d1a9\U0001d1ae-\U0001d241"
    r"\U0001d245\U0001d300-\U0001d356\U0001d6c1\U0001d6db\U0001d6fb\U0001d715\U0001d735"
    r"\U0001d74f\U0001d76f\U0001d789\U0001d7a9\U0001d7c3\U0001d800-\U0001d9ff"
    r"\U0001da37-\U0001da3a\U0001da6d-\U0001da74\U0001da76-\U0001da83\U0001da85-\U0001da86"
    r"\U0001e14f\U0001e2ff\U0001ecac\U0001ecb0\U0001ed2e\U0001eef0-\U0001f0f5"
    r"\U0001f10d-\U0001fbca"
    "]"
)
BATCH = 20_000

# A text longer than this is not read for its symbols (a reply can be megabytes of emoji:
# reading it would hold its transaction for seconds); it is marked instead, and a symbol
# search checks it as before the index. `app.conversations.symbols` holds the same two.
MAX_CHARS = 100_000
UNREAD = "unread"

# Everything that is not a symbol removed, then the rest split into its code points: about
# twice as fast as collecting every match of the class.
_FUNCTION = (
    """
CREATE FUNCTION message_symbols(content text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE WHEN length(content) > MAX_CHARS THEN ARRAY['UNREAD']
    ELSE (
        SELECT coalesce(array_agg(DISTINCT c), '{}')
        FROM unnest(string_to_array(regexp_replace(content, 'NOT_SYMBOLS+', '', 'g'), NULL)) AS c
    ) END
$$
""".replace("NOT_SYMBOLS", "[^" + SYMBOL_CLASS[1:])
    .replace("MAX_CHARS", str(MAX_CHARS))
    .replace("UNREAD", UNREAD)
)

_TRIGGER_FUNCTION = """
CREATE FUNCTION chat_message_symbols() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.content_symbols := message_symbols(NEW.content);
    RETURN NEW;
END
$$
"""

_TRIGGER = """
CREATE TRIGGER chat_message_symbols
BEFORE INSERT OR UPDATE OF content ON chat_message
FOR EACH ROW EXECUTE FUNCTION chat_message_symbols()
"""

# The last key of the next batch after (:session_id, :seq), in primary-key order.
_BATCH_END = sa.text(
    """
    SELECT session_id, seq FROM chat_message
    WHERE (session_id, seq) > (:session_id, :seq)
    ORDER BY session_id, seq
    OFFSET :last LIMIT 1
    """
)
_FILL = sa.text(
    """
    UPDATE chat_message SET content_symbols = message_symbols(content)
    WHERE (session_id, seq) > (:session_id, :seq)
      AND (CAST(:end_id AS varchar) IS NULL OR (session_id, seq) <= (:end_id, :end_seq))
      AND content ~ 'SYMBOL_CLASS'
    """.replace("SYMBOL_CLASS", SYMBOL_CLASS)
)


def upgrade() -> None:
    op.add_column(
        "chat_message",
        sa.Column(
            "content_symbols",
            ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
    )
    op.execute(_FUNCTION)
    op.execute(_TRIGGER_FUNCTION)
    op.execute(_TRIGGER)
    bind = op.get_bind()
    position = {"session_id": "", "seq": 0}
    while True:
        end = bind.execute(_BATCH_END, {**position, "last": BATCH - 1}).first()
        bounds = (
            {"end_id": end.session_id, "end_seq": end.seq}
            if end
            else {"end_id": None, "end_seq": 0}
        )
        bind.execute(_FILL, {**position, **bounds})
        if end is None:
            break
        position = {"session_id": end.session_id, "seq": end.seq}
    op.create_index(
        "ix_chat_message_user_content_symbols",
        "chat_message",
        ["user_id", "content_symbols"],
        postgresql_using="gin",
        postgresql_where=sa.text("content_symbols <> '{}'::text[]"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_chat_message_user_content_symbols",
        table_name="chat_message",
        postgresql_using="gin",
        postgresql_where=sa.text("content_symbols <> '{}'::text[]"),
    )
    op.execute("DROP TRIGGER chat_message_symbols ON chat_message")
    op.execute("DROP FUNCTION chat_message_symbols()")
    op.drop_column("chat_message", "content_symbols")
    op.execute("DROP FUNCTION message_symbols(text)")
