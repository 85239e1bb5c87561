"""The page's account flows in a real Chromium: forgot password, Settings, delete, download,
and confirming an email address."""

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


def _link_path(outbox: Path, to: str, page: str, count: int, timeout: float = 15) -> str:
    """The path and #token of the newest `page` link mailed to `to` (the .eml outbox)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == to:
                body = message.get_content()  # type: ignore[attr-defined]
                found += re.findall(rf"https?://[^/\s]+(/{page}#token=\S+)", body)
        if len(found) >= count:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} {page} emails for {to}")


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

    link = _link_path(live_server.settings.data_dir / "outbox", address, "reset-password", 1)
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

    # The phone hears it was signed out (its live stream ends), without a reload.
    expect(phone.page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(phone.page.locator("#auth")).to_contain_text("Your session has ended")
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


@pytest.fixture
def verifying_server(live_server, tmp_path):
    """A second server on the same database that requires a confirmed email to chat."""
    from tests.web.conftest import _settings, running_server

    assert live_server.settings.database_url
    settings = _settings(live_server.settings.database_url, tmp_path, require_verified_email=True)
    with running_server(settings, sweeper=False, clock=live_server.clock) as live:
        yield live


# The server first, so its pages close before it stops (a server stopping under open
# streams waits for them).
def test_an_unconfirmed_email_is_explained_resent_and_confirmed(verifying_server, new_page):
    address = verifying_server.new_email("unconfirmed")
    page = new_page(verifying_server).open().sign_up(address)
    p = page.page
    box = p.get_by_label("Message", exact=True)
    box.fill("hello before confirming")
    box.press("Enter")
    banner = p.locator("#verify-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("confirm your email")
    expect(box).to_have_value("hello before confirming")  # the message is kept

    banner.get_by_role("button", name="Resend the email").click()
    expect(banner).to_contain_text(f"We sent a new link to {address}")
    outbox = verifying_server.settings.data_dir / "outbox"
    link = _link_path(outbox, address, "verify-email", count=2)
    p.goto(verifying_server.url + link)
    expect(p.locator("#chat-notice")).to_contain_text("your email address is confirmed")
    page.say("hello after confirming")


def test_retention_shows_what_it_would_delete_before_saving(new_page, live_server):
    page = new_page().open().sign_up(live_server.new_email("retention"))
    page.say("a fresh conversation")
    p = page.page
    p.get_by_role("button", name="Settings").click()
    select = p.get_by_label("Delete conversations after")
    expect(select).to_have_value("")
    expect(p.locator("#retention-save")).to_be_disabled()
    select.select_option("30")
    expect(p.locator("#retention-preview")).to_have_text("This will delete 0 conversations now.")
    p.locator("#retention-save").click()
    expect(p.locator("#retention-preview")).to_have_text("Saved.")
    p.get_by_role("button", name="Back to my chats").click()
    p.get_by_role("button", name="Settings").click()
    expect(select).to_have_value("30")
    expect(p.locator("#retention-save")).to_be_disabled()
