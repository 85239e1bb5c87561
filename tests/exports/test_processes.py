"""Downloads that stop being read, against a real server process.

One user opens many downloads and reads a few KB of each, then stops (raw sockets with a
small receive buffer). The server must not hold a pooled connection or a transaction for
them: another user's requests keep answering, and PostgreSQL shows no connection of the
app idle in a transaction.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import TEST_PASSWORD, _truncate
from tests.processes import ServerProcess

# The connections on the server are counted: only the server process's may be there.
pytestmark = [
    pytest.mark.process,
    pytest.mark.storage,
    pytest.mark.usefixtures("without_process_app"),
]

STALLED = 20
POOL = 4  # far fewer connections than stalled downloads
BIG_MESSAGES = 200
MESSAGE_CHARS = 40_000  # 200 of them: an 8 MB export, more than any socket buffer holds
READ_BEFORE_STALL = 4096
# A connection idle in a transaction for less than this is between two statements of it.
_MOMENTARY = (
    "state LIKE 'idle in transaction%' AND state_change > clock_timestamp() - interval '1 second'"
)


@pytest.fixture
async def server(database_url: str, tmp_path: Path):
    await _truncate(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT", "SWEEP", "DB_"))}
    env.update(
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path),
        SECRET_KEY="downloads-secret-" + "d" * 40,
        LOG_LEVEL="WARNING",
        SWEEPER_ENABLED="false",
        RATE_LIMIT_ENABLED="false",
        DB_POOL_SIZE=str(POOL),
        DB_MAX_OVERFLOW="0",
        DOWNLOAD_MAX_PER_USER=str(STALLED),
        # One process: its pool and its count of a user's downloads are what is measured.
        WORKERS="1",
    )
    argv = [sys.executable, "-m", "app", "serve", "--port", "{port}"]
    process = ServerProcess(argv, env)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def _user(base: str, email: str) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
        assert r.status_code == 201, r.text
        r = c.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
        assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _sql(database_url: str, statement: str, **params: object) -> list[tuple]:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


def _stalled_download(port: int, path: str, token: str) -> tuple[socket.socket, int, bytes]:
    """Starts a download, reads its head and a few KB of its body, then stops reading.
    Returns the socket (kept open), the Content-Length and the head."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", port))
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: {token}\r\nAccept: */*\r\n\r\n"
    )
    sock.sendall(request.encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, f"closed early: {received!r}"
        received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    while len(body) < READ_BEFORE_STALL:
        chunk = sock.recv(4096)
        assert chunk, "closed early"
        body += chunk
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return sock, length, head


def _timed(c: httpx.Client, method: str, path: str, **kwargs: object) -> tuple[int, float]:
    started = time.monotonic()
    r = c.request(method, path, **kwargs)  # type: ignore[arg-type]
    return r.status_code, time.monotonic() - started


async def test_stalled_downloads_hold_no_connection(server, database_url):
    hoarder = _user(server.base, "hoarder@example.com")
    bystander = _user(server.base, "bystander@example.com")
    with httpx.Client(base_url=server.base, timeout=30) as c:
        r = c.post(
            "/api/chat",
            json={"messages": [{"role": "user", "content": "a long one"}]},
            headers=hoarder,
        )
        assert r.status_code == 200, r.text
        sid = r.json()["sessionId"]
    # Many long messages, written directly: the export is far larger than socket buffers.
    await _sql(
        database_url,
        """
        INSERT INTO chat_message (session_id, seq, parent_seq, depth, user_id, role, content,
                                  created_at)
        SELECT s.id, g, g - 1, g, s.user_id,
               CASE WHEN g % 2 = 1 THEN 'user' ELSE 'assistant' END,
               repeat('many words ', :chars / 11) || g, now()
        FROM chat_session s, generate_series(3, :last) AS g
        WHERE s.id = :sid
        """,
        sid=sid,
        last=BIG_MESSAGES + 2,
        chars=MESSAGE_CHARS,
    )
    await _sql(
        database_url,
        "UPDATE chat_session SET message_count = :n, head_seq = :n WHERE id = :sid",
        n=BIG_MESSAGES + 2,
        sid=sid,
    )

    path = f"/api/sessions/{sid}/export?format=json"
    sockets: list[socket.socket] = []
    try:
        for _ in range(STALLED):
            sock, length, head = _stalled_download(server.port, path, hoarder["Authorization"])
            sockets.append(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert length > BIG_MESSAGES * MESSAGE_CHARS > 100 * READ_BEFORE_STALL

        # Every download is open and unread; the rest of the server does not notice.
        with httpx.Client(base_url=server.base, timeout=10) as c:
            for i in range(3):
                for method, where, kwargs in (
                    ("GET", "/healthz", {}),
                    ("GET", "/api/sessions", {"headers": bystander}),
                    (
                        "POST",
                        "/api/chat",
                        {
                            "headers": bystander,
                            "json": {"messages": [{"role": "user", "content": f"hello {i}"}]},
                        },
                    ),
                ):
                    status, seconds = _timed(c, method, where, **kwargs)
                    assert status == 200, (where, status)
                    assert seconds < 1.0, (where, seconds)

            # No connection of the app waits inside a transaction. (The job worker's poll
            # is a transaction of two statements every second: for a moment between them
            # its connection shows as idle in one; a download would stay so.)
            rows = await _sql(
                database_url,
                f"""
                SELECT state, count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND application_name = 'chatkeep'
                  AND NOT ({_MOMENTARY})
                GROUP BY state
                """,
            )
            states = dict(rows)
            assert not any(str(s).startswith("idle in transaction") for s in states), states
            assert sum(states.values()) <= POOL

            # One more download than the cap: refused at once, with when to retry.
            r = c.get(path, headers=hoarder)
            assert r.status_code == 429
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "too_many_downloads"
            assert int(r.headers["Retry-After"]) > 0
            # The cap is per user: the bystander downloads as usual.
            own = c.get("/api/sessions", headers=bystander).json()["items"][0]["id"]
            r = c.get(f"/api/sessions/{own}/export", headers=bystander)
            assert r.status_code == 200
            assert r.json()["conversation"]["id"] == own
    finally:
        for sock in sockets:
            sock.close()

    # Once the clients are gone their slots are free again.
    with httpx.Client(base_url=server.base, timeout=30) as c:
        deadline = time.monotonic() + 30
        while (r := c.get(path, headers=hoarder)).status_code == 429:
            assert time.monotonic() < deadline, "download slots were never given back"
            time.sleep(0.2)
        assert r.status_code == 200
        assert len(r.json()["conversation"]["messages"]) == BIG_MESSAGES + 2


async def test_a_slow_upload_holds_no_transaction(server, database_url):
    uploader = _user(server.base, "slow-uploader@example.com")
    body = b'{"format": "not an export"}'.ljust(64 * 1024, b" ")
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    try:
        head = (
            f"POST /api/import HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: {uploader['Authorization']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:1000])
        # While the rest of the body has not come, no app connection sits in a transaction
        # (past the moment between two statements of one, as in the job worker's poll).
        for _ in range(30):
            rows = await _sql(
                database_url,
                f"""
                SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND application_name = 'chatkeep'
                  AND state LIKE 'idle in transaction%' AND NOT ({_MOMENTARY})
                """,
            )
            assert rows == [(0,)]
            time.sleep(0.1)
        sock.sendall(body[1000:])
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
        # The whole body was read and judged: not an export.
        assert answer.startswith(b"HTTP/1.1 422"), answer[:200]
    finally:
        sock.close()
