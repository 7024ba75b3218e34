"""Accessibility: axe-core finds nothing serious, replies are announced once, keyboard alone works."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from harness.fake_upstream import Reply
from tests.e2e.conftest import PHONE
from tests.e2e.helpers import (axe_violations, finished_reply, menu_item, message_box, open_menu,
                               replies, send)
from tests.e2e.test_chat import TABLE_AND_CODE


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violations(new_context, upstream, scheme):
    # bypass_csp: the page's Content-Security-Policy would refuse the injected axe script.
    page = new_context(color_scheme=scheme, bypass_csp=True).new_page()
    page.goto("/")
    assert axe_violations(page) == [], "new chat page"

    upstream.enqueue(Reply(TABLE_AND_CODE + "\nSee [the docs](https://example.org)."),
                     Reply(status=401))
    send(page, "Show me a table")
    finished_reply(page)
    send(page, "And now fail")
    finished_reply(page, "error")
    assert axe_violations(page) == [], "conversation page"
    open_menu(page)
    assert axe_violations(page) == [], "the ⋯ menu open"
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Settings").click()
    assert axe_violations(page) == [], "settings open"
    page.keyboard.press("Escape")

    menu_item(page, "Share").click()
    page.get_by_role("button", name="Create link").click()
    link = page.get_by_role("textbox", name="Anyone with this link can read the conversation")
    assert axe_violations(page) == [], "share controls"
    shared = link.input_value()
    page.goto(shared)
    assert axe_violations(page) == [], "shared page"
    page.goto(shared + "/continue")
    assert axe_violations(page) == [], "continue's question"

    page.goto("/devices")
    page.get_by_role("button", name="Make a link").click()
    device_link = page.get_by_role("textbox", name=re.compile("Open this link"))
    assert axe_violations(page) == [], "device link made"
    other = new_context(color_scheme=scheme, bypass_csp=True).new_page()
    other.goto(device_link.input_value())
    assert axe_violations(other) == [], "device link question"


def test_the_reply_is_announced_once_not_on_every_chunk(page, upstream):
    upstream.enqueue(Reply(tokens=[f"w{i} " for i in range(40)], token_delay=0.08))
    page.goto("/")
    send(page, "Say something")
    status = page.get_by_role("status")
    expect(status).to_have_text("Assistant is writing…")
    expect(replies(page).last).to_contain_text("w2")
    live = page.locator("[aria-live], [role=status], [role=log], [role=alert]")
    assert live.count() == 1, "only the one status region is live while streaming"
    expect(replies(page).last).to_have_attribute("aria-busy", "true")

    finished_reply(page)
    expect(status).to_have_text("Assistant replied: " + " ".join(f"w{i}" for i in range(40)))
    expect(replies(page).last).not_to_have_attribute("aria-busy", "true")


def test_every_control_has_an_accessible_name(page, upstream):
    page.goto("/")
    send(page, "Hello")
    finished_reply(page)
    unnamed = page.evaluate("""() => [...document.querySelectorAll(
        'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]')]
        .filter(el => !el.closest('[hidden]'))
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                      && !el.textContent.trim())
        .map(el => el.outerHTML.slice(0, 80))""")
    assert unnamed == []


FOCUSED = """() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    const name = el.getAttribute("aria-label")
        || (el.labels && el.labels.length ? el.labels[0].textContent : el.textContent);
    return {name: name.trim(),
            visible: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2};
}"""


def test_keyboard_alone_starts_a_chat_with_visible_focus(page, upstream):
    page.goto("/")
    expect(message_box(page)).to_be_focused()  # typing can start at once
    order = []
    for _ in range(25):  # walk back to the top: every stop has a name and a visible focus
        page.keyboard.press("Shift+Tab")
        focused = page.evaluate(FOCUSED)
        assert focused["visible"], f"no visible focus on {focused['name']!r}"
        order.append(focused["name"])
        if focused["name"] == "Skip to content":
            break
    order.reverse()
    assert order[:3] == ["Skip to content", "Sidebar", "New chat"], order  # then the page
    assert order.index("Model") < order.index("Settings"), order

    for _ in order:
        page.keyboard.press("Tab")
    expect(message_box(page)).to_be_focused()
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Enter")
    expect(finished_reply(page)).to_contain_text("You said: Typed without a mouse")
    expect(message_box(page)).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Attach images")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Attach documents")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send")).to_be_focused()


def test_axe_finds_no_serious_violations_on_a_phone_with_the_drawer_open(new_context, upstream):
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True, bypass_csp=True).new_page()
    page.goto("/")
    send(page, "Hello")
    finished_reply(page)
    assert axe_violations(page) == [], "conversation page on a phone"
    page.get_by_role("checkbox", name="Sidebar").tap()
    expect(page.get_by_role("link", name="New chat")).to_be_in_viewport(ratio=1)
    assert axe_violations(page) == [], "drawer open"
