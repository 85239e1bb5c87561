"""Interactive API docs served with local assets: they work with no network."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PREFIX = "/docs-assets"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def with_csp(page: HTMLResponse) -> HTMLResponse:
    """The page with a Content-Security-Policy: its own assets, plus its inline start-up
    script by hash (never 'unsafe-inline' for scripts). Swagger UI and ReDoc set styles
    inline at run time, and ReDoc runs a worker from a blob."""
    body = bytes(page.body)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(body.decode())
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    )
    return page


def _assets_dir() -> Path | None:
    # The fastapi-offline package ships current Swagger UI and ReDoc builds; only its files
    # are used, located without importing it.
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").exists() else None


def install_docs(app: FastAPI) -> None:
    assets = _assets_dir()
    if assets is None:
        raise RuntimeError("fastapi-offline is not installed: run `make install`")
    app.mount(ASSETS_PREFIX, StaticFiles(directory=assets), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return with_csp(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} API",
                swagger_js_url=f"{ASSETS_PREFIX}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_PREFIX}/swagger-ui.css",
                swagger_favicon_url=f"{ASSETS_PREFIX}/favicon.png",
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return with_csp(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} API",
                redoc_js_url=f"{ASSETS_PREFIX}/redoc.standalone.js",
                redoc_favicon_url=f"{ASSETS_PREFIX}/favicon.png",
                with_google_fonts=False,
            )
        )
