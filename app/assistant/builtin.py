"""The drafting assistant: turns chat messages into drafts, versions and published posts.

What to do is decided here, deterministically, from the message and the draft ledger
(`intents.classify`); what to write is the writer's job: the built-in templates
(`TemplateWriter`) or a language model (`openai_compat.LlmWriter`).

Per the seam's contract, everything slow or fallible (writing, drawing, publishing)
happens before the first write, and the writes of a turn go in one savepoint.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

from app.assistant import ledger
from app.assistant.base import AssistantReply, AssistantTurn
from app.assistant.composer import (
    DEFAULT_PLATFORM,
    PLATFORM_RULES,
    compose_post,
    describe_capabilities,
)
from app.assistant.images import (
    GeneratedImage,
    ImageGenerationError,
    ImageGenerator,
    ImageRequest,
)
from app.assistant.intents import Intent, IntentKind, canonical_platform, classify
from app.assistant.ledger import LedgerState
from app.assistant.models import DraftStatus, PostDraft
from app.assistant.publisher import (
    OutgoingImage,
    OutgoingPost,
    Publisher,
    PublishError,
)
from app.assistant.schemas import image_url

logger = logging.getLogger("app.assistant")

QUESTION = "Would you like to post this, regenerate, or cancel?"
PUBLISHED = "✅ Your post has been published successfully!"
_HASHTAG = re.compile(r"(?<![\w#])#\w+", re.UNICODE)


@dataclass(frozen=True)
class DraftRequest:
    """The original request, kept with the draft so it can be written again later."""

    platform: str
    topic: str
    context: str | None
    with_image: bool


@dataclass(frozen=True)
class WrittenDraft:
    text: str
    hashtags: tuple[str, ...]


class Writer(Protocol):
    name: str

    async def write_draft(
        self, *, request: DraftRequest, version: int, turn: AssistantTurn, state: LedgerState
    ) -> WrittenDraft: ...

    async def answer(self, *, intent: Intent, turn: AssistantTurn, state: LedgerState) -> str: ...


def hashtags_in(text: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tag in _HASHTAG.findall(text):
        seen.setdefault(tag, None)
    return tuple(seen)


def display_platform(platform: str) -> str:
    rule = PLATFORM_RULES.get(platform)
    return rule.display_name if rule else platform.capitalize()


class TemplateWriter:
    """The built-in writer: `composer.compose_post`, no network."""

    name = "builtin"

    async def write_draft(
        self, *, request: DraftRequest, version: int, turn: AssistantTurn, state: LedgerState
    ) -> WrittenDraft:
        draft = compose_post(
            platform=request.platform,
            topic=request.topic,
            context=request.context,
            version=version,
        )
        return WrittenDraft(text=draft.text, hashtags=draft.hashtags)

    async def answer(self, *, intent: Intent, turn: AssistantTurn, state: LedgerState) -> str:
        if intent.kind == IntentKind.UNCLEAR and intent.clarification:
            return intent.clarification
        if intent.kind == IntentKind.SMALLTALK:
            return "Happy to help! " + describe_capabilities()
        return describe_capabilities()


class DraftingAssistant:
    def __init__(
        self,
        *,
        writer: Writer,
        images: ImageGenerator,
        publisher: Publisher,
        name: str | None = None,
    ) -> None:
        self.writer = writer
        self.images = images
        self.publisher = publisher
        self.name = name or writer.name

    async def reply(self, turn: AssistantTurn) -> AssistantReply:
        state = await ledger.ledger_state(
            session=turn.db, user_id=turn.user_id, session_id=turn.session_id
        )
        intent = classify(
            turn.message, has_pending_draft=state.has_pending, has_any_draft=state.has_any
        )
        if intent.kind == IntentKind.CREATE_POST and intent.topic:
            request = DraftRequest(
                platform=canonical_platform(intent.platform) or DEFAULT_PLATFORM,
                topic=intent.topic,
                context=turn.context,
                with_image=intent.with_image,
            )
            return await self._new_draft(turn, state, intent, request)
        if intent.kind == IntentKind.REGENERATE and state.latest is not None:
            return await self._regenerate(turn, state, intent, state.latest)
        if intent.kind == IntentKind.PUBLISH and state.pending is not None:
            return await self._publish(turn, intent, state.pending)
        if intent.kind == IntentKind.CANCEL:
            return await self._cancel(turn, intent, state.pending)
        text = await self.writer.answer(intent=intent, turn=turn, state=state)
        return AssistantReply(content=text, metadata=self._meta(intent, state.pending))

    # -- drafts ------------------------------------------------------------------------

    async def _image_for(
        self, request: DraftRequest, version: int
    ) -> tuple[GeneratedImage | None, str | None]:
        if not request.with_image:
            return None, None
        platform = display_platform(request.platform)
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

    async def _new_draft(
        self, turn: AssistantTurn, state: LedgerState, intent: Intent, request: DraftRequest
    ) -> AssistantReply:
        written = await self.writer.write_draft(request=request, version=1, turn=turn, state=state)
        image, image_problem = await self._image_for(request, 1)
        async with turn.db.begin_nested():
            stored = await self._store(turn, image)
            draft, version = await ledger.create_draft(
                session=turn.db,
                user_id=turn.user_id,
                session_id=turn.session_id,
                request_message_seq=turn.message_seq,
                source_message_seq=turn.message_seq,
                platform=request.platform,
                topic=request.topic,
                context=request.context,
                with_image=request.with_image,
                text=written.text,
                hashtags=written.hashtags,
                image_id=stored,
                writer=self.writer.name,
                now=turn.now,
            )
        return self._draft_reply(intent, draft, version.version, written, stored, image_problem)

    async def _regenerate(
        self, turn: AssistantTurn, state: LedgerState, intent: Intent, base: PostDraft
    ) -> AssistantReply:
        platform = canonical_platform(intent.platform) or base.platform
        request = DraftRequest(
            platform=platform,
            topic=base.topic,
            context=base.context,
            with_image=base.with_image or intent.with_image,
        )
        number = base.current_version + 1
        written = await self.writer.write_draft(
            request=request, version=number, turn=turn, state=state
        )
        image, image_problem = await self._image_for(request, number)
        async with turn.db.begin_nested():
            stored = await self._store(turn, image)
            # Re-read under lock: the draft may have changed since the state was read.
            current = await ledger.latest_draft(
                session=turn.db, user_id=turn.user_id, session_id=turn.session_id, for_update=True
            )
            same = current is not None and current.id == base.id
            if (
                same
                and base.status == DraftStatus.PENDING
                and platform == base.platform
                and request.with_image == base.with_image
            ):
                draft = base
                row = await ledger.add_version(
                    session=turn.db,
                    draft=base,
                    text=written.text,
                    hashtags=written.hashtags,
                    image_id=stored,
                    source_message_seq=turn.message_seq,
                    writer=self.writer.name,
                    now=turn.now,
                )
            else:
                # Published, cancelled or changed: a new draft for the same original request.
                draft, row = await ledger.create_draft(
                    session=turn.db,
                    user_id=turn.user_id,
                    session_id=turn.session_id,
                    request_message_seq=base.request_message_seq,
                    source_message_seq=turn.message_seq,
                    platform=request.platform,
                    topic=request.topic,
                    context=request.context,
                    with_image=request.with_image,
                    text=written.text,
                    hashtags=written.hashtags,
                    image_id=stored,
                    writer=self.writer.name,
                    now=turn.now,
                    version=number,
                    parent_draft_id=base.id,
                )
        return self._draft_reply(intent, draft, row.version, written, stored, image_problem)

    async def _store(self, turn: AssistantTurn, image: GeneratedImage | None) -> Any:
        if image is None:
            return None
        stored = await ledger.store_image(
            session=turn.db,
            user_id=turn.user_id,
            content_type=image.content_type,
            data=image.data,
            source=image.source,
            now=turn.now,
        )
        return stored.id

    def _draft_reply(
        self,
        intent: Intent,
        draft: PostDraft,
        version: int,
        written: WrittenDraft,
        image_id: Any,
        image_problem: str | None,
    ) -> AssistantReply:
        platform = display_platform(draft.platform)
        lead = (
            f"Here is a new version (v{version}) of your {platform} post about {draft.topic}:"
            if version > 1
            else f"Here is a draft of your {platform} post about {draft.topic}:"
        )
        parts = [lead, written.text]
        if image_problem:
            parts.append(
                f"(I could not add an image this time: {image_problem}. "
                'Say "regenerate" to try again.)'
            )
        parts.append(QUESTION)
        url = image_url(image_id)
        meta = self._meta(intent, draft, version)
        meta.update({"platform": draft.platform, "draftStatus": draft.status})
        if url:
            meta["imageUrl"] = url
        return AssistantReply(content="\n\n".join(parts), image_url=url, metadata=meta)

    # -- publish / cancel --------------------------------------------------------------

    async def _publish(
        self, turn: AssistantTurn, intent: Intent, pending: PostDraft
    ) -> AssistantReply:
        version = await ledger.draft_version(
            session=turn.db,
            user_id=turn.user_id,
            draft_id=pending.id,
            version=pending.current_version,
        )
        if version is None:  # pragma: no cover - a draft always has its current version
            raise RuntimeError("draft without its current version")
        existing = await ledger.published_post_for_draft(
            session=turn.db, user_id=turn.user_id, draft_id=pending.id
        )
        if existing is None:
            image = None
            if version.image_id is not None:
                stored = await ledger.get_owned_image(
                    session=turn.db, user_id=turn.user_id, image_id=str(version.image_id)
                )
                image = OutgoingImage(content_type=stored.content_type, data=stored.data)
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
                result = await self.publisher.publish(outgoing)
            except PublishError as exc:
                logger.warning("publishing draft %s failed: %s", pending.id, exc)
                meta = self._meta(intent, pending, version.version)
                meta["publishError"] = str(exc)
                return AssistantReply(
                    content=(
                        f"⚠️ I could not publish your post: {exc}. The draft is still waiting; "
                        'say "yes" to try again, "regenerate" for a new version, or "cancel".'
                    ),
                    metadata=meta,
                )
            external_id = result.external_id
        else:
            external_id = existing.external_id
        async with turn.db.begin_nested():
            post, _created = await ledger.record_publication(
                session=turn.db,
                draft=pending,
                version=version,
                publisher=self.publisher.name,
                external_id=external_id,
                now=turn.now,
            )
        meta = self._meta(intent, pending, version.version)
        meta.update({"postId": str(post.id), "draftStatus": pending.status})
        return AssistantReply(content=PUBLISHED, metadata=meta)

    async def _cancel(
        self, turn: AssistantTurn, intent: Intent, pending: PostDraft | None
    ) -> AssistantReply:
        if pending is None:
            return AssistantReply(
                content=(
                    "There is no draft waiting to be posted, so there is nothing to cancel. "
                    'Tell me what to write next, or say "regenerate the previous post".'
                ),
                metadata=self._meta(intent, None),
            )
        async with turn.db.begin_nested():
            await ledger.cancel_draft(session=turn.db, draft=pending, now=turn.now)
        meta = self._meta(intent, pending, pending.current_version)
        meta["draftStatus"] = pending.status
        return AssistantReply(
            content=(
                "Okay, I have cancelled that draft. Nothing was posted. "
                'Say "regenerate the previous post" if you change your mind, '
                "or tell me what to write next."
            ),
            metadata=meta,
        )

    @staticmethod
    def _meta(
        intent: Intent, draft: PostDraft | None, version: int | None = None
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"intent": intent.kind.value}
        if draft is not None:
            meta["draftId"] = str(draft.id)
            meta["draftVersion"] = version if version is not None else draft.current_version
        return meta
