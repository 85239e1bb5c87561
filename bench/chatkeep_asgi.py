"""Chatkeep's real server with the built-in echo assistant, for the HTTP comparison.

Everything but the assistant is `app.asgi:app` as deployed: sign-in, middleware, the
request transaction, PostgreSQL. The assistant is swapped for the echo one that the
in-memory comparison app also uses, so the two servers differ only in where sessions live.

    uvicorn bench.chatkeep_asgi:app --workers 2
"""

from __future__ import annotations

from app.main import create_app
from tests.assistant.echo import EchoAssistant

app = create_app()
app.state.assistant = EchoAssistant()
