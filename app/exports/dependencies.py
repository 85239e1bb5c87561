"""Download slots: how many downloads a user has in progress at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Depends, Request

from app.auth.dependencies import CurrentUser
from app.exports.downloads import DownloadSlot, DownloadSlots


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
