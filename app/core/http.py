"""What every layer may ask of an HTTP request."""

from __future__ import annotations

from starlette.requests import HTTPConnection


def client_ip(request: HTTPConnection) -> str:
    """The peer address as the server sees it. Behind a proxy, run uvicorn with
    --forwarded-allow-ips so this is the client's and not the proxy's."""
    return request.client.host if request.client else "unknown"
