"""A phone-sized screen can read and send; screenshots of the main screens, light and dark."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE
from tests.e2e.helpers import finished_reply, menu_item, message_box, screenshot, send
from tests.e2e.test_chat import TABLE_AND_CODE
from tests.fake_upstream import Reply


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
    upstream.enqueue(Reply(TABLE_AND_CODE + "\nA [link](https://example.org) and `inline code`."))
    send(page, "Show me a table and some code")
    finished_reply(page)
    screenshot(page, f"{device}-{scheme}-conversation")
    menu_item(page, "Share").click()
    page.get_by_role("button", name="Create link").click()
    screenshot(page, f"{device}-{scheme}-share-controls")
    link = page.get_by_role("textbox", name="Anyone with this link can read the conversation")
    page.goto(link.input_value())
    screenshot(page, f"{device}-{scheme}-shared-page")
    page.get_by_role("button", name="Continue this conversation").click()
    upstream.enqueue(Reply(status=429, retry_after="0"), Reply(status=429, retry_after="0"),
                     Reply(status=429, retry_after="0"))
    send(page, "Once more")
    finished_reply(page, "error")
    screenshot(page, f"{device}-{scheme}-error")
