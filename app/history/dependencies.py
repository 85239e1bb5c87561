"""Who is acting, for the audit trail of trash and restore."""

from __future__ import annotations

import uuid

from fastapi import Request

from app.conversations import trash
from app.core.http import client_ip


def actor_of(request: Request, user_id: uuid.UUID) -> trash.Actor:
    return trash.Actor(user_id=user_id, ip=client_ip(request))
