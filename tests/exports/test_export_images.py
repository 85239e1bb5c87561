"""Pictures in PDF exports: the user's own stored images, and nobody else's."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest
from PIL import Image
from pypdf import PdfReader

from app.exports.service import stored_image_id
from tests.conftest import chat, register

pytestmark = pytest.mark.storage

ASK_FOR_IMAGE = "Create a Facebook post about Diwali with image"


def pdf_images(data: bytes) -> list[Image.Image]:
    """Every image XObject drawn on the PDF's pages, decoded."""
    assert data.startswith(b"%PDF")
    return [img.image for page in PdfReader(io.BytesIO(data)).pages for img in page.images]


async def _conversation_with_image(client, headers) -> tuple[str, str]:
    r = await chat(client, headers, ASK_FOR_IMAGE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imageUrl"], body
    return body["sessionId"], body["imageUrl"]


async def _pdf(client, headers, sid: str) -> bytes:
    r = await client.get(f"/api/sessions/{sid}/export?format=pdf", headers=headers)
    assert r.status_code == 200
    return r.content


async def _zip_pdfs(client, headers) -> list[bytes]:
    r = await client.get("/api/export?format=zip", headers=headers)
    assert r.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    return [zf.read(n) for n in zf.namelist() if n.endswith(".pdf")]


async def test_pdf_export_shows_the_assistants_image(client, clock, settings):
    headers = await register(client)
    sid, url = await _conversation_with_image(client, headers)
    served = Image.open(io.BytesIO((await client.get(url, headers=headers)).content))

    (embedded,) = pdf_images(await _pdf(client, headers, sid))
    # The very picture the chat showed, pixel for pixel.
    assert embedded.size == served.size == (1200, 630)
    assert embedded.convert("RGB").tobytes() == served.convert("RGB").tobytes()
    # Downloads are made under DATA_DIR/spool, and nothing is left behind there.
    assert list((settings.data_dir / "spool").iterdir()) == []


async def test_zip_export_pdfs_show_their_images(client, clock, settings):
    headers = await register(client)
    await _conversation_with_image(client, headers)
    clock.advance(60)
    assert (await chat(client, headers, "Plan a trip to Lisbon")).status_code == 200

    counts = sorted(len(pdf_images(pdf)) for pdf in await _zip_pdfs(client, headers))
    assert counts == [0, 1]
    # Downloads are made under DATA_DIR/spool, and nothing is left behind there.
    assert list((settings.data_dir / "spool").iterdir()) == []


async def test_another_users_image_is_never_embedded(client, clock):
    owner = await register(client)
    other = await register(client)
    sid, url = await _conversation_with_image(client, owner)
    assert len(pdf_images(await _pdf(client, owner, sid))) == 1

    # The other user imports the owner's export: the messages keep the owner's imageUrl.
    # Hand-made messages point at the same image and at links that are no stored image.
    doc = (await client.get(f"/api/sessions/{sid}/export?format=json", headers=owner)).json()
    messages = doc["conversation"]["messages"]
    links = [url, f"{url}/../x", "https://example.com/a.png", "/api/images/not-a-uuid"]
    for i, link in enumerate(links, start=1):
        last = messages[-1]
        made = {"seq": last["seq"] + 1, "parentSeq": last["seq"], "imageUrl": link}
        messages.append({**last, **made, "content": f"made {i}"})
    doc["conversation"]["messageCount"] = len(messages)
    r = await client.post(
        "/api/import", files={"file": ("export.json", json.dumps(doc).encode())}, headers=other
    )
    assert r.status_code == 200, r.text
    (imported,) = r.json()["sessions"]

    pdf = await _pdf(client, other, imported)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "made 4" in text  # the messages are there, without pictures
    assert pdf_images(pdf) == []
    assert [len(pdf_images(p)) for p in await _zip_pdfs(client, other)] == [0]
    # And the image itself stays the owner's.
    assert (await client.get(url, headers=other)).status_code == 404


def test_only_stored_image_urls_name_an_image() -> None:
    image_id = uuid.uuid4()
    assert stored_image_id(f"/api/images/{image_id}") == image_id
    for url in (
        None,
        "",
        f"https://example.com/api/images/{image_id}",
        f"/api/images/{image_id}/",
        f"/api/images/{image_id}?x=1",
        "/api/images/../../etc/passwd",
        f"/api/images/{image_id.hex}x",
    ):
        assert stored_image_id(url) is None, url
