"""The original design over HTTP: POST /api/chat served from a dict inside each worker.

Same request and response shape as Chatkeep's endpoint, the same bearer tokens (checked
by signature only: this design keeps no users), the same turn as `bench.stores.MemoryStore`.
Run with several workers it shows the design's flaw: each worker has its own dict, so a
conversation continues only when the same worker happens to answer.

    SECRET_KEY=... uvicorn bench.memory_app:app --workers 2
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from fastapi_users.jwt import decode_jwt

from app.conversations.schemas import ChatRequest
from bench.stores import MemoryStore

AUDIENCE = ["fastapi-users:auth"]
SECRET = os.environ.get("SECRET_KEY", "")

store = MemoryStore()
app = FastAPI(title="in-memory sessions (bench)")


def _problem(status: int, title: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status},
        status_code=status,
        media_type="application/problem+json",
    )


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "sessions": str(len(store.sessions))}


@app.post("/api/chat")
async def chat(body: ChatRequest, authorization: str | None = Header(default=None)) -> Any:
    if not authorization or not authorization.startswith("Bearer "):
        return _problem(401, "Unauthorized")
    try:
        user_id = uuid.UUID(decode_jwt(authorization[7:], SECRET, AUDIENCE)["sub"])
    except Exception:
        return _problem(401, "Unauthorized")
    last_user = next((m for m in reversed(body.messages) if m.role == "user"), None)
    if last_user is None or not last_user.content.strip():
        return _problem(422, "No user message")
    session_id = await store.turn(
        user_id=user_id, session_id=body.session_id, message=last_user.content
    )
    reply = store.sessions[session_id][-1]["content"]
    return JSONResponse({"reply": reply, "imageUrl": None, "sessionId": session_id})
