"""Importing an export in the browser: the sidebar link, the upload, the report, the chat."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE
from tests.e2e.helpers import screenshot

SAMPLES = Path(__file__).parent.parent / "import_samples"
WIDE = {"width": 1366, "height": 900}


@pytest.mark.parametrize("size", [PHONE, WIDE], ids=["phone", "wide"])
def test_upload_an_export_and_open_an_imported_chat(new_context, size):
    page = new_context(viewport=size).new_page()
    page.goto("/")
    if size is PHONE:
        page.get_by_text("Conversations", exact=True).click()  # the sidebar is folded
    page.get_by_role("link", name="Import chats").click()
    expect(page.get_by_role("heading", name="Import chats")).to_be_visible()
    name = "phone" if size is PHONE else "wide"
    screenshot(page, f"{name}-import-form")

    page.get_by_label("Export file (.json or .zip)").set_input_files(
        SAMPLES / "chatgpt-modern-export.json")
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status").filter(
        has_text="2 conversations imported, 1 skipped")).to_be_visible()
    expect(page.get_by_text("It has no messages")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    screenshot(page, f"{name}-import-report")

    page.locator(".import-list").get_by_role("link",
                                              name="Deploying the staging cluster").click()
    expect(page).to_have_url(re.compile(r"/c/[\w-]+$"))
    expect(page.get_by_text("Restore from the last known-good chart.")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    screenshot(page, f"{name}-import-opened")
