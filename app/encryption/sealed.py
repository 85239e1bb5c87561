"""Sealed columns: the one place where rows are encrypted on the way in and out.

A model registers which of its columns hold user content. With ENCRYPTION_KEYS set, an
ORM write seals each such value (AES-256-GCM, see `app.encryption.crypto`) into its sealed
column, blanks the plaintext column (`''` or NULL) and records the key in `key_id`; an
ORM load opens it again, so every reader of the object sees plaintext. Without keys
nothing happens and the plaintext columns are used as always.

Text columns keep a sibling `<name>_sealed bytea` (the plaintext column keeps its type,
its constraints and its search indexes, which index nothing for sealed rows); a bytea
column (image bytes) holds the sealed bytes in place. Core statements that read or write
these columns use `open_column` and `seal_row`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import attributes, object_session

from app.encryption.crypto import (
    Keyring,
    associated_data,
    keyring_of,
    keyring_of_bind,
    open_or_refuse,
)

KEY_ID_COLUMN = "key_id"
_PLAIN = "chatkeep_plaintext"


@dataclass(frozen=True)
class SealedColumn:
    name: str  # the plaintext attribute
    stored: str  # where the sealed bytes go (== name for a bytea column)
    blank: Any = ""  # what the plaintext column holds once sealed
    kind: str = "text"  # "text", "bytes" or "json"


@dataclass(frozen=True)
class SealSpec:
    table: str
    columns: tuple[SealedColumn, ...]
    row_key: tuple[str, ...]  # the attributes naming the row, bound into the ciphertext

    def column(self, name: str) -> SealedColumn:
        return next(c for c in self.columns if c.name == name)

    def aad(self, column: str, get: Callable[[str], Any]) -> bytes:
        return self.aad_of(column, get("user_id"), tuple(get(k) for k in self.row_key))

    def aad_of(self, column: str, user_id: Any, row: tuple[Any, ...]) -> bytes:
        return associated_data(self.table, column, user_id, "/".join(str(v) for v in row))


SPECS: dict[type, SealSpec] = {}


def spec_of(model: type) -> SealSpec:
    return SPECS[model]


def _encode(column: SealedColumn, value: Any) -> bytes:
    if column.kind == "bytes":
        return bytes(value)
    if column.kind == "json":
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return str(value).encode()


def _decode(column: SealedColumn, data: bytes) -> Any:
    if column.kind == "bytes":
        return data
    if column.kind == "json":
        return json.loads(data)
    return data.decode()


def seal_values(
    keyring: Keyring, spec: SealSpec, get: Callable[[str], Any]
) -> tuple[str, dict[str, Any]]:
    """The key id and the column values that store the row's content sealed."""
    out: dict[str, Any] = {}
    kid = keyring.primary.kid
    for c in spec.columns:
        value = get(c.name)
        if value is None:
            out[c.stored] = None
            continue
        kid, out[c.stored] = keyring.seal(_encode(c, value), spec.aad(c.name, get))
        if c.stored != c.name:
            out[c.name] = c.blank() if callable(c.blank) else c.blank
    out[KEY_ID_COLUMN] = kid
    return kid, out


def seal_row(keyring: Keyring | None, model: type, row: dict[str, Any]) -> dict[str, Any]:
    """A row for a Core INSERT, its content sealed when encryption is on."""
    if keyring is None:
        return row
    _, values = seal_values(keyring, SPECS[model], row.__getitem__)
    return {**row, **values}


def open_column(
    keyring: Keyring | None,
    model: type,
    name: str,
    *,
    plain: Any,
    sealed: bytes | None,
    key_id: str | None,
    user_id: Any,
    row: tuple[Any, ...],
) -> Any:
    """The plaintext of one column read by a Core statement; `row` holds the values of the
    model's row key (e.g. `(session_id, seq)` for a message)."""
    if key_id is None:
        return plain
    spec = SPECS[model]
    column = spec.column(name)
    if sealed is None:
        return plain if column.stored == column.name else None
    aad = spec.aad_of(name, user_id, row)
    return _decode(column, open_or_refuse(keyring, key_id, bytes(sealed), aad))


# ------------------------------------------------------------------------- ORM events


def _seal_target(target: Any, spec: SealSpec, keyring: Keyring) -> None:
    plain = {c.name: getattr(target, c.name) for c in spec.columns}
    _, values = seal_values(keyring, spec, lambda n: getattr(target, n))
    for name, value in values.items():
        setattr(target, name, value)
    sa.inspect(target).info[_PLAIN] = plain


def _restore_plain(target: Any) -> None:
    plain = sa.inspect(target).info.pop(_PLAIN, None)
    for name, value in (plain or {}).items():
        attributes.set_committed_value(target, name, value)


def _open_target(
    target: Any, spec: SealSpec, session: Any, refreshed: set[str] | None = None
) -> None:
    state = target.__dict__
    kid = state.get(KEY_ID_COLUMN)
    if kid is None:
        return
    keyring = keyring_of(session) if session is not None else None
    get = state.__getitem__
    for c in spec.columns:
        if c.stored not in state or (refreshed is not None and c.stored not in refreshed):
            continue
        sealed = state[c.stored]
        if sealed is None:
            if c.stored != c.name:
                attributes.set_committed_value(target, c.name, None)
            continue
        data = open_or_refuse(keyring, kid, bytes(sealed), spec.aad(c.name, get))
        attributes.set_committed_value(target, c.name, _decode(c, data))


SealedWriteHook = Callable[[sa.Connection, Any, Keyring], None]
# Called after a row's content was sealed and written (the blind index hooks in here).
WRITE_HOOKS: dict[type, list[SealedWriteHook]] = {}


def on_sealed_write(model: type) -> Callable[[SealedWriteHook], SealedWriteHook]:
    """Calls the decorated `hook(connection, row, keyring)` after a row of `model` was
    sealed and written by the ORM."""

    def add(hook: SealedWriteHook) -> SealedWriteHook:
        hooks = WRITE_HOOKS.setdefault(model, [])
        if hook not in hooks:
            hooks.append(hook)
        return hook

    return add


def register(model: type, spec: SealSpec) -> None:
    """Seal `model`'s content columns on ORM writes and open them on ORM loads."""
    SPECS[model] = spec

    @event.listens_for(model, "before_insert")
    def _before_insert(mapper: Any, connection: sa.Connection, target: Any) -> None:
        keyring = keyring_of_bind(connection.engine)
        if keyring is not None:
            _seal_target(target, spec, keyring)

    @event.listens_for(model, "before_update")
    def _before_update(mapper: Any, connection: sa.Connection, target: Any) -> None:
        keyring = keyring_of_bind(connection.engine)
        if keyring is None:
            return
        state = sa.inspect(target)
        if any(state.attrs[c.name].history.has_changes() for c in spec.columns):
            # One key per row: a changed column re-seals them all under the newest key.
            _seal_target(target, spec, keyring)

    @event.listens_for(model, "after_insert")
    @event.listens_for(model, "after_update")
    def _after_write(mapper: Any, connection: sa.Connection, target: Any) -> None:
        sealed_now = _PLAIN in sa.inspect(target).info
        _restore_plain(target)
        keyring = keyring_of_bind(connection.engine)
        if sealed_now and keyring is not None:
            for hook in WRITE_HOOKS.get(model, ()):
                hook(connection, target, keyring)

    @event.listens_for(model, "load")
    def _load(target: Any, context: Any) -> None:
        _open_target(target, spec, context.session)

    @event.listens_for(model, "refresh")
    def _refresh(target: Any, context: Any, attrs: Any) -> None:
        # No context: attributes set by an ORM bulk UPDATE (only what it named).
        session = context.session if context is not None else object_session(target)
        _open_target(target, spec, session, set(attrs) if attrs is not None else None)
