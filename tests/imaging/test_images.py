"""Draft images: local cards, an OpenAI-compatible images API, serving and ownership."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from app.assistant.builtin import QUESTION
from app.assistant.factory import build_assistant
from app.core.clock import FrozenClock
from app.core.config import Settings
from app.main import create_app
from tests.assistant.localserver import LocalServer, Planned, Script, serve
from tests.conftest import chat, register

pytestmark = pytest.mark.storage


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


GENERATED = _png((200, 40, 40))


@pytest.fixture
def images_api() -> Iterator[tuple[Script, LocalServer]]:
    script = Script(Planned(body={"data": [{"b64_json": base64.b64encode(GENERATED).decode()}]}))
    with serve({"/v1/images/generations": script}) as server:
        yield script, server


def use_images_api(app: FastAPI, settings: Settings, server: LocalServer) -> None:
    app.state.assistant = build_assistant(
        settings.model_copy(
            update={
                "image_base_url": f"{server.url}/v1",
                "image_api_key": "img-key",
                "image_model": "dall-e-3",
                "llm_retry_backoff_seconds": 0.01,
            }
        )
    )


async def test_card_image_is_served_to_its_owner_with_cache_headers(
    client: httpx.AsyncClient,
) -> None:
    headers = await register(client)
    r = await chat(client, headers, "Create an Instagram post about our bakery with a picture")
    url = r.json()["imageUrl"]
    image = await client.get(url, headers=headers)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert Image.open(io.BytesIO(image.content)).size == (1200, 630)
    again = await client.get(url, headers={**headers, "If-None-Match": image.headers["etag"]})
    assert again.status_code == 304


async def test_images_api_draws_the_picture(
    app: FastAPI,
    settings: Settings,
    client: httpx.AsyncClient,
    images_api: tuple[Script, LocalServer],
) -> None:
    script, server = images_api
    use_images_api(app, settings, server)
    headers = await register(client)
    r = await chat(client, headers, "Create a Facebook post about Diwali with image")
    assert r.status_code == 200, r.text
    (sent,) = script.requests
    body = sent.json()
    assert sent.headers["authorization"] == "Bearer img-key"
    assert body["model"] == "dall-e-3"
    assert body["response_format"] == "b64_json"
    assert "Diwali" in body["prompt"]

    image = await client.get(r.json()["imageUrl"], headers=headers)
    assert image.content == GENERATED
    assert image.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    "planned",
    [
        Planned(status=500, body={"error": {"message": "no capacity"}}),
        Planned(body={"data": [{"b64_json": base64.b64encode(b"not an image").decode()}]}),
        Planned(body={"data": []}),
    ],
    ids=["server-error", "not-an-image", "empty"],
)
async def test_a_failed_image_still_gives_a_draft(
    app: FastAPI,
    settings: Settings,
    client: httpx.AsyncClient,
    images_api: tuple[Script, LocalServer],
    planned: Planned,
) -> None:
    script, server = images_api
    script.planned = [planned]
    use_images_api(app, settings, server)
    headers = await register(client)
    r = await chat(client, headers, "Create a Facebook post about Diwali with image")
    assert r.status_code == 200
    assert r.json()["imageUrl"] is None
    assert "could not add an image" in r.json()["reply"]
    assert r.json()["reply"].endswith(QUESTION)


async def test_images_outlive_the_process(
    client: httpx.AsyncClient, settings: Settings, clock: FrozenClock
) -> None:
    headers = await register(client)
    r = await chat(client, headers, "Create a Facebook post about Diwali with image")
    url = r.json()["imageUrl"]
    before = (await client.get(url, headers=headers)).content

    # A second application instance with its own engine and a fresh data dir.
    other = create_app(
        settings.model_copy(update={"data_dir": settings.data_dir / "elsewhere"}),
        clock=clock,
        migrate=False,
        run_sweeper=False,
    )
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c2:
            after = await c2.get(url, headers=headers)
    assert after.status_code == 200
    assert after.content == before
