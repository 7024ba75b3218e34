"""Importing an export in the browser: the sidebar link, the upload, the report, the chat."""

from __future__ import annotations

import json
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
        page.get_by_role("checkbox", name="Sidebar").click()  # the drawer
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


def long_export(conversations: int = 150, turns: int = 10) -> bytes:
    """A ChatGPT export large enough to take a few seconds to import."""
    items = []
    for number in range(conversations):
        mapping, parent = {"root": {"id": "root", "parent": None, "message": None}}, "root"
        for turn in range(turns * 2):
            key, role = f"n{turn}", ("user", "assistant")[turn % 2]
            mapping[key] = {"id": key, "parent": parent, "message": {
                "author": {"role": role}, "create_time": 1.7e9 + number * 100 + turn,
                "content": {"content_type": "text", "parts": [f"Message {turn} " * 40]},
                "recipient": "all", "metadata": {}}}
            parent = key
        items.append({"title": f"Long {number}", "conversation_id": f"long-{number}",
                      "current_node": parent, "mapping": mapping})
    return json.dumps(items).encode()


def test_the_progress_bar_follows_a_long_import(new_context, tmp_path):
    page = new_context(viewport=PHONE).new_page()
    export = tmp_path / "conversations.json"
    export.write_bytes(long_export())
    page.goto("/import")
    page.get_by_label("Export file (.json or .zip)").set_input_files(export)
    page.get_by_role("button", name="Import").click()
    progress = page.locator("progress#import-progress")
    expect(progress).to_be_visible()
    screenshot(page, "phone-import-progress")
    expect(page.get_by_role("link", name="Import another file")).to_be_visible(timeout=120_000)
    expect(progress).to_have_count(0)
    expect(page.get_by_role("status")).to_have_text("150 conversations imported.")


def test_without_javascript_the_progress_page_refreshes_to_the_end(new_context, tmp_path):
    page = new_context(java_script_enabled=False, viewport=WIDE).new_page()
    export = tmp_path / "conversations.json"
    export.write_bytes(long_export(conversations=80))
    page.goto("/import")
    page.get_by_label("Export file (.json or .zip)").set_input_files(export)
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status")).to_have_text("80 conversations imported.",
                                                    timeout=120_000)
    expect(page.locator(".import-list").get_by_role("link", name="Long 79")).to_be_visible()
    screenshot(page, "wide-import-no-javascript-done")
