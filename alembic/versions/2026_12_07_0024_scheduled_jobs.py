"""scheduled runs on the job queue; retention

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07

A scheduled run of the instance's own work (the purges) is a `job` row with no owner and
the start of its interval in `scheduled_for`. The unique index on (kind, scheduled_for)
queues each run once per interval, however many processes try
(INSERT ... ON CONFLICT DO NOTHING).

`app_user.retention_days`: a user's retention setting; `retention_run`: what each run of
it moved to the trash (counts).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job", sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
    op.alter_column("job", "user_id", existing_type=sa.Uuid(), nullable=True)
    op.create_check_constraint(
        "scheduled_or_owned", "job", "(user_id IS NULL) = (scheduled_for IS NOT NULL)"
    )
    op.create_index(
        "uq_job_kind_scheduled_for",
        "job",
        ["kind", "scheduled_for"],
        unique=True,
        postgresql_where=sa.text("scheduled_for IS NOT NULL"),
    )
    # What the purges scan.
    op.create_index(
        "ix_chat_turn_idempotency_started",
        "chat_turn",
        ["started_at"],
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_index("ix_account_event_at", "account_event", ["at"])
    op.create_index(
        "ix_shared_link_expires_at",
        "shared_link",
        ["expires_at"],
        postgresql_where=sa.text("expires_at IS NOT NULL"),
    )
    op.add_column("app_user", sa.Column("retention_days", sa.Integer(), nullable=True))
    op.create_table(
        "retention_run",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("trashed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_retention_run_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_run")),
    )
    op.create_index("ix_retention_run_user_id", "retention_run", ["user_id", sa.text("id DESC")])


def downgrade() -> None:
    op.drop_index("ix_retention_run_user_id", table_name="retention_run")
    op.drop_table("retention_run")
    op.drop_column("app_user", "retention_days")
    op.drop_index("ix_shared_link_expires_at", table_name="shared_link")
    op.drop_index("ix_account_event_at", table_name="account_event")
    op.drop_index("ix_chat_turn_idempotency_started", table_name="chat_turn")
    op.execute("DELETE FROM job WHERE user_id IS NULL")
    op.drop_index("uq_job_kind_scheduled_for", table_name="job")
    op.drop_constraint("scheduled_or_owned", "job", type_="check")
    op.alter_column("job", "user_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_column("job", "scheduled_for")
