"""The one settings object. Every knob has a laptop-friendly default and an UPPER_CASE env var."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "changethis", "dev", "development"}
MIN_SECRET_LENGTH = 32

# Checks a domain adds for the settings it parses itself, so that `core` imports no domain.
# Each raises ValueError naming the variable; `Settings()` turns it into a ValidationError.
# They are added when their domain is imported, which `app/__init__.py` does first.
SettingsCheck = Callable[["Settings"], None]
SETTINGS_CHECKS: list[SettingsCheck] = []


def settings_check(check: SettingsCheck) -> SettingsCheck:
    """Adds `check` to every `Settings()` validation (a decorator)."""
    if check not in SETTINGS_CHECKS:
        SETTINGS_CHECKS.append(check)
    return check


class ModelConfig(BaseModel):
    """One more model users may choose for a conversation (an entry of MODELS)."""

    model_config = ConfigDict(extra="forbid")

    # What conversations and messages record, and the API names: stable, short.
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
    # What the page shows in its picker.
    name: str = Field(min_length=1, max_length=100)
    backend: Literal["openai", "local", "builtin"] = "openai"
    # backend=openai: the API's base (before /chat/completions), the model it names
    # (default: `id`), the environment variable holding its key (never the key itself),
    # the header that carries it, and who decides what a message asks for.
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    auth_header: str = "Authorization"
    intents: Literal["model", "rules"] | None = None


# WORKERS=0 starts at most this many processes: with the default pools (DB_POOL_SIZE +
# DB_MAX_OVERFLOW, and the events listener) they stay within PostgreSQL's default
# max_connections of 100, the embedded server's included.
AUTO_WORKERS_MAX = 4


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity: a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    app_env: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    # Web server processes; 0 (the default): one per CPU core, at most AUTO_WORKERS_MAX, unless
    # something held per process would split (`single_process_reason`): then one.
    workers: int = Field(default=0, ge=0)
    # Idle keep-alive connections stay open this long. Above a proxy's idle timeout, and
    # long enough that a busy server never closes a connection its client is reusing.
    http_keep_alive_seconds: float = Field(default=75.0, gt=0)
    data_dir: Path = Path(".data")
    log_level: str = "INFO"

    # None means: start the embedded PostgreSQL under DATA_DIR.
    database_url: str | None = None
    # A direct, non-pooled connection to the same database (not through PgBouncer): used for
    # migrations and anything that needs a session of its own (session-level advisory
    # locks, LISTEN). None means DATABASE_URL.
    database_direct_url: str | None = None
    # "pgbouncer": DATABASE_URL points at PgBouncer in transaction mode, so no prepared
    # statement may outlive a transaction.
    db_pooler: Literal["none", "pgbouncer"] = "none"
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    # Client-side bounds: no request ever waits on the database for longer than these.
    db_pool_timeout_seconds: float = Field(default=3.0, gt=0)
    db_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    db_ping_timeout_seconds: float = Field(default=1.5, gt=0)
    db_command_timeout_seconds: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=4_000, ge=0)
    db_retry_after_seconds: int = Field(default=5, ge=1)
    # Backstop: PostgreSQL ends a connection left idle inside a transaction this long (the
    # app never waits on a client in one). 0 turns it off. Not sent with DB_POOLER=pgbouncer
    # (set it on the role instead: docs/operations.md).
    db_idle_in_transaction_timeout_ms: int = Field(default=60_000, ge=0)

    secret_key: str | None = None
    # Bearer tokens (API clients) keep a fixed lifetime; the web cookie slides (docs/api.md).
    access_token_ttl_seconds: int = 3600
    # Behind HTTPS: Secure cookies, and Strict-Transport-Security on every response.
    cookie_secure: bool = False
    sign_in_max_days: int = Field(default=30, ge=1, le=400)
    sign_in_idle_days: int = Field(default=7, ge=1, le=400)
    # Personal API keys (`ck_...`): how many one account may hold at once.
    api_keys_max_per_user: int = Field(default=50, ge=1, le=10_000)
    # The address links in emails point at; empty means http://HOST:PORT.
    public_url: str | None = None

    # Accounts: password policy (NIST 800-63B), reset and verification by email.
    password_min_length: int = Field(default=8, ge=8, le=64)
    password_min_score: int = Field(default=3, ge=0, le=4)
    password_hash_threads: int = Field(default=2, ge=1, le=64)
    reset_token_ttl_seconds: int = Field(default=1800, ge=60, le=86_400)
    verify_token_ttl_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)
    require_verified_email: bool = False
    # Outgoing mail: smtp://user:pass@host:587 (STARTTLS when offered), smtps://host:465
    # (TLS), ?starttls=require to insist. Empty: every message is written to DATA_DIR/outbox.
    smtp_url: str | None = None
    mail_from: str = "Chatkeep <no-reply@localhost>"
    mail_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # The mail outbox (a `mail` job per message): tries per message, the wait before the
    # second (doubled after each failure), and how long a sent or failed one is kept.
    mail_max_tries: int = Field(default=4, ge=1, le=10)
    mail_retry_seconds: float = Field(default=5.0, gt=0, le=600)
    mail_keep_minutes: float = Field(default=60.0, gt=0, le=7 * 24 * 60)
    hsts_max_age_seconds: int = Field(default=31_536_000, ge=0)
    # Set: GET /metrics requires `Authorization: Bearer <METRICS_TOKEN>`. Unset: open in
    # development and tests, 404 (off) with APP_ENV=production.
    metrics_token: str | None = None
    # The whole-database gauges of /metrics (counts of sessions, messages, users, sweeps)
    # are read at most once per this many seconds per process; scrapes in between reuse them.
    metrics_database_refresh_seconds: float = Field(default=60.0, ge=0, le=3600)

    session_ttl_seconds: int = 1800
    sweep_interval_seconds: int = 300
    sweep_batch_size: int = 1000
    sweep_batch_pause_seconds: float = 0.05
    # The share of the sweep's time spent in batches: after a batch that took t seconds it
    # rests t * (1 - share) / share (at least SWEEP_BATCH_PAUSE_SECONDS); 1: no pacing.
    sweep_busy_share: float = Field(default=0.5, gt=0, le=1)
    sweeper_enabled: bool = True
    # Trashed conversations are deleted for good this many days later (by the sweeper).
    trash_retention_days: int = Field(default=30, ge=1, le=3650)

    max_message_chars: int = 32_000
    # The longest reply a model may write: the runner stops reading the model there and
    # stores the reply cut and marked `truncated`. 200,000 characters is some fifty pages,
    # far beyond any answer or post, and small enough that a live turn, its checkpoint
    # and every follower's last frame stay small.
    max_reply_chars: int = Field(default=200_000, ge=1000)
    max_request_bytes: int = 1_048_576
    context_max_messages: int = 50
    context_max_chars: int = 24_000

    # Downloads (exports, "my data") one user may have in progress at once, per process.
    download_max_per_user: int = Field(default=3, ge=1, le=100)

    # Jobs (the ZIP of everything, imports): docs/operations.md#jobs.
    # Run a job worker inside every app process (off: only `python -m app worker` runs jobs).
    job_worker_enabled: bool = True
    # Jobs one worker runs at once (each is a task of the worker's process).
    job_concurrency: int = Field(default=1, ge=1, le=32)
    # How often an idle worker looks for a queued job (a job started in the same process
    # wakes its worker at once).
    job_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # A running job writes a heartbeat this often; one silent for JOB_STALE_SECONDS is
    # taken again by any worker (its process died), at most JOB_MAX_ATTEMPTS tries in all.
    job_heartbeat_seconds: float = Field(default=5.0, gt=0)
    job_stale_seconds: float = Field(default=60.0, gt=0)
    job_max_attempts: int = Field(default=3, ge=1, le=10)
    # A finished job (its result, its error) is kept this long, then purged.
    job_result_ttl_hours: float = Field(default=24.0, gt=0, le=24 * 90)
    # How often expired jobs are purged (a scheduled run, once per interval in all).
    job_purge_interval_seconds: float = Field(default=300.0, gt=0)

    # Scheduled runs (docs/operations.md#data-retention): each job worker queues every due
    # run once per interval across all processes; off, this process queues none (its
    # worker still runs the ones others queued).
    scheduled_jobs_enabled: bool = True
    # How often each purge runs (the trash, share links, idempotency keys, sign-ins, the
    # account audit), and how many rows one transaction of it deletes.
    purge_interval_seconds: float = Field(default=300.0, gt=0)
    purge_batch_size: int = Field(default=1000, ge=1, le=100_000)
    # An expired share link is deleted this many days after it ended (a revoked one is
    # deleted at once).
    share_link_purge_grace_days: int = Field(default=30, ge=0, le=3650)
    # A chat request's Idempotency-Key is honoured at least this long (the API says 24 h).
    idempotency_key_ttl_hours: float = Field(default=24.0, ge=24, le=24 * 365)
    # An ended or expired sign-in is deleted this many hours later.
    sign_in_purge_after_hours: float = Field(default=0.0, ge=0, le=24 * 365)
    # Retention: conversations idle longer than a user's setting (30/90/180/365 days) go to
    # the trash, at most this many days for everyone (None: no maximum), every interval.
    retention_max_days: int | None = Field(default=None, ge=1, le=36_500)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    # Retention deletes for good at once rather than moving to the trash (no Undo).
    retention_skip_trash: bool = False
    # The account audit trail (account deletions) is kept this many days.
    account_event_retention_days: int = Field(default=400, ge=1, le=36_500)

    # PDF export: past either bound a PDF ends with a note (export JSON for everything).
    pdf_max_pages: int = Field(default=2000, ge=1)
    pdf_time_budget_seconds: float = Field(default=30.0, gt=0)

    # Import of exports (docs/export-format.md).
    max_import_bytes: int = 50 * 1024 * 1024
    max_import_uncompressed_bytes: int = 100 * 1024 * 1024
    max_import_compression_ratio: int = 100
    max_import_conversations: int = 10_000
    max_import_messages: int = 200_000
    # One conversation as parsed (its text plus 64 bytes per JSON value): the most an
    # import holds in memory at once, whatever the file's size.
    max_import_conversation_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # One INSERT of an import's messages carries at most this much text.
    import_batch_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Imports over this size (and every ZIP) run one at a time per process; the rest wait
    # in a line of IMPORT_QUEUE_LENGTH for up to IMPORT_QUEUE_WAIT_SECONDS, then get 503.
    import_large_bytes: int = Field(default=1024 * 1024, ge=0)
    import_queue_length: int = Field(default=4, ge=0)
    import_queue_wait_seconds: float = Field(default=30.0, ge=0)

    # "local": the small model that ships with the app (SmolLM2 135M, in a child process),
    # used when no other backend is configured; "openai": any OpenAI-compatible server;
    # "builtin": rules and templates only, no model.
    assistant_backend: Literal["local", "openai", "builtin"] = "local"
    # ASSISTANT_BACKEND=local (docs/assistant.md). CPU threads of the model process
    # (they wait passively, so a busy machine is not made busier).
    local_model_threads: int = Field(default=2, ge=1, le=64)
    # Replies the model generates at once (llama.cpp's slots, batched); the rest wait in line.
    local_model_parallel: int = Field(default=4, ge=1, le=32)
    # Replies waiting in line beyond those; one more fails at once with 502.
    local_model_queue_size: int = Field(default=100, ge=0)
    local_model_context_tokens: int = Field(default=2048, ge=256, le=8192)
    local_model_max_tokens: int = Field(default=256, ge=1, le=4096)
    # History the model sees, newest first, in characters (a small model, a short memory).
    local_model_history_chars: int = Field(default=2000, ge=0)
    local_model_temperature: float = Field(default=0.0, ge=0, le=2)
    local_model_start_timeout_seconds: float = Field(default=60.0, gt=0)
    # More models to choose from per conversation, beside the one ASSISTANT_BACKEND names
    # (the default): a JSON list of ModelConfig (docs/assistant.md#several-models).
    models: list[ModelConfig] = Field(default_factory=list)
    # ASSISTANT_BACKEND=openai: any OpenAI-compatible chat-completions server.
    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_auth_header: str = "Authorization"  # "api-key" for Azure OpenAI
    # The whole model call of a turn, first token to last (a long reply streams for a while).
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    # How long an idle connection to the model server is kept for the next call. Keep it
    # below the server's own keep-alive timeout (5 s for uvicorn-based servers like vLLM),
    # so the server never closes a connection just as a request goes out on it.
    llm_keepalive_seconds: float = Field(default=4.0, gt=0, le=300)
    llm_temperature: float = 0.7
    # "model": the model decides what the user means (tool calls, any language);
    # "rules": the built-in English rules decide, the model only writes.
    llm_intents: Literal["model", "rules"] = "model"

    # Token budgets per user (docs/assistant.md#usage-and-budgets): prompt and completion
    # tokens of every turn since the start of the day / month (UTC). Checked when a turn
    # opens: over either, 429 quota_exceeded. 0 means unlimited; an administrator may set
    # other figures for one user (PUT /api/admin/users/{id}/budget).
    quota_tokens_per_day: int = Field(default=0, ge=0)
    quota_tokens_per_month: int = Field(default=0, ge=0)

    # Turns (docs/architecture.md): at most this many replies generating per process;
    # the next request gets 503 assistant_busy with Retry-After.
    max_turns_in_flight: int = Field(default=1000, ge=1)
    # Turns opening at once (sign-in check to first commit); None means DB_POOL_SIZE. The
    # rest wait in line, holding nothing, for up to TURN_OPEN_WAIT_SECONDS.
    turn_open_slots: int | None = Field(default=None, ge=1)
    turn_open_wait_seconds: float = Field(default=20.0, gt=0)
    # How often a generating turn saves its partial reply (for followers on other
    # instances) and proves it is alive; a turn silent for TURN_STALE_SECONDS is failed.
    turn_checkpoint_seconds: float = Field(default=1.0, gt=0)
    turn_stale_seconds: float = Field(default=30.0, gt=0)
    # On shutdown, replies still generating get this long to finish before they are failed.
    turn_shutdown_grace_seconds: float = Field(default=10.0, ge=0)

    # Live events (GET /api/events) fan out through PostgreSQL LISTEN/NOTIFY, or Redis.
    events_backend: Literal["postgres", "redis"] = "postgres"
    events_redis_url: str = "redis://127.0.0.1:6379/0"
    events_replay_buffer: int = Field(default=4096, ge=0)
    # A comment line on every open stream this often, so proxies keep it open.
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # A stream whose connection takes nothing for this long (its client does not read) is
    # dropped with an `error` event `slow_reader`; the client resumes with Last-Event-ID.
    sse_send_timeout_seconds: float = Field(default=30.0, gt=0)
    # How often each process checks that the sign-ins of its open /api/events streams are
    # still live; a stream whose sign-in ended gets `signed_out` and closes.
    events_sign_in_check_seconds: float = Field(default=2.0, gt=0)
    # Draft images: a local card unless IMAGE_BASE_URL names an OpenAI-compatible images API.
    image_base_url: str | None = None
    image_api_key: str | None = None
    image_model: str = "dall-e-3"
    image_size: str = "1024x1024"
    image_timeout_seconds: float = 60.0
    # Where "yes" sends a draft: recorded locally, or also POSTed to a signed webhook.
    publish_backend: Literal["local", "webhook"] = "local"
    publish_webhook_url: str | None = None
    publish_webhook_secret: str | None = None
    publish_webhook_timeout_seconds: float = 10.0

    # Encryption at rest (docs/operations.md): `kid:base64url-32-bytes`, comma-separated.
    # The first key encrypts, all decrypt. Unset: content is stored as plaintext.
    encryption_keys: str | None = Field(default=None, repr=False)

    trusted_origins: list[str] = Field(default_factory=list)

    # Rate limits (docs/rate-limits.md): `limits` strings, several windows joined by ";".
    rate_limit_enabled: bool = True
    rate_limit_storage_url: str = "memory://"
    rate_limit_storage_timeout_seconds: float = 0.5
    rate_limit_key_prefix: str = "chatkeep"
    rate_limit_override_cache_seconds: float = 2.0
    rate_limit_chat: str = "20/minute;500/day"
    rate_limit_export: str = "10/minute"
    rate_limit_import: str = "5/hour"
    rate_limit_auth: str = "10/minute"
    rate_limit_credentials: str = "5/minute"
    rate_limit_default: str = "120/minute"
    rate_limit_shared: str = "60/minute"
    rate_limit_mail: str = "10/day"

    @model_validator(mode="after")
    def _check_db_timeouts(self) -> Settings:
        if self.db_statement_timeout_ms > self.db_command_timeout_seconds * 1000:
            # The server should give up first: its error is clean, a client timeout is not.
            raise ValueError("DB_STATEMENT_TIMEOUT_MS must not exceed DB_COMMAND_TIMEOUT_SECONDS")
        return self

    def direct_database_url(self) -> str | None:
        """Where migrations and session-level locks go: never through a pooler."""
        return self.database_direct_url or self.database_url

    @model_validator(mode="after")
    def _run_domain_checks(self) -> Settings:
        # What a domain parses, it checks (rate limits: app/ratelimit/config.py; keys:
        # app/encryption/config.py; SMTP_URL: app/mail/config.py).
        for check in SETTINGS_CHECKS:
            check(self)
        return self

    @model_validator(mode="after")
    def _check_production_secret(self) -> Settings:
        if self.app_env == "production":
            key = self.secret_key or ""
            if key.strip().lower() in PLACEHOLDER_SECRETS or len(key) < MIN_SECRET_LENGTH:
                raise ValueError(
                    "SECRET_KEY must be set to a random value of at least "
                    f"{MIN_SECRET_LENGTH} characters when APP_ENV=production "
                    '(e.g. python -c "import secrets; print(secrets.token_urlsafe(48))")'
                )
        return self

    @model_validator(mode="after")
    def _check_models(self) -> Settings:
        ids = [m.id for m in self.models]
        if len(set(ids)) != len(ids):
            raise ValueError("MODELS: each model needs an id of its own")
        for m in self.models:
            if m.backend == "openai" and not m.base_url:
                raise ValueError(f"MODELS: {m.id!r} (backend openai) needs a base_url")
        locals_ = [m for m in self.models if m.backend == "local"]
        if len(locals_) > 1 or (locals_ and self.assistant_backend == "local"):
            raise ValueError("MODELS: the local model runs once; name it at most once")
        return self

    @model_validator(mode="after")
    def _check_accounts(self) -> Settings:
        if self.sign_in_idle_days > self.sign_in_max_days:
            raise ValueError("SIGN_IN_IDLE_DAYS must not be more than SIGN_IN_MAX_DAYS")
        return self

    def link_base(self) -> str:
        """Where links in emails point: PUBLIC_URL, else this server's own address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def resolved_workers(self) -> int:
        """WORKERS, or when 0 the number that uses this machine's cores (see `workers`)."""
        if self.workers:
            return self.workers
        if self.single_process_reason() is not None:
            return 1
        return max(1, min(AUTO_WORKERS_MAX, usable_cpus()))

    def single_process_reason(self) -> str | None:
        """Why WORKERS=0 runs one process here, or None when it uses the cores."""
        if self.workers:
            return None
        if self.assistant_backend == "local":
            return "ASSISTANT_BACKEND=local: each process would start its own copy of the model"
        if self.rate_limit_enabled and self.rate_limit_storage_url.startswith("memory://"):
            return (
                "RATE_LIMIT_STORAGE_URL=memory://: each process would count on its own "
                "(use redis:// to share one count)"
            )
        return None

    def resolved_secret_key(self) -> str:
        """SECRET_KEY, or in development a key generated once and kept in DATA_DIR (mode 0600)."""
        if not self.secret_key:
            # Read (or make) it once; every request's token check asks for it.
            self.secret_key = self._load_or_create_secret_key()
        return self.secret_key

    def _load_or_create_secret_key(self) -> str:
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Write a private temp file, then link it into place: linking is atomic, so when
        # several workers start at once exactly one key wins and nobody reads a half file.
        tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        try:
            os.link(tmp, path)
        except FileExistsError:
            key = path.read_text().strip()
        finally:
            tmp.unlink(missing_ok=True)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
