"""With JavaScript off, every flow still works: forms post, the server waits, pages redirect."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.helpers import message_box, replies, user_messages


def test_start_send_and_read_without_javascript(new_context, upstream):
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/")
    message_box(page).fill("Hello without scripts")
    page.get_by_role("button", name="Send").click()

    expect(page).to_have_url(re.compile(r"/c/[\w-]+#m-\d+$"))
    expect(replies(page).last).to_contain_text("You said: Hello without scripts")
    expect(replies(page).last).to_have_attribute("data-status", "complete")

    message_box(page).fill("And a second one")
    page.get_by_role("button", name="Send").click()
    expect(user_messages(page)).to_have_count(2)
    expect(replies(page).last).to_contain_text("You said: And a second one")
    assert [m["role"] for m in upstream.sent_messages()] == ["user", "assistant", "user"]
