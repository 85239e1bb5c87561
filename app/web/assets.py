"""The page's static files: where they are, the prefix they are served under, and the
version that names them. The page and the share page both use them."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
STATIC_PREFIX = "/static"


@lru_cache
def asset_version() -> str:
    """A short hash of every static file: changes whenever an asset does, so browsers
    never mix a new page with old cached scripts."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class _RevalidatedStaticFiles(StaticFiles):
    """Static files a browser must revalidate (a cheap 304 by ETag) before each use.

    The page names its entry files with a version; the modules they import do not, so
    without this a browser could pair a new page with yesterday's modules after an upgrade.
    """

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def static_files() -> StaticFiles:
    return _RevalidatedStaticFiles(directory=STATIC_DIR)
