"""assistant: drafts, their versions, published posts, stored images

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_image",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("byte_size > 0", name=op.f("ck_stored_image_byte_size_positive")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_stored_image_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_image")),
    )
    op.create_table(
        "post_draft",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.String(length=100), nullable=False),
        sa.Column("request_message_seq", sa.Integer(), nullable=False),
        sa.Column("opened_message_seq", sa.Integer(), nullable=False),
        sa.Column("parent_draft_id", sa.Uuid(), nullable=True),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("context", sa.Text(), nullable=True),
        sa.Column("with_image", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'published', 'cancelled', 'superseded')",
            name=op.f("ck_post_draft_status_valid"),
        ),
        sa.CheckConstraint("current_version > 0", name=op.f("ck_post_draft_version_positive")),
        sa.ForeignKeyConstraint(
            ["parent_draft_id"],
            ["post_draft.id"],
            name=op.f("fk_post_draft_parent_draft_id_post_draft"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_session.id"],
            name=op.f("fk_post_draft_session_id_chat_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_post_draft_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_draft")),
    )
    op.create_index(
        "ix_post_draft_user_session_opened",
        "post_draft",
        ["user_id", "session_id", "opened_message_seq"],
        unique=False,
    )
    op.create_index(
        "uq_post_draft_one_pending_per_session",
        "post_draft",
        ["session_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "post_draft_version",
        sa.Column("draft_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "hashtags",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("image_id", sa.Uuid(), nullable=True),
        sa.Column("source_message_seq", sa.Integer(), nullable=False),
        sa.Column("writer", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version > 0", name=op.f("ck_post_draft_version_version_positive")),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["post_draft.id"],
            name=op.f("fk_post_draft_version_draft_id_post_draft"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["stored_image.id"],
            name=op.f("fk_post_draft_version_image_id_stored_image"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_post_draft_version_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("draft_id", "version", name=op.f("pk_post_draft_version")),
    )
    op.create_table(
        "published_post",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("draft_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "hashtags",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("image_id", sa.Uuid(), nullable=True),
        sa.Column("publisher", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["post_draft.id"],
            name=op.f("fk_published_post_draft_id_post_draft"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["stored_image.id"],
            name=op.f("fk_published_post_image_id_stored_image"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_published_post_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_published_post")),
        sa.UniqueConstraint("draft_id", name=op.f("uq_published_post_draft_id")),
    )
    op.create_index(
        "ix_published_post_user_published",
        "published_post",
        ["user_id", "published_at", "id"],
        unique=False,
    )
    # ### end Alembic commands ###


def downgrade() -> None:
    op.drop_index("ix_published_post_user_published", table_name="published_post")
    op.drop_table("published_post")
    op.drop_table("post_draft_version")
    op.drop_index(
        "uq_post_draft_one_pending_per_session",
        table_name="post_draft",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_post_draft_user_session_opened", table_name="post_draft")
    op.drop_table("post_draft")
    op.drop_table("stored_image")
    # ### end Alembic commands ###
