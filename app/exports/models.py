"""Where imported conversations came from, so importing the same file twice adds nothing."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.db import metadata as _metadata  # noqa: F401  (naming convention first)
from app.core.tenancy import same_owner_fk


class ChatImport(SQLModel, table=True):
    """One imported conversation: its id in the file, a hash of its content, the new session.

    The key (user, source id, content hash) says "this user already imported exactly this
    conversation". Deleting the session deletes the record, so it can be imported again.
    """

    __tablename__ = "chat_import"
    __table_args__ = (
        sa.Index("ix_chat_import_session_id", "session_id"),
        same_owner_fk("chat_import", "session_id", "chat_session"),
    )

    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid,
            sa.ForeignKey("app_user.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    source_id: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    content_hash: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    session_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    imported_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
