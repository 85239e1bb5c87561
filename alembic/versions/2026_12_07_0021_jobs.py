"""jobs on a queue in PostgreSQL

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07

`job`: one row per long piece of work of a user (the ZIP of everything, an import), its
state, progress, attempts and outcome; the unfinished ones are the queue (partial index
`ix_job_pending`, taken with FOR UPDATE SKIP LOCKED). `job_chunk`: its input (an uploaded
file) and result (the ZIP) in pieces of about 1 MiB, sealed when ENCRYPTION_KEYS is set.
Deleting a job (expiry, the user's deletion) deletes its chunks.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("progress_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_job_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.UniqueConstraint("id", "user_id", name="uq_job_id_user_id"),
    )
    op.create_index("ix_job_expires_at", "job", ["expires_at"], unique=False)
    op.create_index(
        "ix_job_pending",
        "job",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_index(
        "ix_job_user_created", "job", ["user_id", sa.text("created_at DESC")], unique=False
    )
    op.create_table(
        "job_chunk",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("part", sa.String(length=10), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id", "user_id"],
            ["job.id", "job.user_id"],
            name="fk_job_chunk_job_id_user_id_job",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "part", "n", name=op.f("pk_job_chunk")),
    )
    # The chunks are compressed already (ZIP) or sealed: no TOAST compression attempt.
    op.execute("ALTER TABLE job_chunk ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("job_chunk")
    op.drop_index("ix_job_user_created", table_name="job")
    op.drop_index(
        "ix_job_pending",
        table_name="job",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.drop_index("ix_job_expires_at", table_name="job")
    op.drop_table("job")
