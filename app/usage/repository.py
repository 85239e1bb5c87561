"""The SQL of usage and budgets.

`BudgetRepository` is built for one owner: its budget row and the tokens its turns used,
from the `usage_day` ledger (kept by a trigger on `chat_turn`, so deleted conversations
still count).
`UsageOperatorRepository` reads across users, for the admin usage view only.
Tokens are what turns already record (`chat_turn.prompt_tokens`, `completion_tokens`);
the model that wrote a reply is in its message's metadata (`model`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.models import User
from app.conversations.models import ChatMessage, ChatSession
from app.core.tenancy import owned, owned_delete
from app.turns.models import ChatTurn
from app.usage.models import UsageBudget, UsageDay

_turn = ChatTurn.__table__  # type: ignore[attr-defined]
_budget = UsageBudget.__table__  # type: ignore[attr-defined]
_day = UsageDay.__table__  # type: ignore[attr-defined]
_session = ChatSession.__table__  # type: ignore[attr-defined]
_message = ChatMessage.__table__  # type: ignore[attr-defined]
_user = User.__table__  # type: ignore[attr-defined]

# A turn's tokens, prompt and completion (null when its assistant used no model).
TURN_TOKENS = sa.func.coalesce(_turn.c.prompt_tokens, 0) + sa.func.coalesce(
    _turn.c.completion_tokens, 0
)


@dataclass(frozen=True)
class BudgetRow:
    """The user's own figures (None: the configured one) and what they used."""

    tokens_per_day: int | None
    tokens_per_month: int | None
    used_today: int
    used_this_month: int


class BudgetRepository:
    """One owner's budget and usage."""

    def __init__(self, db: AsyncSession, user_id: uuid.UUID) -> None:
        self.db = db
        self.user_id = user_id

    async def standing(self, *, day_start: datetime, month_start: datetime) -> BudgetRow:
        """One statement: the budget row, if any, and the tokens used since both starts
        (UTC midnights), from the ledger (at most 31 rows of `usage_day`)."""
        today, first = day_start.date(), month_start.date()
        used = (
            owned(
                _day,
                self.user_id,
                sa.func.coalesce(sa.func.sum(_day.c.tokens).filter(_day.c.day >= today), 0).label(
                    "day"
                ),
                sa.func.coalesce(sa.func.sum(_day.c.tokens).filter(_day.c.day >= first), 0).label(
                    "month"
                ),
            )
            .where(_day.c.day >= min(today, first))
            .subquery("used")
        )
        budget = owned(_budget, self.user_id).subquery("budget")
        row = (
            await self.db.execute(
                sa.select(
                    budget.c.tokens_per_day, budget.c.tokens_per_month, used.c.day, used.c.month
                ).select_from(used.outerjoin(budget, sa.true()))
            )
        ).one()
        return BudgetRow(row[0], row[1], int(row[2]), int(row[3]))

    async def get(self) -> UsageBudget | None:
        return (await self.db.execute(owned(UsageBudget, self.user_id))).scalar_one_or_none()

    async def put(
        self, *, tokens_per_day: int | None, tokens_per_month: int | None, now: datetime
    ) -> None:
        values = {
            "user_id": self.user_id,
            "tokens_per_day": tokens_per_day,
            "tokens_per_month": tokens_per_month,
            "updated_at": now,
        }
        stmt = insert(_budget).values(values)
        await self.db.execute(
            stmt.on_conflict_do_update(
                index_elements=[_budget.c.user_id],
                set_={k: stmt.excluded[k] for k in values if k != "user_id"},
            )
        )

    async def delete(self) -> None:
        await self.db.execute(owned_delete(UsageBudget, self.user_id))


@dataclass(frozen=True)
class UserUsageRow:
    user_id: uuid.UUID
    email: str
    created_at: datetime
    conversations: int
    messages: int
    last_active_at: datetime | None
    tokens_per_day: int | None
    tokens_per_month: int | None


@dataclass(frozen=True)
class ModelTokensRow:
    user_id: uuid.UUID
    model: str | None
    turns: int
    prompt_tokens: int
    completion_tokens: int
    today: int
    this_month: int


class UsageOperatorRepository:
    """Reads across users, for the admin usage view only."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def users_page(
        self, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[UserUsageRow]:
        """Users in order of sign-up, `limit` of them after the keyset `after`, each with
        counts of their conversations (every status; not the temporary ones, which are not
        kept), messages and last activity."""
        sessions = (
            sa.select(
                sa.func.count().label("conversations"),
                sa.func.coalesce(sa.func.sum(_session.c.message_count), 0).label("messages"),
                sa.func.max(_session.c.last_activity_at).label("last_active_at"),
            )
            .where(
                _session.c.user_id == _user.c.id,  # operator: every user's
                sa.not_(_session.c.temporary),
            )
            .lateral("sessions")
        )
        stmt = (
            sa.select(
                _user.c.id,
                _user.c.email,
                _user.c.created_at,
                sessions.c.conversations,
                sessions.c.messages,
                sessions.c.last_active_at,
                _budget.c.tokens_per_day,
                _budget.c.tokens_per_month,
            )
            .select_from(
                _user.outerjoin(sessions, sa.true()).outerjoin(
                    _budget, _budget.c.user_id == _user.c.id
                )
            )
            .order_by(_user.c.created_at, _user.c.id)
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(
                sa.tuple_(_user.c.created_at, _user.c.id)
                > sa.tuple_(sa.literal(after[0]), sa.literal(after[1]))
            )
        rows = (await self.db.execute(stmt)).all()
        return [
            UserUsageRow(
                user_id=r.id,
                email=r.email,
                created_at=r.created_at,
                conversations=int(r.conversations),
                messages=int(r.messages),
                last_active_at=r.last_active_at,
                tokens_per_day=r.tokens_per_day,
                tokens_per_month=r.tokens_per_month,
            )
            for r in rows
        ]

    async def tokens_by_model(
        self, *, user_ids: list[uuid.UUID], day_start: datetime, month_start: datetime
    ) -> list[ModelTokensRow]:
        """Tokens of these users' turns, by the model that wrote the reply (None: a turn
        with no stored reply, or from before models were recorded)."""
        if not user_ids:
            return []
        reply = _message.alias("reply")
        model: Any = reply.c.metadata["model"].astext
        stmt = (
            sa.select(
                _turn.c.user_id,
                model.label("model"),
                sa.func.count().label("turns"),
                sa.func.coalesce(sa.func.sum(_turn.c.prompt_tokens), 0).label("prompt"),
                sa.func.coalesce(sa.func.sum(_turn.c.completion_tokens), 0).label("completion"),
                sa.func.coalesce(
                    sa.func.sum(TURN_TOKENS).filter(_turn.c.started_at >= day_start), 0
                ).label("today"),
                sa.func.coalesce(
                    sa.func.sum(TURN_TOKENS).filter(_turn.c.started_at >= month_start), 0
                ).label("this_month"),
            )
            .select_from(
                _turn.outerjoin(
                    reply,
                    sa.and_(
                        reply.c.session_id == _turn.c.session_id,
                        reply.c.seq == _turn.c.reply_seq,
                        reply.c.user_id == _turn.c.user_id,
                    ),
                )
            )
            .where(
                col(_turn.c.user_id).in_(user_ids),
                sa.or_(_turn.c.prompt_tokens.is_not(None), _turn.c.completion_tokens.is_not(None)),
            )
            .group_by(_turn.c.user_id, model)
            .order_by(_turn.c.user_id, model)
        )
        return [
            ModelTokensRow(
                user_id=r.user_id,
                model=r.model,
                turns=int(r.turns),
                prompt_tokens=int(r.prompt),
                completion_tokens=int(r.completion),
                today=int(r.today),
                this_month=int(r.this_month),
            )
            for r in (await self.db.execute(stmt)).all()
        ]
