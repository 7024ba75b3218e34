"""Chat controls in a real browser: attaching an image, switching versions, copying code."""

from __future__ import annotations

import base64
import io

from PIL import Image
from playwright.sync_api import expect

from harness.fake_upstream import Reply
from tests.e2e.helpers import finished_reply, replies, send, user_messages


def test_an_attached_image_is_shown_and_sent_as_a_content_part(page, upstream, tmp_path):
    picture = tmp_path / "red.png"
    Image.new("RGB", (40, 30), "red").save(picture)
    page.goto("/")
    page.get_by_label("Attach images").set_input_files(str(picture))
    chosen = page.get_by_role("list", name="Chosen images")
    expect(chosen.get_by_role("img", name="red.png")).to_be_visible()  # a thumbnail
    send(page, "What colour is this?")
    finished_reply(page)

    expect(user_messages(page).last.get_by_role("img")).to_have_count(1)
    parts = upstream.sent_messages()[-1]["content"]
    assert parts[0] == {"type": "text", "text": "What colour is this?"}
    url = parts[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (40, 30)


def test_regenerate_then_switch_between_versions(page, upstream):
    upstream.enqueue(Reply("First answer."), Reply("Second answer."))
    page.goto("/")
    send(page, "Answer me")
    finished_reply(page)
    replies(page).last.get_by_role("button", name="Regenerate").click()
    expect(replies(page).last).to_contain_text("Second answer.")
    finished_reply(page)

    versions = page.get_by_role("group", name="Versions of this message")
    expect(versions).to_contain_text("2 / 2")
    versions.get_by_role("button", name="Previous version").click()
    expect(replies(page).last).to_contain_text("First answer.")
    expect(page.get_by_role("group", name="Versions of this message")).to_contain_text("1 / 2")
    assert upstream.sent_messages(0) == upstream.sent_messages(1)


def test_copy_code_puts_the_code_on_the_clipboard(new_context, upstream):
    context = new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    upstream.enqueue(Reply("Try this:\n\n```python\nprint('ciao')\n```\n"))
    page.goto("/")
    send(page, "Code please")
    reply = finished_reply(page)
    reply.get_by_role("button", name="Copy code").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()").strip() == "print('ciao')"
