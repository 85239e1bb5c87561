"""The drafting assistant: turns chat messages into drafts, versions and published posts.

What to do is decided from the message and the draft ledger: by the deterministic rules
(`intents.classify`) for the built-in writer, or by the model through tool calls when one
is configured. What actually happens is always the ledger's call: a model can ask to
publish, but only a pending draft is ever published. What to write is the writer's job:
the built-in templates (`TemplateWriter`) or a language model (`openai_compat.LlmWriter`).

The three steps of the seam (`app.assistant.base`):
- `prepare` reads the ledger in the turn's opening transaction;
- `generate` writes, draws and publishes with no connection held, streaming the reply;
- `record` writes the draft, version or publication in the closing transaction.
A conversation has at most one turn generating at a time, so the ledger read in `prepare`
is still the ledger when `record` runs; `record` re-reads under lock all the same.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.assistant.base import (
    DraftRequest,
    RecordedReply,
    ReplyOutput,
    TurnInput,
    Writer,
    WrittenDraft,
)
from app.assistant.catalog import ModelChoice, choice_for
from app.assistant.composer import compose_post
from app.assistant.intents import Intent, IntentKind, classify
from app.assistant.platforms import DEFAULT_PLATFORM, canonical_platform, display_name
from app.assistant.replies import (
    CANCELLED,
    DRAFT_STILL_WAITING,
    NOTHING_TO_CANCEL,
    NOTHING_TO_PUBLISH,
    NOTHING_TO_REGENERATE,
    OFFLINE_NOTE,
    PUBLISHED,
    QUESTION,
    describe_capabilities,
    draft_lead,
    no_image,
    publish_failed,
)
from app.drafts import ledger
from app.drafts.ledger import LedgerState
from app.drafts.models import DraftStatus, PostDraft, PostDraftVersion
from app.drafts.publisher import (
    OutgoingImage,
    OutgoingPost,
    Publisher,
    PublishError,
)
from app.drafts.schemas import image_url
from app.imaging.images import (
    GeneratedImage,
    ImageGenerationError,
    ImageGenerator,
    ImageRequest,
)

logger = logging.getLogger("app.assistant")

_HASHTAG = re.compile(r"(?<![\w#])#\w+", re.UNICODE)
_WORD_CHUNK = re.compile(r"\S+\s*|\s+")


def hashtags_in(text: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tag in _HASHTAG.findall(text):
        seen.setdefault(tag, None)
    return tuple(seen)


async def write_in_chunks(out: ReplyOutput, text: str) -> None:
    """Stream a text that is already whole, word by word, as a model would."""
    for chunk in _WORD_CHUNK.findall(text):
        out.write(chunk)
        await asyncio.sleep(0)  # let followers see each delta


class TemplateWriter:
    """The built-in writer: `composer.compose_post`, no network."""

    name = "builtin"
    decides_intents = False
    label = "Chatkeep's built-in post writer (no language model)"
    model_name: str | None = None
    model_id = "builtin"

    async def decide(
        self, *, turn: TurnInput, state: LedgerState, out: ReplyOutput
    ) -> Intent | None:  # pragma: no cover - the rules decide for this writer
        raise NotImplementedError

    async def write_draft(
        self,
        *,
        request: DraftRequest,
        version: int,
        turn: TurnInput,
        state: LedgerState,
        out: ReplyOutput,
    ) -> WrittenDraft:
        draft = compose_post(
            platform=request.platform,
            topic=request.topic,
            context=request.context,
            version=version,
        )
        await write_in_chunks(out, draft.text)
        return WrittenDraft(text=draft.text, hashtags=draft.hashtags)

    async def answer(
        self, *, intent: Intent, turn: TurnInput, state: LedgerState, out: ReplyOutput
    ) -> None:
        await write_in_chunks(out, builtin_answer(intent, state))


def builtin_answer(intent: Intent, state: LedgerState) -> str:
    """What the offline assistant says when it has nothing to draft or publish."""
    if intent.kind == IntentKind.QUESTION or (
        intent.kind == IntentKind.UNCLEAR and intent.offline_language
    ):
        text = OFFLINE_NOTE
        return f"{text}\n\n{DRAFT_STILL_WAITING}" if state.has_pending else text
    if intent.kind == IntentKind.UNCLEAR and intent.clarification:
        return intent.clarification
    if intent.kind == IntentKind.SMALLTALK:
        return "Happy to help! " + describe_capabilities()
    return describe_capabilities()


# -- what a turn prepared, and what it achieved ----------------------------------------


@dataclass(frozen=True)
class Prepared:
    """The ledger as the turn opened, and what the rules made of the message."""

    state: LedgerState
    intent: Intent | None  # None: the writer's model decides in `generate`
    pending_version: PostDraftVersion | None


@dataclass(frozen=True)
class NewDraft:
    request: DraftRequest
    written: WrittenDraft
    image: GeneratedImage | None


@dataclass(frozen=True)
class NewVersion:
    base: PostDraft
    request: DraftRequest
    number: int
    written: WrittenDraft
    image: GeneratedImage | None


@dataclass(frozen=True)
class Publication:
    pending: PostDraft
    version: PostDraftVersion
    external_id: str | None


@dataclass(frozen=True)
class Cancellation:
    pending: PostDraft


@dataclass
class Outcome:
    """Set on the output once its effect is complete; `record` writes `action`."""

    intent: Intent
    action: NewDraft | NewVersion | Publication | Cancellation | None = None
    draft: PostDraft | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class DraftingAssistant:
    def __init__(
        self,
        *,
        writer: Writer,
        images: ImageGenerator,
        publisher: Publisher,
        name: str | None = None,
        more_models: Sequence[ModelChoice] = (),
    ) -> None:
        self.writer = writer  # the default model's
        self.images = images
        self.publisher = publisher
        self.name = name or writer.name
        default = choice_for(writer)
        # Every model a conversation may choose, the default first.
        self.models: dict[str, ModelChoice] = {default.id: default}
        for choice in more_models:
            self.models.setdefault(choice.id, choice)
        self.default_model = default

    def model_for(self, turn: TurnInput) -> ModelChoice:
        """The conversation's model; the default when it has none or one no longer here."""
        if turn.model is None:
            return self.default_model
        return self.models.get(turn.model, self.default_model)

    def _writer(self, turn: TurnInput) -> Writer:
        return self.model_for(turn).writer

    def _draft_writer(self, turn: TurnInput) -> str:
        """Who wrote a draft's words, as the ledger records it."""
        writer = self._writer(turn)
        return str(getattr(writer, "draft_writer_name", writer.name))

    # -- step 1: read the ledger -------------------------------------------------------

    async def prepare(self, *, db: AsyncSession, turn: TurnInput) -> Prepared:
        # The drafts of the branch this message continues (none for a first message).
        read = await ledger.turn_ledger(
            session=db, user_id=turn.user_id, session_id=turn.session_id, from_seq=turn.parent_seq
        )
        state, pending_version = read.state, read.pending_version
        intent = None
        if not self._writer(turn).decides_intents:
            intent = classify(
                turn.message, has_pending_draft=state.has_pending, has_any_draft=state.has_any
            )
        return Prepared(state=state, intent=intent, pending_version=pending_version)

    # -- step 2: write, draw, publish (no connection held) -----------------------------

    async def generate(
        self,
        *,
        turn: TurnInput,
        prepared: Prepared,
        out: ReplyOutput,
        reader: async_sessionmaker[AsyncSession],
    ) -> None:
        state = prepared.state
        intent = prepared.intent
        if intent is None:
            intent = await self._writer(turn).decide(turn=turn, state=state, out=out)
            if intent is None:  # the model answered in its own words
                out.set_outcome(Outcome(Intent(IntentKind.QUESTION)))
                return
            if out.text and not out.text.endswith("\n"):
                out.write("\n\n")
        if intent.kind == IntentKind.CREATE_POST and intent.topic:
            request = DraftRequest(
                platform=canonical_platform(intent.platform) or DEFAULT_PLATFORM,
                topic=intent.topic,
                context=turn.context,
                with_image=intent.with_image,
            )
            await self._new_draft(turn, state, intent, request, out)
        elif intent.kind == IntentKind.REGENERATE and state.latest is not None:
            await self._regenerate(turn, state, intent, state.latest, out)
        elif intent.kind == IntentKind.REGENERATE:
            await write_in_chunks(out, NOTHING_TO_REGENERATE)
            out.set_outcome(Outcome(intent))
        elif intent.kind == IntentKind.PUBLISH and state.pending is not None:
            await self._publish(turn, prepared, intent, state.pending, out, reader)
        elif intent.kind == IntentKind.PUBLISH:
            await write_in_chunks(out, NOTHING_TO_PUBLISH)
            out.set_outcome(Outcome(intent))
        elif intent.kind == IntentKind.CANCEL:
            await self._cancel(intent, state.pending, out)
        else:
            await self._writer(turn).answer(intent=intent, turn=turn, state=state, out=out)
            out.set_outcome(Outcome(intent, draft=state.pending))

    async def _image_for(
        self, request: DraftRequest, version: int
    ) -> tuple[GeneratedImage | None, str | None]:
        if not request.with_image:
            return None, None
        platform = display_name(request.platform)
        try:
            image = await self.images.generate(
                ImageRequest(
                    title=request.topic,
                    subtitle=f"{platform} post",
                    seed=f"{request.platform}|{request.topic}|{request.context or ''}|{version}",
                    prompt=(
                        f"An eye-catching image for a {platform} post about {request.topic}. "
                        "No text in the image."
                    ),
                )
            )
        except ImageGenerationError as exc:
            logger.warning("image generation failed: %s", exc)
            return None, str(exc)
        return image, None

    async def _write_draft(
        self,
        turn: TurnInput,
        state: LedgerState,
        request: DraftRequest,
        version: int,
        out: ReplyOutput,
    ) -> tuple[WrittenDraft, GeneratedImage | None]:
        lead = draft_lead(display_name(request.platform), request.topic, version)
        out.write(lead + "\n\n")
        written = await self._writer(turn).write_draft(
            request=request, version=version, turn=turn, state=state, out=out
        )
        image, image_problem = await self._image_for(request, version)
        if image_problem:
            out.write("\n\n" + no_image(image_problem))
        out.write("\n\n" + QUESTION)
        return written, image

    async def _new_draft(
        self,
        turn: TurnInput,
        state: LedgerState,
        intent: Intent,
        request: DraftRequest,
        out: ReplyOutput,
    ) -> None:
        written, image = await self._write_draft(turn, state, request, 1, out)
        out.set_outcome(Outcome(intent, NewDraft(request, written, image)))

    async def _regenerate(
        self,
        turn: TurnInput,
        state: LedgerState,
        intent: Intent,
        base: PostDraft,
        out: ReplyOutput,
    ) -> None:
        request = DraftRequest(
            platform=canonical_platform(intent.platform) or base.platform,
            topic=base.topic,
            context=base.context,
            with_image=base.with_image or intent.with_image,
        )
        number = base.current_version + 1
        written, image = await self._write_draft(turn, state, request, number, out)
        out.set_outcome(Outcome(intent, NewVersion(base, request, number, written, image)))

    async def _publish(
        self,
        turn: TurnInput,
        prepared: Prepared,
        intent: Intent,
        pending: PostDraft,
        out: ReplyOutput,
        reader: async_sessionmaker[AsyncSession],
    ) -> None:
        version = prepared.pending_version
        if version is None:  # pragma: no cover - a draft always has its current version
            raise RuntimeError("draft without its current version")
        # Short reads of their own: never hold a connection across the publisher's call.
        async with reader() as db:
            existing = await ledger.published_post_for_draft(
                session=db, user_id=turn.user_id, draft_id=pending.id
            )
            image = None
            if existing is None and version.image_id is not None:
                stored = await ledger.get_owned_image(
                    session=db, user_id=turn.user_id, image_id=str(version.image_id)
                )
                image = OutgoingImage(content_type=stored.content_type, data=stored.data)
        if existing is not None:
            external_id = existing.external_id
        else:
            outgoing = OutgoingPost(
                id=ledger.post_id_for(pending.id),
                idempotency_key=str(pending.id),
                user_id=turn.user_id,
                session_id=turn.session_id,
                draft_id=pending.id,
                version=version.version,
                platform=pending.platform,
                text=version.text,
                hashtags=list(version.hashtags),
                image=image,
                requested_at=turn.now,
            )
            try:
                with out.shielded():  # a stop must not cut a publication in half
                    result = await self.publisher.publish(outgoing)
                    out.set_outcome(
                        Outcome(intent, Publication(pending, version, result.external_id))
                    )
            except PublishError as exc:
                logger.warning("publishing draft %s failed: %s", pending.id, exc)
                meta = {"publishError": str(exc)}
                out.set_outcome(Outcome(intent, draft=pending, metadata=meta))
                await write_in_chunks(out, publish_failed(str(exc)))
                return
            external_id = result.external_id
        out.set_outcome(Outcome(intent, Publication(pending, version, external_id)))
        await write_in_chunks(out, PUBLISHED)

    async def _cancel(self, intent: Intent, pending: PostDraft | None, out: ReplyOutput) -> None:
        if pending is None:
            out.set_outcome(Outcome(intent))
            await write_in_chunks(out, NOTHING_TO_CANCEL)
            return
        out.set_outcome(Outcome(intent, Cancellation(pending)))
        await write_in_chunks(out, CANCELLED)

    # -- step 3: write the ledger ------------------------------------------------------

    async def record(
        self,
        *,
        db: AsyncSession,
        turn: TurnInput,
        prepared: Prepared,
        outcome: Outcome | None,
        stopped: bool,
    ) -> RecordedReply:
        recorded = await self._record(db, turn, outcome)
        # Every reply names the model that wrote it (its conversation's, or the default).
        recorded.metadata["model"] = self.model_for(turn).id
        return recorded

    async def _record(
        self, db: AsyncSession, turn: TurnInput, outcome: Outcome | None
    ) -> RecordedReply:
        if outcome is None:  # stopped (or failed) before anything was complete
            return RecordedReply(metadata={})
        action = outcome.action
        if isinstance(action, NewDraft):
            return await self._record_draft(db, turn, outcome, action)
        if isinstance(action, NewVersion):
            return await self._record_version(db, turn, outcome, action)
        if isinstance(action, Publication):
            return await self._record_publication(db, turn, outcome, action)
        if isinstance(action, Cancellation):
            pending = await self._locked(db, turn, action.pending)
            if pending.status == DraftStatus.PENDING:
                await ledger.cancel_draft(session=db, draft=pending, now=turn.now)
            meta = self._meta(outcome.intent, pending, pending.current_version)
            meta["draftStatus"] = pending.status
            return RecordedReply(metadata=meta)
        meta = self._meta(outcome.intent, outcome.draft)
        meta.update(outcome.metadata)
        return RecordedReply(metadata=meta)

    async def _store(
        self, db: AsyncSession, turn: TurnInput, image: GeneratedImage | None
    ) -> uuid.UUID | None:
        if image is None:
            return None
        stored = await ledger.store_image(
            session=db,
            user_id=turn.user_id,
            content_type=image.content_type,
            data=image.data,
            source=image.source,
            now=turn.now,
        )
        return stored.id

    async def _record_draft(
        self, db: AsyncSession, turn: TurnInput, outcome: Outcome, action: NewDraft
    ) -> RecordedReply:
        stored = await self._store(db, turn, action.image)
        draft, version = await self._create_draft(
            db, turn, action.request, action.written, stored, request_message_seq=turn.message_seq
        )
        return self._draft_reply(outcome.intent, draft, version.version, stored)

    async def _create_draft(
        self,
        db: AsyncSession,
        turn: TurnInput,
        request: DraftRequest,
        written: WrittenDraft,
        image_id: uuid.UUID | None,
        *,
        request_message_seq: int,
        version: int = 1,
        parent_draft_id: uuid.UUID | None = None,
    ) -> tuple[PostDraft, PostDraftVersion]:
        return await ledger.create_draft(
            session=db,
            user_id=turn.user_id,
            session_id=turn.session_id,
            request_message_seq=request_message_seq,
            source_message_seq=turn.message_seq,
            platform=request.platform,
            topic=request.topic,
            context=request.context,
            with_image=request.with_image,
            text=written.text,
            hashtags=written.hashtags,
            image_id=image_id,
            writer=self._draft_writer(turn),
            now=turn.now,
            version=version,
            parent_draft_id=parent_draft_id,
        )

    async def _record_version(
        self, db: AsyncSession, turn: TurnInput, outcome: Outcome, action: NewVersion
    ) -> RecordedReply:
        stored = await self._store(db, turn, action.image)
        base, request = action.base, action.request
        # Re-read under lock: one turn at a time per conversation makes a change unlikely,
        # but the ledger, not that rule, is what keeps versions straight.
        current = await ledger.latest_draft(
            session=db, user_id=turn.user_id, session_id=turn.session_id, for_update=True
        )
        same = current is not None and current.id == base.id
        if (
            same
            and current is not None
            and current.status == DraftStatus.PENDING
            and request.platform == current.platform
            and request.with_image == current.with_image
        ):
            draft = current
            row = await ledger.add_version(
                session=db,
                draft=current,
                text=action.written.text,
                hashtags=action.written.hashtags,
                image_id=stored,
                source_message_seq=turn.message_seq,
                writer=self._draft_writer(turn),
                now=turn.now,
            )
        else:
            # Published, cancelled or changed: a new draft for the same original request.
            draft, row = await self._create_draft(
                db,
                turn,
                request,
                action.written,
                stored,
                request_message_seq=base.request_message_seq,
                version=action.number,
                parent_draft_id=base.id,
            )
        return self._draft_reply(outcome.intent, draft, row.version, stored)

    @staticmethod
    async def _locked(db: AsyncSession, turn: TurnInput, draft: PostDraft) -> PostDraft:
        """The draft read in `prepare`, again, in this transaction and under lock."""
        found = await ledger.owned_draft(
            session=db, user_id=turn.user_id, draft_id=draft.id, for_update=True
        )
        if found is None:  # pragma: no cover - drafts go only with their conversation
            raise RuntimeError("the draft disappeared during the turn")
        return found

    async def _record_publication(
        self, db: AsyncSession, turn: TurnInput, outcome: Outcome, action: Publication
    ) -> RecordedReply:
        pending = await self._locked(db, turn, action.pending)
        post, _created = await ledger.record_publication(
            session=db,
            draft=pending,
            version=action.version,
            publisher=self.publisher.name,
            external_id=action.external_id,
            now=turn.now,
        )
        meta = self._meta(outcome.intent, pending, action.version.version)
        meta.update({"postId": str(post.id), "draftStatus": pending.status})
        return RecordedReply(metadata=meta)

    def _draft_reply(
        self, intent: Intent, draft: PostDraft, version: int, image_id: uuid.UUID | None
    ) -> RecordedReply:
        url = image_url(image_id)
        meta = self._meta(intent, draft, version)
        meta.update({"platform": draft.platform, "draftStatus": draft.status})
        if url:
            meta["imageUrl"] = url
        return RecordedReply(image_url=url, metadata=meta)

    @staticmethod
    def _meta(
        intent: Intent, draft: PostDraft | None, version: int | None = None
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"intent": intent.kind.value}
        if draft is not None:
            meta["draftId"] = str(draft.id)
            meta["draftVersion"] = version if version is not None else draft.current_version
        return meta
