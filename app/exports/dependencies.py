"""Download slots (how many downloads a user has in progress at once), and the query of
an export of everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request

from app.auth.dependencies import CurrentUser
from app.core.validation import SaneDate
from app.exports import service
from app.exports.downloads import DownloadSlot, DownloadSlots
from app.history import service as history


async def download_slot(request: Request, user: CurrentUser) -> AsyncIterator[DownloadSlot]:
    """One of the user's download slots (429 `too_many_downloads` when all are taken),
    held until the download has been sent, or the client has gone."""
    slots: DownloadSlots = request.app.state.download_slots
    slot = slots.take(user.id)
    try:
        yield slot
    finally:
        slot.release()


DownloadSlotDep = Depends(download_slot)


def everything_filter(
    status: Annotated[history.StatusFilter, Query()] = "all",
    q: Annotated[str | None, Query(max_length=history.SEARCH_MAX_CHARS)] = None,
    date_from: Annotated[
        SaneDate | None, Query(alias="from", description="First day of last activity (UTC)")
    ] = None,
    date_to: Annotated[
        SaneDate | None,
        Query(alias="to", description="Last day of last activity (UTC), inclusive"),
    ] = None,
) -> history.SessionFilter:
    """The conversations an export of everything takes (`GET /api/export`,
    `POST /api/export/jobs`): `422 invalid_date_range` when `from` is after `to`."""
    return service.everything_filter(status=status, q=q, date_from=date_from, date_to=date_to)


EverythingFilter = Annotated[history.SessionFilter, Depends(everything_filter)]
