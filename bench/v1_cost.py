"""`POST /v1/chat/completions` next to `POST /api/chat`: one app process, one model.

The model is `tests/fakemodel.py` answering at once (30 words, streamed), so what is timed
is Chatkeep's own work per request, over HTTP on loopback: for `/api/chat` a message on a
conversation; for `/v1` the same turn plus what an OpenAI client makes it do (the whole
conversation resent each time, hashed along its path and matched to the stored one, the
answer in OpenAI's shape). The requests take turns, one at a time, so each kind sees the
same machine.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.modes import Mode
from bench.pg import BenchServer
from bench.real_model import chatkeep, fake_model, make_users
from bench.report import Report, Table, fmt_ms, fmt_ratio, percentile, ratio

ROUNDS = {"full": 100, "quick": 30}
WARM_UP = 3
MODEL = "bench-model"

KINDS = (
    "POST /api/chat (JSON, a message on its conversation)",
    "POST /v1/chat/completions (JSON, its conversation resent)",
    "POST /v1/chat/completions (streamed, its conversation resent)",
    "POST /v1/chat/completions (JSON, one message: a new conversation)",
)


async def _time(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call
    return (time.perf_counter() - started) * 1000, result


class _Kinds:
    def __init__(self, c: httpx.AsyncClient, token: str, key: str) -> None:
        self.c = c
        self.signed_in = {"Authorization": f"Bearer {token}"}
        self.key = {"Authorization": f"Bearer {key}"}
        self.chat_sid: str | None = None
        self.json_history: list[dict[str, str]] = []
        self.stream_history: list[dict[str, str]] = []

    async def chat(self, i: int) -> None:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": f"question {i}"}]}
        if self.chat_sid:
            body["sessionId"] = self.chat_sid
        r = await self.c.post("/api/chat", json=body, headers=self.signed_in)
        r.raise_for_status()
        self.chat_sid = r.json()["sessionId"]

    async def v1_json(self, i: int) -> None:
        self.json_history.append({"role": "user", "content": f"question {i}"})
        r = await self.c.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": self.json_history},
            headers=self.key,
        )
        r.raise_for_status()
        self.json_history.append(r.json()["choices"][0]["message"])

    async def v1_stream(self, i: int) -> None:
        self.stream_history.append({"role": "user", "content": f"streamed question {i}"})
        text = ""
        async with self.c.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": MODEL, "messages": self.stream_history, "stream": True},
            headers=self.key,
        ) as r:
            r.raise_for_status()
            async for line in r.aiter_lines():
                if line.startswith("data: {"):
                    chunk = json.loads(line[6:])
                    if chunk["choices"]:
                        text += chunk["choices"][0]["delta"].get("content") or ""
        self.stream_history.append({"role": "assistant", "content": text})

    async def v1_new(self, i: int) -> None:
        r = await self.c.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": f"new {i}"}]},
            headers=self.key,
        )
        r.raise_for_status()


async def run(server: BenchServer, report: Report, mode: Mode) -> dict[str, Any]:
    rounds = ROUNDS.get(mode.name, 4)
    url = await server.migrated_database("v1")
    tmp = Path(tempfile.mkdtemp(prefix="chatkeep-bench-v1-"))
    samples: dict[str, list[float]] = {k: [] for k in KINDS}
    with fake_model(0.0) as model_base, chatkeep(url, model_base, tmp, MODEL) as (base, _):
        users = await make_users(base, url, 1)
        token = await users.token(0)
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            r = await c.post(
                "/api/keys", json={"name": "bench"}, headers={"Authorization": f"Bearer {token}"}
            )
            r.raise_for_status()
            kinds = _Kinds(c, token, r.json()["key"])
            calls = (kinds.chat, kinds.v1_json, kinds.v1_stream, kinds.v1_new)
            for i in range(WARM_UP + rounds):
                for name, call in zip(KINDS, calls, strict=True):
                    ms, _ = await _time(call(i))
                    if i >= WARM_UP:
                        samples[name].append(ms)
    base_median = statistics.median(samples[KINDS[0]])
    table = Table(
        f"/v1/chat/completions next to POST /api/chat: one request at a time, {rounds} each, "
        "the same model answering at once (30 words); the resent conversations grow to "
        f"{2 * (WARM_UP + rounds)} messages",
        ["request", "median ms", "p99 ms", "vs /api/chat"],
    )
    figures: dict[str, Any] = {}
    for name in KINDS:
        median = statistics.median(samples[name])
        table.add(
            name,
            fmt_ms(median),
            fmt_ms(percentile(samples[name], 99)),
            fmt_ratio(ratio(median, base_median)),
        )
        figures[name] = {"median_ms": median, "p99_ms": percentile(samples[name], 99)}
    report.show(table)
    return {"v1_vs_api_chat": {"rounds": rounds, **figures}}
