"""`python -m bench [--mode full|quick|smoke]`: run every section, print tables, save results.

Sections: turns (turn cost vs history), http (real servers under wrk), sweeper, history,
real_model (a slow streaming model: concurrency, first-token latency, live-event fan-out),
local_model (the local SmolLM2 model: tokens/s, time to first token, 20 users at once),
pdf (PDF layout against message size), encryption (a turn with and without
ENCRYPTION_KEYS), tree (opening a conversation with 1,000 branches against a 1,000-message
chain), v1 (`POST /v1/chat/completions` next to `POST /api/chat` on one model).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from bench import (
    encryption_cost,
    history,
    http_load,
    local_model,
    pdf_layout,
    real_model,
    sweeper,
    tree_cost,
    turn_cost,
    v1_cost,
)
from bench.modes import MODES, Mode
from bench.pg import BenchServer
from bench.report import Report, machine, write_doc

SECTIONS = (
    "turns",
    "http",
    "sweeper",
    "history",
    "real_model",
    "local_model",
    "pdf",
    "encryption",
    "tree",
    "v1",
)
RUNNERS: dict[str, Callable[[BenchServer, Report, Mode], Awaitable[dict[str, Any]]]] = {
    "turns": turn_cost.run,
    "http": http_load.run,
    "sweeper": sweeper.run,
    "history": history.run,
    "real_model": real_model.run,
    "local_model": local_model.run,
    "pdf": pdf_layout.run,
    "encryption": encryption_cost.run,
    "tree": tree_cost.run,
    "v1": v1_cost.run,
}

DOC_INTRO = """# Performance

What a chat turn costs in Chatkeep next to the designs a user would otherwise pick, all
measured in one run on one machine by `make bench` (6 to 10 minutes) or
`make bench-quick` (under a minute, smaller sizes, fewer turns: a sanity check, not a
reference). The bench starts its own PostgreSQL under `.data/bench-pg` (or uses
`BENCH_DATABASE_URL`), makes and drops its own databases, and uses the Redis at
`BENCH_REDIS_URL` (default `redis://127.0.0.1:6379/0`, keys under a per-run prefix,
deleted afterwards). Raw figures are written to `bench/results/` as JSON.

The designs, each behind the same chat turn (code in `bench/stores.py`):

1. **in-memory dict** — the original implementation: fast, gone on restart, one process.
2. **Redis JSON blob** — the original "Option 1": `GET`, parse, append, `SET … EX 1800`.
3. **Postgres JSONB blob** — the original "Option 2" table, the whole message list
   rewritten each turn (in one transaction that locks the row).
4. **Chatkeep** — as built: `chat_turn` in a real `AsyncSession`, committed like a request.
5. **floor** — the bare SQL of one durable turn as Chatkeep shapes it, sent with asyncpg:
   two short transactions, their writes batched into one statement each as Chatkeep
   does. Open: lock the session row, read the context (50 newest messages), one statement
   for the user's message, the turn and the session, commit. Close: one statement that
   locks the row, ends the turn, inserts the reply and updates the session, commit.

Read the ratios, not the absolute numbers: everything (database, servers, load generator)
shares one small machine.

Sections:

- *Turn cost vs history length*: one client, sequential turns, on sessions seeded with 10 to
  10,000 earlier messages.
- *Throughput over HTTP*: the real server (`uvicorn app.asgi:app --workers 2`) against a
  small FastAPI app in `bench/memory_app.py` that serves the same endpoint from the
  in-memory dict (also two workers — each with its own dict, which is that design's flaw:
  the "broken" column counts turns whose conversation was forgotten because the other
  worker answered). Load comes from `wrk` in its own process, one signed-in user per
  connection, conversations of a few turns.
- *Sweeper at scale*: archive expired sessions with the app's own sweeper while chat
  turns run, and compare turn latency during the sweep with before it.
- *History and export*: history pages, search, PDF and ZIP export on one large account;
  parts whose code is not there yet are skipped with a note. Also the web page's two
  reads over HTTP through the whole app in process: the list's first page of 60 and
  opening a short conversation in one request, each against Open WebUI's figure (goals).
- *Real model* (`bench/real_model.py`): one Chatkeep process (`uvicorn app.asgi:app`, one
  worker, `ASSISTANT_BACKEND=openai`) in front of a fake OpenAI-compatible model in its own
  process (`tests/fakemodel.py`) that streams each reply word by word over 3 seconds. It
  asks three things. *Concurrency*: 100 and 500 signed-in users (`make bench-quick`: 100)
  send one message each at the same moment, as JSON and streamed: how many get their
  reply, how the wall time compares with the model's 3 s, and how many pooled database
  connections (`pg_stat_activity`, application_name `chatkeep`, every 25 ms) are in use,
  overall and while the model thinks. *Latency*: from the model's first token (the fake's
  clock) to the client's first `delta` event, over 100 streamed turns 20 at a time.
  *Fan-out*: 1,000 open `GET /api/events` streams of one user (300 in quick), then one
  message: how soon every stream hears it, and the server memory per open stream. Users
  come from one real registration whose password hash is copied into more rows, each
  signed in with a token from the app's own JWT strategy; only chat requests are timed.
- *Local model* (`bench/local_model.py`): SmolLM2 135M, the default assistant, in its own
  llama.cpp process, through the app's writer, queue and streaming client (no HTTP, no
  database): the model's start, time to the first token and tokens/s for one user, and
  twenty users at once (their wait in line included), answers capped at 64 tokens.
- *PDF layout*: one message of 1,000, 8,000 and 15,000 short lines rendered to PDF, as
  total CPU time and time per 1,000 lines. Layout is linear (bounded paragraphs), so the
  time per 1,000 lines stays flat; the goal is the 8,000-line PDF within 10x the
  1,000-line one (a single 8,000-line paragraph used to take about 90x).
- *Encryption at rest* (`bench/encryption_cost.py`): the turn-cost section's in-process
  turn, with and without `ENCRYPTION_KEYS`, in alternating rounds on the same database:
  ms per turn and the ratio.
- *Trees* (`bench/tree_cost.py`): opening a conversation (what `GET /api/sessions/{id}`
  does, through its service, whole path in one page) whose 1,000-message active path has
  1,000 other branches (every message on it has another version: 2,000 stored), against a
  1,000-message chain. The turn at 10,000 messages against one at 10 is the turn-cost
  section's goal row; its sessions are chains whose context is read up from the head.

The machine is shared: its 1-minute load average as each section began is in the
"Environment" line of each run. Above ~2 (two cores) the other tenants were busy and
every wall-clock figure is inflated, the CPU-heavy designs' most.

## What the figures show

- **Turn cost stays flat in Chatkeep, grows with the conversation in the blob designs.** A
  Chatkeep turn appends two rows and reads at most 50, so 10 or 10,000 earlier messages
  cost the same. Redis and Postgres JSONB read, parse, re-serialise and rewrite the whole
  conversation every turn: at 10,000 messages (≈4 MiB of JSON) a turn takes about a tenth
  of a second on Redis and half a second on Postgres JSONB, whose rewrite also goes
  through TOAST and the WAL.
- **Where Chatkeep's turn goes, next to the floor.** A turn is two short transactions,
  and on this machine its cost is mostly round trips and building statements, not rows.
  The floor is the same two transactions in bare asyncpg with its writes batched the
  same way (8 round trips: `BEGIN`, lock, context, one write, `COMMIT`; `BEGIN`, one
  write, `COMMIT`); the in-process Chatkeep turn makes 9 and adds the ORM session,
  events and the assistant's bookkeeping.
  `POST /api/chat` on an existing conversation now makes 10 round trips: `BEGIN`, the
  user-and-sign-in lookup, the session lock, one read of the busy turn and the context,
  one statement that writes the session, the message and the turn and sends their events
  (data-modifying CTEs with the `NOTIFY` inside), `COMMIT`; then, after the model, `BEGIN`,
  one statement that locks the session, ends the turn and counts the reply, the reply's
  `INSERT` (with its events), `COMMIT`. Before the change it made 19: a checkout ping for
  each transaction, three statements for the three rows, a separate busy-turn read, a
  separate `NOTIFY`, and the same again to close. The hot statements are `TextClause`s
  built once (`app/turns/repository.py`, compiled at import from the tables' metadata):
  a SQLAlchemy construct built per call spent more CPU on coercion and cache keys than the
  database spent on the rows. A pooled connection
  used within the last second skips its checkout ping (a frozen server is still caught by
  the command timeout).
- **Before and after, same machine, same hour** (`python -m bench --mode quick --only
  http --no-doc` on each commit in turn, load average 4 to 5, 16 connections): the old
  turn did 45 and 18 turns/s at 20.0 and 29.5 ms of server CPU per turn; the new one 152
  and 81 turns/s at 7.0 and 11.4 ms. `python -m bench.profile_http` samples one worker
  under wrk with py-spy and prints where its time goes. Before: SQLAlchemy's statement
  construction and cache keys, then socket sends (each round trip costs about 0.3 ms of
  CPU in `send` on this VM), then FastAPI's dependency solving. After: the sends of the
  10 round trips and SQLAlchemy's per-execute work lead, then the middleware and
  dependency stack (about a tenth of the samples) and the sign-in lookup's ORM load
  (about a twelfth). The two full runs of 2026-12-01: at 09:01 UTC (load 6 to 12)
  Chatkeep did 34 turns/s at 16 connections at 12.9 ms of server CPU per turn; at 15:31
  UTC (load under 1) 467 turns/s at 2.75 ms of server CPU and 0.78 ms of PostgreSQL CPU,
  against the dict's 8,228 turns/s at 0.20 ms (0.06x; 0.04x at 64 connections). One
  worker under `python -m bench.profile_http` (14:58 UTC) spends 44% of its samples in
  asyncpg (mostly the socket sends of the 10 round trips), 15% in SQLAlchemy, 10% in
  FastAPI, 8% in uvicorn and 4% in Chatkeep's own code. What is left to take: the two
  `BEGIN`s, and fastapi-users' dependency tree and the ORM entity load of the sign-in.
  The seven middlewares together cost about 25 µs a request (a request to a missing
  route through the whole stack against the router alone, in process), under 1% of a
  turn, so they stay separate. 0.25x of the dict (about 2,000 turns/s on two cores) would need the
  whole turn, app, database and load generator, in about 1 ms of CPU: less than its
  round trips cost here.
- **The Redis blob against Chatkeep at 1,000 messages** is about 1x (2.17 against 2.42
  ms in the full run below). The bare-SQL floor itself takes 1.46 ms there for its two
  durable commits, so even the floor would be 1.5x, short of the 3x goal: that goal
  needs a durable turn faster than two commits to disk are on this machine, where Redis
  writes nothing to disk. At 10,000 messages the blob takes 34 ms and Chatkeep still
  2.4 ms (14x).
- **Over HTTP the in-memory dict wins on raw speed and loses the conversations.** It
  needs about half a millisecond of CPU per turn; Chatkeep's server needs about twelve
  times that (9.1 against 0.74 ms in the quick run of 13:18 UTC, 129 against 2,194
  turns/s, 0.06x) (authentication, dependency resolution, the ORM, the round trips
  above), and on two shared cores CPU is the limit. The dict forgets a
  conversation whenever a request lands on the other worker, on restart, and on every
  deploy; Chatkeep loses none (the run counts acknowledged turns against stored replies).
- **Search** over message content runs from the GIN indexes for rare and absent words
  (the matching session ids first, then the keyset page) and scans recent sessions first
  for common words, where a page fills quickly; a wrong estimate costs one bounded scan
  (about 5,000 messages), never a walk over every message of the user. An earlier plan
  could take seconds for a word no message contains on a 1,000,000-message account. Still
  slow: a word with hundreds of thousands of old matches and none recent (the index
  bitmap grows with the matches).
- **Encryption at rest doubles the cost of the now cheaper turn.** With `ENCRYPTION_KEYS`
  set a turn seals both messages (AES-256-GCM: microseconds), opens the context it reads,
  and writes one blind-index row per message: about 180 HMAC tokens for a 60-word message
  (a few milliseconds of Python), one more statement in each of the turn's two
  transactions, and a GIN index entry per token. The in-process turn goes from 8.2 to
  16.8 ms (median, 2.05x; before the turn's statements were prebuilt it was 26.0 to 32.7
  ms): `.venv/bin/python -m bench --only encryption --no-doc`. The added ~8.6 ms is the
  token rows and their statements, which are still built per call.
- **The sweeper** archives in batches of `SWEEP_BATCH_SIZE` (5,000) rows, pausing
  `SWEEP_BATCH_PAUSE_SECONDS` (0.05 s) between batches. Each archived row is a new row
  version in every index of `chat_session` (its status is in a partial index's
  predicate, so the update cannot be HOT), the title's GIN index included; that sets its
  pace, and the WAL it writes is what chat turns wait behind during a sweep.
- **With a slow model, the pool is no longer the limit; the one process's CPU is.** A turn
  holds no connection while the model writes ("while the model thinks" 0 or 1 connection
  is in use). In a burst, at most `TURN_OPEN_SLOTS` (the pool size, 10) turns open at
  once and the rest wait in line before the sign-in check, holding nothing, so the pool
  never drains and all 500 of 500 users at once are answered (before: 226 of 500, the
  rest 503 `server_busy` after waiting `DB_POOL_TIMEOUT_SECONDS` for a connection).
  100 at once take 1.13x the model's 3 s and 500 at once 1.84x (JSON, the full run below;
  `python -m bench --only real_model --no-doc` repeats it). Each reply costs the process
  about 7 ms of CPU (3.5 s for 500), so 500 at once queue on one core: the HTTP and
  middleware stack and the sign-in about a quarter, the model call's request about a
  tenth and its streamed chunks about a sixth, the once-a-second checkpoint of every
  partial reply (for other instances) about a twelfth.
  Three costs were cut on the way: the OpenAI SDK walked every request's messages
  against its TypedDicts (0.5 ms for two messages, 3 ms for twenty) and is now given the
  body as `extra_body`; its default httpx transport cost about 100 µs of event loop per
  streamed chunk, the SDK's aiohttp transport (`openai[aiohttp]`) about 40; and the
  bench's own httpx client used 12 s of CPU for 500 requests on the same two cores (it
  now speaks HTTP/1.1 on plain sockets: 0.3 s). The in-flight cap (1,000) is never what
  refuses them. The first token reaches the client within a millisecond at moderate
  load, and live events reach 1,000 open streams within a few tenths of a second, at
  about 10 to 20 KiB of server memory per stream.

### Conversations as trees

`.venv/bin/python -m bench --only tree,turns --no-doc` (full mode), 2026-12-07 18:55 UTC,
load average 5.9 to 6.2 on the two shared cores (every figure inflated and noisy; read the
ratios):

| goal | target | measured |
|---|---|---|
| Chatkeep turn at 10,000 msgs / at 10 (median) | ≤ 1.2x | 0.49x (27.2 vs 55.5 ms) |
| opening 1,000 branches / a 1,000-message chain (median) | ≤ 1.5x | 0.78x (87.9 vs 112 ms) |

A turn reads its context by one recursive query up from the head, stopping after
`CONTEXT_MAX_MESSAGES` (50) messages, so it does not grow with the conversation (the
10-message cell came out slower in this run; under this load the in-process turn's median
moves by tens of milliseconds between cells). Opening a conversation: `EXPLAIN ANALYZE`
of its two tree queries on the bench's data (same machine, same hour) gives 2 to 7 ms for
the path (a recursive query up from the head, one primary-key lookup per message) and
about 1 ms for every message's versions (one query for all the path's parents: a scan of
the session's rows, 1,000 in the chain, 2,000 in the tree), whatever the branches. The
rest of the ~100 ms is loading and serialising the 1,000 path messages, the same for both,
so the two medians are within the noise of each other.

### The history list and opening a conversation

Next to Open WebUI 0.12.4 on this machine (same page size, one request each), the history
section times the web page's two reads over HTTP, through the whole app in the bench's
process (httpx's ASGI transport, a bearer sign-in, the middleware, the rate limiter, the
request transaction): the first page of 60 conversations as the page asks for it
(`compact=true`) and with full items, and opening a 6-message conversation with
`GET /api/sessions/{id}?drafts=true`, against the same in two requests. Beside each median
it gives the process's CPU per request (app and client), which moves less than wall time
when the machine is busy. Goals: the list's first page ≤ 12.3 ms, opening ≤ 13.6 ms in one
request (Open WebUI's figures); in that side-by-side run, before this work, Chatkeep took
17.2 ms, and 16.3 ms in two requests.

What each change bought, measured on 2026-12-07 between 21:50 and 22:40 UTC at load
average 5 to 14 on the two shared cores (every wall-clock figure inflated several times,
and noisy; the CPU figures are steadier). "In process" figures are medians of the code
called directly on one account of 10,001 conversations, the old code and the new in turn;
"bench" figures are `python -m bench --only history --mode quick --no-doc` on each commit
in turn (22:24 to 22:38 UTC), list and open, CPU per request (wall in brackets):

| change | in process | bench: list of 60 | bench: opening |
|---|---|---|---|
| before | | 26.3 ms (124 ms) | 20.6 ms (141 ms) |
| the preview's cut: `grapheme_floor` scanned every cluster from the start of the text; it now looks back from the cut for a sure boundary (a 140-character preview: 135 µs, now 3.3 µs; 60 a page) | list service: 20.2 → 10.1 ms CPU | 13.7 ms (79.5 ms) | 17.8 ms (96.9 ms) |
| the page's statement prebuilt: one text statement per shape (status, tag or not, cursor and its pin), compiled once from the same builders; a Core construct built, coerced and keyed on each call cost more than the database's work | the page's query: 4.5 → 1.0 ms CPU | 12.2 ms (60.3 ms) | — |
| opening in four round trips fewer: the path page, its rows and each message's versions in one statement (one index lookup per message for its versions); the generating turn and the failed one at the head in one | reading the conversation: 5.7 → 2.3 ms CPU | — | 14.0 ms (42.8 ms) |
| the owned-session read (every route on a conversation) built once, run with its owner and id | | — | 10.6 ms (41.4 ms) |
| `compact=true`, what the page now asks for: items with only what a row shows (no `createdAt`, `trashedAt`, `model`, `temporary`), null fields left out: 38.6 KiB for 60 items, now 25.5 KiB | serialising 60 items: 0.89 → 0.80 ms | 16.3 ms (50.1 ms) | 12.6 ms (26.7 ms) |

The last two rows differ from the ones before by less than the noise of that hour; they
are kept for the bytes (the page's list) and the work they leave out. The preview and the
share state stay in the compact items: the page shows both on every row (the preview as
the row's tooltip, a "Shared" badge).

The database's part is small. `EXPLAIN ANALYZE` of the list's page on that account: 0.45
ms to run (the 61 rows from `ix_chat_session_user_activity` in 0.04 ms, then one primary-key
lookup of each head for the preview and the path length, 244 buffer hits) and 0.4 ms to
plan. An index covering the page's columns would save some of the 0.04 ms and cost every
turn, which moves `last_activity_at`, a bigger index entry; none was added.

What is left is per request. In the same process a signed-in request that reads nothing
(`GET /users/me`) costs 4.2 to 5.7 ms of CPU and a 404 through every middleware 1.2 ms: the
sign-in lookup and FastAPI's dependency solving are most of a short request now. The
opening still makes, besides the sign-in, `BEGIN`, the owned session, the path page, the
turns, the share link, the drafts and `COMMIT`.

All of it together against main, the two taking turns in the same minutes (22:46 to 22:49
UTC, load average 6 to 11; the same account; 100 requests each, three rounds; the page's
list request, which main answers with full items): the list's first page went from a CPU
median of 16.7, 18.2 and 20.1 ms to 12.0, 12.1 and 10.2 ms (wall medians 58, 60 and 31 ms
to 35, 43 and 24 ms); opening, from 14.7, 20.1 and 16.2 ms to 13.4, 16.0 and 12.1 ms (wall
55, 73 and 36 ms to 37, 53 and 25 ms).

The full run, `python -m bench --only history --no-doc` on the merged code (on the shared
PostgreSQL, through `BENCH_DATABASE_URL`), 2026-12-07 22:37 to 22:54 UTC: load average
10.3 as it began, 5 to 7 while the HTTP rows ran; the bulk load alone took 775 s against
98 s on the quiet machine of 2026-12-01, and the service's first page of 20, 3.12 ms then,
took 10.3 ms:

| goal | target | measured |
|---|---|---|
| history list, first page of 60 over HTTP (median) | ≤ 12.3 ms (Open WebUI) | 24.0 ms, not met (CPU 10.0 ms; 25.5 KiB) |
| open a short conversation (6 messages) in one request (median) | ≤ 13.6 ms (Open WebUI) | 24.7 ms, not met (CPU 10.9 ms; 4.2 KiB) |

The same page with full items took 23.8 ms (38.6 KiB) and opening in two requests 37.5 ms.
On a machine this busy neither goal is met, and this run cannot say whether a quiet one
meets them; `make bench` on a quiet machine is the test. What is left to take is mostly
the per-request cost above, the sign-in lookup first.

Later in the same hour, with the load easing (23:00 to 23:04 UTC), `python -m bench --only
history --mode quick --no-doc` on main (with this bench) and on the merged code in turn,
twice, list of 60 and opening, median wall (CPU):

| run | load average | list of 60, as the page reads it | opening, one request |
|---|---|---|---|
| main | 5.7 | 38.9 ms (22.3 ms), 38.6 KiB | 35.7 ms (19.3 ms) |
| this code | 5.0 | 11.3 ms (10.0 ms), 25.5 KiB: met | 9.84 ms (8.95 ms): met |
| main | 3.9 | 22.1 ms (15.9 ms), 38.6 KiB | 36.6 ms (13.4 ms) |
| this code | 4.8 | 10.1 ms (8.16 ms), 25.5 KiB: met | 14.6 ms (10.8 ms): not met |

Both goals were met in the first of these runs and the list's in the second; opening
stays within about a millisecond of its goal, where one round trip more or less, or the
machine's load, decides.

### `/v1/chat/completions` next to `POST /api/chat`

The `v1` section times the two APIs on one app process and one model (the fake model,
answering 30 words at once), one request at a time, taking turns: what is measured is
Chatkeep's own work. A `/v1` request does the same turn as `/api/chat`, plus what an
OpenAI client makes it do: the whole conversation resent each time, hashed along its path
(one HMAC per message) and matched to the stored one by an index read, the answer in
OpenAI's shape. It does not cost more: `python -m bench --mode quick --only v1 --no-doc`
(30 rounds, conversations resent up to 66 messages, on this 2-core machine at load
average 14.5) gave a median of 99.1 ms for `/api/chat`, 92.2 ms for `/v1` JSON and 97.3
ms streamed with the conversation resent, 83.2 ms for `/v1` starting a new conversation
(p99 125, 141, 162 and 117 ms); a second run at load average 16.8 gave 170, 160, 176 and
145 ms, the same ratios (0.94x, 1.03x, 0.85x of `/api/chat`). `/api/chat` carries the drafting assistant's work (its
ledger read and its longer prompt), which `/v1` does not: the client's request goes to
the model as it came.

### Local model

SmolLM2 135M (Q4_1), the default assistant, in its own llama.cpp process:
`.venv/bin/python -m bench --only local_model --no-doc`, 2026-12-07 16:41 UTC, load
average 9.4 on the two shared cores (every figure is wall-clock, so inflated by the other
tenants), defaults (2 threads waiting passively, 4 replies at once), answers capped at 64
tokens:

| measure | value |
|---|---:|
| model start (spawn to serving) | 3.2 s |
| model process memory after the burst (RSS) | 406 MiB |
| one user: time to first token, median (min-max) | 0.09 s (0.08-0.25) |
| one user: tokens/s while streaming, median (min-max) | 52.1 (20.6-67.8) |
| 20 users at once: answered | 20 of 20 |
| 20 users at once: wall time for all | 21.6 s |
| 20 users at once: time to first token, median / p90 / max | 10.7 / 18.7 / 18.8 s |
| 20 users at once: told a place in line | 16 of 20 (places 1 to 16) |
| 20 users at once: model tokens/s over the burst | 48.8 |

Twenty at once are served in turn, four at a time, and each waiting reply is told its
place; the last one's first token comes after the others' answers, so the wait grows with
the line (about a second per reply ahead of it here). Threads and batching, 20 users at
once, same hour (load 9.5): 1 thread and 1 reply at a time, 20.6 tokens/s over the burst
(51 s for all); 1 thread, 4 at once, 27.4 (39 s); 2 threads, 2 at once, 40.1 (26 s); 2
threads, 4 at once (the default), 52.0 (20 s). With llama.cpp's default busy-waiting
instead of `OMP_WAIT_POLICY=PASSIVE`, two threads on this loaded machine fell to 0.44
tokens/s.

### The sweep off the serving loop; emoji search by lookup

Two goal rows of `make bench` (2026-12-07, earlier the same day: chat p99 during the
sweep of 1,000,000 sessions 3.29x the p99 before it; search for an emoji in no message,
1,000,000 messages, p95 847 ms) and what changed for each. Measured 2026-12-07 22:07 to
22:50 UTC, with `.venv/bin/python -m bench --only sweeper|history --mode full|quick
--no-doc`, on the two shared cores at load average 7 to 14 (other benches and test runs
beside it): every millisecond here is inflated and noisy, read the ratios and the orders
of magnitude. "before" is the code of `main` at the time (d1a9608), run from an export of
it in the same hour; "after" is this branch.

**The sweep.** It ran on the event loop and connection pool that serve requests, in
batches of 5,000 with a 50 ms pause. It now runs in a thread of its own, on its own event
loop and its own one (plus one) connection, in batches of 1,000 (`SWEEP_BATCH_SIZE`), and
after each batch rests as long as the batch took (`SWEEP_BUSY_SHARE` 0.5): its Python work
no longer holds the loop, and the database gives the chat turns at least half of the time
it would otherwise spend sweeping. The cost is the sweep's own speed: about half of what it
was (a backlog is worked through in the background, at 1,000 to 1,500 sessions/s on this
loaded machine).

| run (`--only sweeper --no-doc`) | before: p99 during / before | after: p99 during / before |
|---|---:|---:|
| full, 1,000,000 sessions, 4 clients (22:25, load 7.6 to 14) | 3.29x (earlier `make bench`) | **0.69x** (303 vs 442 ms; median 74.0 vs 81.2 ms; 37,098 turns during; 781.7 s, 1,279 sessions/s) |
| quick, 20,000 sessions, 2 clients, 21:54 to 21:59 (batch 5,000 then) | 5.19x, 5.34x, 4.35x | 2.59x, 1.69x, 1.52x |
| quick, 22:01 to 22:05, batch 1,000 against 5,000 (after only) | — | 1,000: 1.25x, 0.90x; 5,000: 1.93x, 2.05x |
| quick, 22:41 to 22:46, alternating | 2.96x, 2.65x, 1.67x | 2.14x, 1.11x, 1.81x |

The quick mode's "before" window is one second (20 to 50 turns), so its p99 is nearly the
slowest turn of that second and the ratio swings with the neighbours' load; the full mode
(5 s before, the whole sweep during) is the figure to read. In every alternating pair but
one, the p99 during the sweep was lower after than before.

**Emoji search.** A term of symbols only (`🦩`) has no word for full-text search and no
trigram for pg_trgm, so each of the user's messages was checked with `strpos`. Each
message now stores the distinct symbols it holds (`chat_message.content_symbols`, filled
by a trigger; migration 0027) under a partial GIN index on `(user_id, content_symbols)`
holding only messages with a symbol; the term is looked up there and only the messages
found are checked with `strpos`, so the answer is the same. (In the quick runs one slow
call of ten makes the p95: the 165 ms beside a 24.8 ms median is one such call under this
load.)

| run (`--only history --no-doc`) | before: emoji in no message, p50 / p95 | after |
|---|---:|---:|
| full, 1,000,000 messages (22:07, load 7 to 12) | 847 ms p95 (earlier `make bench`) | **50.7 / 70.0 ms** (50 runs) |
| quick, 20,000 messages, 21:48 / 22:06 | 44.0 / 71.1 ms | 16.7 / 25.4 ms |
| quick, 20,000 messages, 22:45 to 22:50, alternating | 79.2 / 99.4, 51.7 / 61.3 ms | 24.8 / 165, 11.3 / 38.6 ms |

What remains of the 50 ms at 1,000,000 messages is the rest of the search query (titles
are still checked one by one, 10,000 of them here, and the page's plan), not the messages.
The bulk load of the history bench is slower with the trigger (777 s for 1,000,000
messages at this load), since PostgreSQL's replica mode, which skipped the foreign-key
checks, is not used when a table has a trigger of its own.

### Per-request CPU: the sign-in, the turn's statements, processes and the server

Four changes aimed at the CPU a request costs, measured on 2026-12-07 between 21:45 and
23:05 UTC on the two shared cores, each against the commit before it in the same hours.
Meanwhile the other tenants ran full benches beside ours: the load average rose from 0.4
to 13, chat turns took 0.5 to 2 s at 16 connections, and every figure below is three to
four times the morning's (CPU time included: PostgreSQL spent 5 to 12 ms of CPU per turn
against 0.8 ms on a quiet machine). Read them as pairs, not as the app's figures.

| goal (`make bench`) | target | before | after | verdict |
|---|---|---|---|---|
| real model: wall / model time, 500 users at once | ≤ 1.2x | not run (100 at once: 2.13x, load 4.6) | not run (100 at once, streamed: 5.2x and 8.8x, load 10, 3 of 100 refused `server_busy` in each; before, under py-spy at load 5, 1 of 100) | not met |
| real model: server CPU per streamed reply | ≤ 2 ms | 24.1 ms (load 1.5 to 4.6); 30.7 ms under py-spy (load 5) | 27.2 ms (load 10) | not met |
| in-process turn / bare-asyncpg floor (10 messages) | ≤ 1.3x | 1.23x (21:47, load 0.4); 1.98x (23:04, load 5.6) | 2.26x (23:02, load 4.6); 1.93x (23:05, load 4.9) | not met |
| HTTP turns/s / in-memory dict, 16 connections | ≥ 0.15x | 0.04x (23:04: 70 against 1,967 turns/s, 11.4 ms of server CPU per turn) | 0.04x and 0.07x (23:02 and 23:05: 41 against 1,101 and 50 against 724 turns/s, 14.1 and 20.1 ms) | not met |

**1. The sign-in lookup.** Every authenticated request now goes through
`current_active_user` (`app/auth/dependencies.py`): the bearer and cookie schemes read
their tokens (they also keep the OpenAPI security schemes), and `read_credential`
(`app/auth/tokens.py`) checks the JWT, runs one flat Core statement over `app_user` and
`sign_in` (or `api_key` for a `ck_` key) compiled once at import
(`app/auth/repository.py`, with `app/core/prebuilt.py`), and builds the two entities
from the row as the ORM would, without its per-row loading. fastapi-users' own routes keep
their dependency, whose strategies call the same `read_credential`, so revoked sign-ins,
deactivated users, API keys, "sign out everywhere", the sliding cookie and bearer JWTs
behave as before (tests/auth, tests/apikeys). `GET /users/me` (authentication and
nothing else), two servers of each commit side by side on one database, one uvicorn
worker each, wrk at 16 connections, 6 interleaved rounds of 4 s (23:00 UTC, load 5):
before, a median of 4.47 and 4.44 ms of server CPU per request (145 and 166 requests/s);
after, 3.32 and 3.78 ms (217 and 195 requests/s): about 0.9 ms less per authenticated
request, a fifth. On `POST /api/chat` it is lost in the noise of this hour: py-spy
(`python -m bench.profile_http`, load 10, about 1,000 samples each) put the sign-in at
4.9% of the samples before and 5.7% after, dependency solving at 10.0% and 9.6%.

**2. The turn's statements.** The prebuilt `TextClause`s of `app/turns/repository.py`
(still generated from the tables) now run on the session's Core connection
(`app.core.prebuilt.execute`) instead of through `AsyncSession.execute`. Per statement,
in process (`SELECT` of two values, 6 rounds of 2,000, CPU time): 333 µs minimum, 371
median through the ORM session; 349 and 426 on the Core connection; 186 and 313 with
asyncpg's own `fetchrow` on the same connection. So the ORM session adds nothing worth
measuring on a prebuilt text statement; SQLAlchemy's Core execution (cache lookup,
parameter processing, the greenlet hop, the result) is the 100-odd µs left above the
driver. What is left to take is round trips: `POST /api/chat` still makes 10, two of them
`BEGIN`. The closing transaction (`BEGIN`, claim the reply, insert it, `COMMIT`) could be
one statement sent without a transaction block, 7 round trips instead of 10, once the
assistant's `record` step no longer needs to run between its two statements.

**Where a streamed reply's CPU goes** (py-spy on the one process through two bursts of
100 streamed replies, before the changes, 4,075 samples): SQLAlchemy 27% of the samples
and asyncpg 19% (the turn's statements and the once-a-second checkpoints of partial
replies), uvicorn's sends 8% (30 `delta` events a reply, each its own write), the model
client (aiohttp and openai) 10%, FastAPI 3%, Chatkeep's own code 6%. The 2 ms target is a
tenth of what this machine gave this hour; it needs fewer writes per reply (coalescing
deltas that arrive together), fewer statements per turn, and a quiet machine to tell.

**3. Web processes by default.** `WORKERS=0` (the default) starts one process per core,
up to 4, unless that would split something held per process: with the local model (the
default assistant) or rate limits counted in `memory://` (the default) it starts one and
says why ([operations](operations.md#web-processes)). The default `make run` therefore
still serves with one process; a deployment with a model elsewhere and Redis for the
counts gets one per core. Several processes on the embedded PostgreSQL were already
tested (`tests/core/test_embedded_process.py`, 3 workers): the server is started once and
its address handed to every process, each with its own pool and `LISTEN` connection.

**4. The ASGI server.** granian 2.8.9 (`--interface asgi --loop uvloop`, one worker)
against uvicorn with httptools and uvloop (one worker), same code, same database, `POST
/api/chat` under wrk at 16 connections, 4 interleaved rounds of 5 s: granian a median of
20 turns/s at 17.3 ms of server CPU per turn, uvicorn 19 turns/s at 16.9 ms. No margin
that survives repeated runs, so uvicorn stays and granian is not in the lock files. The
bench can repeat the comparison: `BENCH_ASGI_SERVER=granian python -m bench --only http
--mode quick --no-doc` (with granian installed).

The commands: `python -m bench --mode quick --only turns,http,real_model --no-doc` (the
goal rows), `python -m bench.profile_http` (py-spy, needs `py-spy` on PATH), and, for the
pairs, two servers of the two commits on one migrated database driven by wrk in turns.
"""


async def _main(mode: Mode, sections: list[str], report: Report) -> None:
    server = await asyncio.to_thread(BenchServer.start)
    report.environment["PostgreSQL"] = f"{await server.version()} ({server.kind})"
    redis_url = os.environ.get("BENCH_REDIS_URL", turn_cost.DEFAULT_REDIS_URL)
    report.environment["Redis"] = redis_url or "off"
    print(
        f"PostgreSQL {report.environment['PostgreSQL']}; Redis {report.environment['Redis']}",
        flush=True,
    )
    loads: list[str] = []
    try:
        for name in sections:
            started = time.perf_counter()
            load = os.getloadavg()[0]
            loads.append(f"{name} {load:.1f}")
            print(f"\n-- {name} -- (load average {load:.1f})", flush=True)
            if name not in RUNNERS:
                raise SystemExit(f"unknown section {name}; sections: {', '.join(SECTIONS)}")
            figures = await RUNNERS[name](server, report, mode)
            report.figures.update(figures)
            report.figures.setdefault("section_seconds", {})[name] = round(
                time.perf_counter() - started, 1
            )
    finally:
        report.environment["1-min load average as each section began"] = ", ".join(loads)
        await server.drop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--mode", choices=sorted(MODES), default="full")
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/performance.md")
    args = parser.parse_args(argv)
    mode = MODES[args.mode]
    sections = args.only.split(",") if args.only else list(SECTIONS)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.basicConfig(level=logging.WARNING)

    command = {"full": "make bench", "quick": "make bench-quick"}.get(
        mode.name, f"python -m bench --mode {mode.name}"
    )
    report = Report(mode=mode.name, command=command)
    m = machine()
    print(
        f"Chatkeep bench, mode {mode.name}: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB",
        flush=True,
    )
    started = time.perf_counter()
    asyncio.run(_main(mode, sections, report))
    elapsed = time.perf_counter() - started
    if report.goals:
        print(report.goals_table().text())
    path = report.write_json()
    print(f"\nResults: {path.relative_to(path.parents[2])}; total {elapsed:.0f}s")
    if not args.no_doc and mode.name in ("full", "quick") and not args.only:
        write_doc(report, elapsed, DOC_INTRO)
        print("docs/performance.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
