"""A ledger of tokens per user and day, kept by a trigger on chat_turn, for budgets

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-08

Budgets used to sum the tokens of a user's turns; deleting a conversation deleted its
turns, and gave their tokens back. `usage_day` keeps what was used: the trigger
`usage_day_add` adds every change of a turn's tokens (at insert, and at each update of
`prompt_tokens` or `completion_tokens`) to the row of its user and the UTC day the turn
started, in the turn's own transaction. Deleting turns leaves the ledger as it is.

The ledger starts from the turns stored now.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = """
CREATE FUNCTION usage_day_add() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    added bigint := coalesce(NEW.prompt_tokens, 0) + coalesce(NEW.completion_tokens, 0);
BEGIN
    IF TG_OP = 'UPDATE' THEN
        added := added - coalesce(OLD.prompt_tokens, 0) - coalesce(OLD.completion_tokens, 0);
    END IF;
    IF added <> 0 THEN
        INSERT INTO usage_day (user_id, day, tokens)
        VALUES (NEW.user_id, (NEW.started_at AT TIME ZONE 'UTC')::date, added)
        ON CONFLICT (user_id, day) DO UPDATE SET tokens = usage_day.tokens + EXCLUDED.tokens;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "usage_day",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_usage_day_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_usage_day")),
    )
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER usage_day_add AFTER INSERT OR UPDATE OF prompt_tokens, "
        "completion_tokens ON chat_turn FOR EACH ROW EXECUTE FUNCTION usage_day_add()"
    )
    op.execute(
        """
        INSERT INTO usage_day (user_id, day, tokens)
        SELECT user_id, (started_at AT TIME ZONE 'UTC')::date,
               sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0))
        FROM chat_turn
        GROUP BY 1, 2
        HAVING sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) <> 0
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER usage_day_add ON chat_turn")
    op.execute("DROP FUNCTION usage_day_add()")
    op.drop_table("usage_day")
