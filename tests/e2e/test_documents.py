"""Documents in a real browser: chips before and after sending, the text they open, a
refusal that keeps the message, the plain form without JavaScript; screenshots."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from harness.fake_upstream import Reply
from harness.pdf_samples import pdf_of_pages, text_pdf
from tests.e2e.conftest import PHONE
from tests.e2e.helpers import (finished_reply, message_box, screenshot, send,
                               user_messages)

NOTES = "# Launch\n\nThe launch is on <b>Tuesday</b> & nothing else.\n"


def files(tmp_path) -> dict:
    """A Markdown file, a PDF with text, and a scanned PDF (no text), on disk."""
    made = {"notes.md": NOTES.encode(), "report.pdf": text_pdf("Quarterly report",
                                                               "Revenue grew 12 percent."),
            "scan.pdf": pdf_of_pages([[]])}
    for name, data in made.items():
        (tmp_path / name).write_bytes(data)
    return {name: str(tmp_path / name) for name in made}


def test_documents_are_chosen_as_chips_sent_whole_and_opened(new_context, upstream, tmp_path):
    paths = files(tmp_path)
    upstream.enqueue(Reply("It is on Tuesday."))
    page = new_context(expected_console_errors=("422",)).new_page()  # the refused send
    page.goto("/")
    attach = page.get_by_label("Attach documents")
    attach.set_input_files([paths["scan.pdf"]])
    chosen = page.get_by_role("list", name="Chosen documents")
    expect(chosen).to_contain_text("scan.pdf")
    expect(chosen).to_contain_text("has no text to read")  # said before sending
    message_box(page).fill("When is the launch?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#form-error")).to_contain_text("“scan.pdf” has no text to read")
    expect(message_box(page)).to_have_value("When is the launch?")  # nothing lost

    chosen.get_by_role("button", name="Remove scan.pdf").click()
    attach.set_input_files([paths["notes.md"], paths["report.pdf"]])
    expect(chosen.get_by_role("listitem")).to_have_count(2)
    expect(chosen).to_contain_text("notes.md")
    expect(chosen).to_contain_text("about 15 tokens")  # 59 characters
    expect(chosen).to_contain_text("about 11 tokens")  # the PDF's 42 characters
    page.get_by_role("button", name="Send").click()
    finished_reply(page)

    assert upstream.sent_messages()[-1] == {"role": "user", "content": (
        f'<document name="notes.md">\n{NOTES}\n</document>\n\n'
        '<document name="report.pdf">\nQuarterly report\n\nRevenue grew 12 percent.\n'
        '</document>\n\nWhen is the launch?')}
    sent = user_messages(page).first.get_by_role("list", name="Attached documents")
    expect(sent.get_by_role("link")).to_have_count(2)
    expect(chosen).to_be_hidden()  # the message box is empty again

    send(page, "And the revenue?")
    expect(user_messages(page)).to_have_count(2)
    finished_reply(page)
    later = upstream.sent_messages()
    assert later[0]["content"].startswith('<document name="notes.md">')
    assert later[2] == {"role": "user", "content": "And the revenue?"}

    sent.get_by_role("link", name=re.compile("notes.md")).click()
    expect(page.get_by_role("heading", name="notes.md")).to_be_visible()
    expect(page.locator("pre.document-text")).to_have_text(NOTES.rstrip("\n"))
    page.get_by_role("link", name="Back").click()
    expect(user_messages(page)).to_have_count(2)


def test_documents_are_sent_with_the_plain_form_without_javascript(new_context, upstream,
                                                                    tmp_path):
    paths = files(tmp_path)
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/")
    page.get_by_label("Attach documents").set_input_files([paths["report.pdf"]])
    message_box(page).fill("Summarise")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/c/[\w-]+#m-\d+$"))
    expect(user_messages(page).last.get_by_role("link", name=re.compile("report.pdf"))) \
        .to_contain_text("about 11 tokens")
    assert upstream.sent_messages()[-1]["content"].endswith("</document>\n\nSummarise")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_screenshots_of_documents(new_context, upstream, tmp_path, device, scheme):
    paths = files(tmp_path)
    long_name = tmp_path / "a-rather-long-file-name-for-the-quarterly-figures-2026.csv"
    long_name.write_text("city,people\nLisbon,545000\n" * 200)
    options = {"color_scheme": scheme}
    if device == "phone":
        options |= {"viewport": PHONE, "is_mobile": True, "has_touch": True}
    page = new_context(**options).new_page()
    page.goto("/")
    page.get_by_label("Attach documents").set_input_files(
        [paths["notes.md"], str(long_name), paths["scan.pdf"]])
    chosen = page.get_by_role("list", name="Chosen documents")
    expect(chosen).to_contain_text("has no text to read")
    expect(chosen).to_contain_text("about 1,300 tokens")
    message_box(page).fill("Compare these")
    screenshot(page, f"{device}-{scheme}-documents-chosen")
    chosen.get_by_role("button", name="Remove scan.pdf").click()
    upstream.enqueue(Reply("They agree."))
    send(page, "Compare these")
    expect(user_messages(page)).to_have_count(1)
    finished_reply(page)
    screenshot(page, f"{device}-{scheme}-documents-sent")
    user_messages(page).last.get_by_role("link", name=re.compile("quarterly")).click()
    expect(page.locator("pre.document-text")).to_contain_text("Lisbon,545000")
    screenshot(page, f"{device}-{scheme}-document-text")
