"""The page's account flows in a real Chromium: forgot password, Settings, delete, download."""

from __future__ import annotations

import email
import email.policy
import io
import json
import re
import time
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser

NEW_PASSWORD = "marmalade comets over lisbon"


def _reset_path(outbox: Path, to: str, timeout: float = 15) -> str:
    """The path and #token of the reset link mailed to `to` (the .eml outbox)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == to:
                body = message.get_content()  # type: ignore[attr-defined]
                found = re.search(r"https?://[^/\s]+(/reset-password#token=\S+)", body)
                assert found, body
                return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no reset email for {to} in {outbox}")


def test_forgot_password_from_the_sign_in_form_to_a_new_password(new_page, live_server, api):
    address = live_server.new_email("forgot")
    page = new_page().open().sign_up(address)
    p = page.page
    p.get_by_role("button", name="Sign out").click()

    p.get_by_role("button", name="Forgot password?").click()
    expect(p.get_by_role("heading", name="Reset your password")).to_be_visible()
    p.locator("#recover").get_by_label("Email").fill(address)
    p.get_by_role("button", name="Send the link").click()
    expect(p.locator("#recover-done")).to_contain_text("we sent it a link")

    link = _reset_path(live_server.settings.data_dir / "outbox", address)
    p.goto(live_server.url + link)
    assert "token" not in p.url  # taken out of the address bar at once
    box = p.get_by_label("New password")
    box.fill("12345678")
    p.get_by_role("button", name="Set the new password").click()
    expect(p.locator("#reset-error")).to_contain_text("too common")
    box.fill(NEW_PASSWORD)
    p.get_by_role("button", name="Set the new password").click()
    expect(p.locator("#auth-error")).to_have_text(
        "Your password is changed. Sign in with the new one."
    )

    p.get_by_label("Email").fill(address)
    p.get_by_label("Password").fill(NEW_PASSWORD)
    p.get_by_role("button", name="Sign in").click()
    expect(p.locator("#who")).to_have_text(address)
    old = api.post("/auth/jwt/login", data={"username": address, "password": TEST_PASSWORD})
    assert old.status_code == 400


def test_settings_lists_sign_ins_and_signs_out_other_devices(new_page, live_server):
    address = live_server.new_email("devices")
    laptop = new_page().open().sign_up(address)
    phone = new_page(viewport={"width": 390, "height": 800}).open().sign_in(address)

    p = laptop.page
    p.get_by_role("button", name="Settings").click()
    rows = p.locator("#sign-ins > li")
    expect(rows).to_have_count(2)
    expect(p.locator('#sign-ins > li[data-current="true"]')).to_contain_text("This device")
    expect(rows.first).to_contain_text("Chrome")
    p.get_by_role("button", name="Sign out of other devices").click()
    expect(p.locator("#end-others-done")).to_have_text("Signed out of 1 other device.")
    expect(rows).to_have_count(1)

    phone.page.reload()
    expect(phone.page.get_by_role("heading", name="Sign in")).to_be_visible()
    # The laptop carries on.
    p.get_by_role("button", name="Back to my chats").click()
    laptop.say("still here")


def test_download_my_data_and_delete_the_account(new_page, live_server, api):
    address = live_server.new_email("leaver")
    page = new_page().open().sign_up(address)
    page.say("something to take along")
    p = page.page
    p.get_by_role("button", name="Settings").click()

    with p.expect_download() as info:
        p.get_by_role("button", name="Download my data").click()
    download = info.value
    assert download.suggested_filename.startswith("chatkeep-my-data-")
    archive = zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes()))
    assert json.loads(archive.read("account.json"))["profile"]["email"] == address
    assert "something to take along" in archive.read("conversations.json").decode()

    p.get_by_role("button", name="Delete account…").click()
    dialog = p.get_by_role("dialog", name="Delete your account?")
    confirm = dialog.get_by_role("button", name="Delete my account")
    expect(confirm).to_be_disabled()
    dialog.get_by_label("Type DELETE to confirm").fill("DELETE")
    dialog.get_by_label("Your password").fill("not my password really")
    confirm.click()
    expect(dialog.locator("#delete-error")).to_have_text("Your current password is not right.")
    dialog.get_by_label("Your password").fill(TEST_PASSWORD)
    confirm.click()
    expect(p.locator("#auth-error")).to_have_text("Your account and everything in it are deleted.")
    r = api.post("/auth/jwt/login", data={"username": address, "password": TEST_PASSWORD})
    assert r.status_code == 400
