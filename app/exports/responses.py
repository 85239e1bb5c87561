"""The response of every download: produced first, then sent (app/exports/downloads.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.background import BackgroundTask
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app.exports import naming
from app.exports.downloads import Download


class DownloadResponse(Response):
    """Runs `produce` when the response is sent, then sends the finished file.

    FastAPI sends a response after the route's dependencies of function scope have ended,
    so the request's own transaction has committed and its connection is back in the pool
    before the download is made; `produce` reads in short transactions of its own, and the
    file goes out with nothing of the database held. An error while producing (the
    conversation deleted meanwhile) comes before the first byte, as a problem response.
    """

    def __init__(
        self,
        produce: Callable[[], Awaitable[Download]],
        *,
        media_type: str,
        headers: Mapping[str, str],
    ) -> None:
        self.produce = produce
        self.status_code = 200
        self.media_type = media_type
        self.background: BackgroundTask | None = None
        # No body yet, so no Content-Length: it is set once the file is made.
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        download = await self.produce()
        try:
            headers = dict(self.headers)
            headers["content-length"] = str(download.size)
            response = StreamingResponse(
                # File reads in the thread pool: the event loop never waits on the disk.
                iterate_in_threadpool(download.chunks()),
                media_type=self.media_type,
                headers=headers,
                background=self.background,
            )
            await response(scope, receive, send)
        finally:
            download.close()


def attachment(
    produce: Callable[[], Awaitable[Download]],
    *,
    media_type: str,
    file_name: str,
    unicode_name: str | None = None,
) -> DownloadResponse:
    """A download sent as an attachment named `file_name` (`unicode_name` too, when it is
    not ASCII), never kept in a cache: every download route's answer."""
    headers = {
        "Content-Disposition": naming.content_disposition(file_name, unicode_name),
        "Cache-Control": "no-store",
    }
    return DownloadResponse(produce, media_type=media_type, headers=headers)
