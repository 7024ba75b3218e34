"""With JavaScript off, every flow still works: forms post, the server waits, pages redirect."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.helpers import menu_item, message_box, replies, user_messages


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


def test_share_and_open_the_link_without_javascript(new_context, upstream):
    owner = new_context(java_script_enabled=False).new_page()
    owner.goto("/")
    message_box(owner).fill("Shared without scripts")
    owner.get_by_role("button", name="Send").click()
    expect(replies(owner).last).to_have_attribute("data-status", "complete")
    menu_item(owner, "Share").click()
    owner.get_by_role("button", name="Create link").click()
    link = owner.get_by_role("textbox", name="Anyone with this link can read the conversation")
    expect(owner.get_by_role("button", name="Copy link")).to_be_hidden()  # needs scripts
    url = link.input_value()

    viewer = new_context(java_script_enabled=False).new_page()
    viewer.goto(url)
    expect(viewer.get_by_text("You said: Shared without scripts")).to_be_visible()
    viewer.get_by_role("link", name="Continue this conversation").click()
    viewer.get_by_role("button", name="Copy into my chats").click()
    message_box(viewer).fill("My own turn")
    viewer.get_by_role("button", name="Send").click()
    expect(replies(viewer).last).to_contain_text("You said: My own turn")
