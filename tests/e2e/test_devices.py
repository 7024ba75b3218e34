"""Use my chats on another device, as people do it: make a link, open it elsewhere, confirm."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE
from tests.e2e.helpers import finished_reply, menu_item, screenshot, send

WIDE = {"width": 1366, "height": 900}


def test_a_second_browser_takes_the_chats_and_keeps_its_own(new_context):
    phone = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    phone.goto("/")
    send(phone, "Written on the phone")
    finished_reply(phone)
    phone.get_by_role("checkbox", name="Sidebar").tap()  # the drawer, on a phone
    phone.get_by_role("link", name="Use my chats on another device").click()
    phone.get_by_role("button", name="Make a link").click()
    box = phone.get_by_role("textbox", name=re.compile("Open this link on your other device"))
    expect(box).to_have_value(re.compile(r"/d/[\w-]+$"))
    link = box.input_value()

    laptop = new_context().new_page()
    laptop.goto("/")
    send(laptop, "Written on the laptop")
    finished_reply(laptop)
    laptop.goto(link)
    expect(laptop.get_by_text("The 1 conversation already in this browser will move over"))\
        .to_be_visible()
    laptop.get_by_role("button", name="Use these chats here").click()
    chats = laptop.get_by_role("navigation", name="Conversations")
    expect(chats.get_by_role("link", name="Written on the phone")).to_be_visible()
    expect(chats.get_by_role("link", name="Written on the laptop")).to_be_visible()

    phone.reload()
    phone.get_by_role("checkbox", name="Sidebar").tap()
    expect(phone.get_by_role("link", name="Written on the laptop")).to_be_visible()
    again = new_context(expected_console_errors=("status of 410",)).new_page()
    assert again.goto(link).status == 410
    expect(again.get_by_text("This device link was already used.")).to_be_visible()


@pytest.mark.parametrize("size", [PHONE, WIDE], ids=["phone", "wide"])
def test_screens_of_the_new_pages(new_context, size):
    page = new_context(viewport=size).new_page()
    page.goto("/")
    send(page, "A conversation to share")
    finished_reply(page)
    conversation = page.url
    page.goto("/devices")
    page.get_by_role("button", name="Make a link").click()
    link = page.get_by_role("textbox", name=re.compile("Open this link")).input_value()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= size["width"], "the page scrolls sideways"
    name = "phone" if size is PHONE else "wide"
    screenshot(page, f"{name}-devices-link-made")

    other = new_context(viewport=size).new_page()
    other.goto(link)
    assert other.evaluate("document.documentElement.scrollWidth") <= size["width"]
    screenshot(other, f"{name}-devices-use-link")

    page.goto(conversation)
    menu_item(page, "Share").click()
    page.get_by_role("button", name="Create link").click()
    shared = page.get_by_role("textbox", name="Anyone with this link can read the conversation")
    expect(shared).to_have_value(re.compile(r"/s/[\w-]+$"))
    other.goto(shared.input_value() + "/continue")
    assert other.evaluate("document.documentElement.scrollWidth") <= size["width"]
    screenshot(other, f"{name}-share-continue-question")
