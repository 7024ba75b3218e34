"""A phone-sized screen can read and send; screenshots of the main screens, light and dark."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from harness.fake_upstream import Reply
from tests.e2e.conftest import PHONE
from tests.e2e.helpers import (finished_reply, menu_item, message_box, open_menu, replies,
                               screenshot, send, user_messages)
from tests.e2e.test_chat import TABLE_AND_CODE

HEADED = "## Cities\n\nA short list, then code.\n\n"


def test_a_phone_can_read_and_send(new_context, upstream):
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    page.goto("/")
    expect(message_box(page)).to_be_visible()
    upstream.enqueue(Reply(TABLE_AND_CODE))
    send(page, "Hello from a phone")
    expect(finished_reply(page).get_by_role("table")).to_be_visible()

    send(page, "And again")
    expect(finished_reply(page)).to_contain_text("You said: And again")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the page scrolls sideways on a phone"
    expect(page.get_by_role("button", name="Send")).to_be_in_viewport()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_screenshots_of_the_main_screens(new_context, upstream, device, scheme):
    options = {"color_scheme": scheme}
    if device == "phone":
        options |= {"viewport": PHONE, "is_mobile": True, "has_touch": True}
    page = new_context(**options).new_page()
    page.goto("/")
    screenshot(page, f"{device}-{scheme}-new-chat")
    page.get_by_role("button", name="Settings").click()
    screenshot(page, f"{device}-{scheme}-new-chat-settings")
    page.keyboard.press("Escape")

    upstream.enqueue(Reply(tokens=["Thinking about ", "it: "] + [f"w{i} " for i in range(400)],
                           token_delay=0.03),
                     Reply(HEADED + TABLE_AND_CODE + "\nA [link](https://example.org) and `inline code`."))
    send(page, "Write a long answer")
    expect(replies(page).last).to_contain_text("w20")
    screenshot(page, f"{device}-{scheme}-streaming")
    page.get_by_role("button", name="Stop").click()
    finished_reply(page, "stopped")
    send(page, "Show me a table and some code")
    finished_reply(page)
    screenshot(page, f"{device}-{scheme}-conversation")
    open_menu(page)
    screenshot(page, f"{device}-{scheme}-menu-open")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Settings").click()
    screenshot(page, f"{device}-{scheme}-settings-open")
    page.keyboard.press("Escape")
    user_messages(page).last.get_by_label("Edit", exact=True).click()
    screenshot(page, f"{device}-{scheme}-editing")
    user_messages(page).last.get_by_role("button", name="Cancel").click()
    if device == "phone":
        page.get_by_role("checkbox", name="Sidebar").tap()
        expect(page.get_by_role("link", name="New chat")).to_be_in_viewport(ratio=1)
        page.wait_for_timeout(300)  # the drawer's slide
        screenshot(page, f"{device}-{scheme}-drawer-open")
        page.keyboard.press("Escape")
    page.goto("/search?q=table")
    screenshot(page, f"{device}-{scheme}-search")
    page.go_back()
    menu_item(page, "Share").click()
    page.get_by_role("button", name="Create link").click()
    screenshot(page, f"{device}-{scheme}-share-controls")
    link = page.get_by_role("textbox", name="Anyone with this link can read the conversation")
    page.goto(link.input_value())
    screenshot(page, f"{device}-{scheme}-shared-page")
    page.get_by_role("link", name="Continue this conversation").click()
    page.get_by_role("button", name="Copy into my chats").click()
    upstream.enqueue(Reply(status=429, retry_after="0"), Reply(status=429, retry_after="0"),
                     Reply(status=429, retry_after="0"))
    send(page, "Once more")
    finished_reply(page, "error")
    screenshot(page, f"{device}-{scheme}-error")
