"""The interface on a phone (390×844, touch) and a desktop (1366×900): menus and panels,
the sidebar, the composer's Enter and Stop, copy buttons, editing, and the same without
JavaScript."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from harness.fake_upstream import Reply
from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.helpers import (finished_reply, menu_item, message_box, open_menu, replies,
                               screenshot, send, user_messages)
from tests.e2e.test_chat import words

NARROWEST = {"width": 320, "height": 640}
TOUCH = {"is_mobile": True, "has_touch": True}


def phone(new_context, **options) -> Page:
    return new_context(viewport=PHONE, **TOUCH, **options).new_page()


def start_conversation(page: Page) -> None:
    page.goto("/")
    send(page, "Hello")
    finished_reply(page)


def inside_viewport(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    width = page.viewport_size["width"]
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)


@pytest.mark.parametrize("viewport", [NARROWEST, DESKTOP], ids=["320px", "desktop"])
def test_the_menu_and_settings_fit_the_screen_and_close_on_escape_or_outside(
        new_context, upstream, viewport):
    page = new_context(viewport=viewport).new_page()
    start_conversation(page)
    more = page.get_by_role("button", name="More actions")

    menu = open_menu(page)
    inside_viewport(page, "#conv-menu")
    screenshot(page, f"{viewport['width']}px-menu-open")
    expect(menu.get_by_role("button", name="Rename")).to_be_focused()  # focus moves in
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(more).to_be_focused()  # and back

    open_menu(page)
    page.mouse.click(5, viewport["height"] - 200)  # outside
    expect(menu).to_be_hidden()

    page.get_by_role("button", name="Settings").click()
    settings = page.locator("#settings-panel")
    expect(settings.get_by_label("Temperature")).to_be_visible()
    inside_viewport(page, "#settings-panel")
    screenshot(page, f"{viewport['width']}px-settings-open")
    page.keyboard.press("Escape")
    expect(settings).to_be_hidden()

    menu_item(page, "Rename").click()
    inside_viewport(page, "#rename-panel")
    screenshot(page, f"{viewport['width']}px-rename-open")
    title = page.get_by_role("textbox", name="Title")
    expect(title).to_be_focused()
    title.fill("Renamed here")
    title.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Renamed here")
    expect(page).to_have_title(re.compile("^Renamed here"))


def test_delete_asks_on_its_own_page_not_with_a_dialog(page, upstream):
    start_conversation(page)
    menu_item(page, "Delete").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Delete")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="New chat")).to_be_visible()
    expect(page.get_by_text("No conversations yet.")).to_be_visible()


def test_the_sidebar_is_a_drawer_on_a_phone(new_context, upstream):
    page = phone(new_context)
    start_conversation(page)
    new_chat = page.get_by_role("link", name="New chat")
    toggle = page.get_by_role("checkbox", name="Sidebar")
    expect(new_chat).not_to_be_in_viewport()
    toggle.tap()
    expect(new_chat).to_be_in_viewport()
    expect(page.get_by_text("Today")).to_be_visible()  # grouped by day
    page.keyboard.press("Escape")
    expect(new_chat).not_to_be_in_viewport()
    toggle.tap()
    page.mouse.click(PHONE["width"] - 10, PHONE["height"] // 2)  # on the dimmed page
    expect(new_chat).not_to_be_in_viewport()


def test_the_sidebar_collapses_on_a_desktop_and_the_chat_takes_the_width(page, upstream):
    start_conversation(page)
    sidebar = page.get_by_role("navigation", name="Conversations")
    main = page.get_by_role("main")
    expect(sidebar).to_be_visible()
    left = main.bounding_box()["x"]
    page.get_by_role("checkbox", name="Sidebar").click()
    expect(sidebar).to_be_hidden()
    assert main.bounding_box()["x"] < left
    page.reload()  # it stays collapsed on the next page
    expect(sidebar).to_be_hidden()
    screenshot(page, "desktop-light-sidebar-collapsed")
    expect(page.get_by_role("link", name="New chat")).to_be_visible()  # still at hand
    page.get_by_role("checkbox", name="Sidebar").click()
    expect(sidebar).to_be_visible()


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_the_message_box_grows_with_its_text_to_about_eight_lines(new_context, device):
    page = phone(new_context) if device == "phone" else new_context().new_page()
    page.goto("/")
    box = message_box(page)
    one_line = box.bounding_box()["height"]
    box.fill("\n".join(["line"] * 4))
    four_lines = box.bounding_box()["height"]
    box.fill("\n".join(["line"] * 30))
    tallest = box.bounding_box()["height"]
    line = box.evaluate("b => parseFloat(getComputedStyle(b).lineHeight)")
    assert one_line < 2.5 * line and four_lines >= 4 * line
    assert 7 * line <= tallest <= 9 * line + 20  # then it scrolls
    expect(page.get_by_role("button", name="Send")).to_be_in_viewport()


def test_on_a_touch_screen_enter_makes_a_new_line_and_the_button_sends(new_context, upstream):
    page = phone(new_context)
    page.goto("/")
    box = message_box(page)
    box.fill("first line")
    box.press("Enter")
    box.press_sequentially("second line")
    expect(box).to_have_value("first line\nsecond line")
    assert upstream.chat_requests == []
    page.get_by_role("button", name="Send").tap()
    expect(finished_reply(page)).to_contain_text("first line")
    assert upstream.sent_messages()[-1]["content"] == "first line\nsecond line"


def test_on_a_desktop_enter_sends_and_a_blank_box_sends_nothing(page, upstream):
    page.goto("/")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    box = message_box(page)
    box.fill("   ")
    box.press("Enter")
    page.get_by_role("button", name="Send").click()  # the browser asks to fill it in
    page.wait_for_timeout(300)
    assert posts == []
    box.fill("Sent with Enter")
    box.press("Enter")
    expect(finished_reply(page)).to_contain_text("You said: Sent with Enter")


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_send_becomes_stop_in_the_same_place(new_context, upstream, device):
    page = phone(new_context) if device == "phone" else new_context().new_page()
    upstream.enqueue(Reply(tokens=words(300), token_delay=0.04))
    page.goto("/")
    send_button = page.get_by_role("button", name="Send")
    where = send_button.bounding_box()
    send(page, "Tell me a long story")
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    expect(send_button).to_be_hidden()
    expect(replies(page).last).to_contain_text("w3")
    here = stop.bounding_box()
    assert (round(here["x"]), round(here["y"])) == (round(where["x"]), round(where["y"]))
    expect(replies(page).last).to_contain_text("w60")  # the reply grew; Stop stayed
    assert stop.bounding_box()["y"] == here["y"]
    stop.click()
    finished_reply(page, "stopped")
    expect(send_button).to_be_visible()
    expect(stop).to_be_hidden()


REPLY = "## A heading\n\nSome **bold** text.\n\n```python\nprint('ciao')\n```\n"


def test_copy_copies_the_markdown_and_code_copy_the_code(new_context, upstream):
    page = new_context(permissions=["clipboard-read", "clipboard-write"]).new_page()
    upstream.enqueue(Reply(REPLY))
    page.goto("/")
    send(page, "Format something")
    reply = finished_reply(page)
    reply.get_by_role("button", name="Copy message").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == REPLY

    code_head = reply.locator(".code-head")
    expect(code_head).to_contain_text("python")
    copy_code = code_head.get_by_role("button", name="Copy code")
    code_box, button_box = reply.locator("pre").bounding_box(), copy_code.bounding_box()
    assert button_box["y"] + button_box["height"] <= code_box["y"]  # above the code, not on it
    copy_code.click()
    page.wait_for_function("navigator.clipboard.readText().then(t => t.includes('print'))")
    assert page.evaluate("navigator.clipboard.readText()").strip() == "print('ciao')"

    heading = reply.get_by_role("heading", name="A heading")
    size = heading.evaluate("h => parseFloat(getComputedStyle(h).fontSize)")
    title = page.get_by_role("heading", level=1).evaluate(
        "h => parseFloat(getComputedStyle(h).fontSize)")
    assert size < title


def test_a_wide_table_scrolls_instead_of_breaking_words(new_context, upstream):
    page = phone(new_context)
    row = "| " + " | ".join(f"sorted(xs{i})" for i in range(8)) + " |"
    upstream.enqueue(Reply("| " + " | ".join(f"col{i}" for i in range(8)) + " |\n|"
                           + "---|" * 8 + "\n" + row + "\n"))
    page.goto("/")
    send(page, "A wide table")
    table = finished_reply(page).get_by_role("table")
    assert table.evaluate("t => t.scrollWidth > t.clientWidth")  # it scrolls
    cell = table.get_by_role("cell").first
    assert cell.evaluate("c => c.getClientRects().length === 1 && c.offsetHeight < 40")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_editing_opens_in_place_of_the_message_with_cancel_and_send(page, upstream):
    start_conversation(page)
    message = user_messages(page).last
    message.get_by_label("Edit", exact=True).click()
    editor = page.get_by_role("textbox", name="Edited message")
    expect(editor).to_be_focused()
    expect(message.locator(".msg-body")).to_be_hidden()
    assert editor.bounding_box()["width"] > 600  # the column's width, not the bubble's
    editor.fill("Changed my mind")
    message.get_by_role("button", name="Cancel").click()
    expect(editor).to_be_hidden()
    expect(message).to_contain_text("Hello")
    expect(message.get_by_label("Edit", exact=True)).to_be_focused()

    message.get_by_label("Edit", exact=True).click()
    editor.fill("Hello again")
    editor.press("Enter")  # sends, as in the message box
    expect(user_messages(page).last).to_contain_text("Hello again")
    expect(page.get_by_role("group", name="Versions of this message").first).to_contain_text("2 / 2")


def test_menus_and_panels_work_without_javascript(new_context, upstream):
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/")
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("System prompt").fill("Answer briefly.")
    page.get_by_role("button", name="Done").click()
    message_box(page).fill("Hello without scripts")
    page.get_by_role("button", name="Send").click()
    expect(replies(page).last).to_have_attribute("data-status", "complete")
    assert upstream.sent_messages()[0] == {"role": "system", "content": "Answer briefly."}

    menu = open_menu(page)
    menu.get_by_role("button", name="Rename").click()
    page.get_by_role("textbox", name="Title").fill("Named without scripts")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Named without scripts")

    page.get_by_role("button", name="Settings").click()
    page.get_by_label("Temperature").fill("0.5")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_role("button", name="Settings").click()
    expect(page.get_by_label("Temperature")).to_have_value("0.5")

    message = user_messages(page).last
    message.get_by_label("Edit", exact=True).click()
    page.get_by_role("textbox", name="Edited message").fill("Not sent")
    message.get_by_role("button", name="Cancel").click()  # back to the page, editor closed
    expect(page.get_by_role("textbox", name="Edited message")).to_be_hidden()
    expect(message).to_contain_text("Hello without scripts")

    menu_item(page, "Delete").click()
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="New chat")).to_be_visible()


def test_attached_images_show_as_thumbnails_that_can_be_taken_out(new_context, upstream, tmp_path):
    page = phone(new_context)
    paths = []
    for colour in ("red", "blue"):
        paths.append(tmp_path / f"{colour}.png")
        Image.new("RGB", (20, 20), colour).save(paths[-1])
    page.goto("/")
    page.get_by_label("Attach images").set_input_files([str(path) for path in paths])
    chosen = page.get_by_role("list", name="Chosen images")
    expect(chosen.get_by_role("img")).to_have_count(2)
    chosen.get_by_role("button", name="Remove red.png").tap()
    expect(chosen.get_by_role("img")).to_have_count(1)
    expect(chosen.get_by_role("img", name="blue.png")).to_be_visible()
    send(page, "Which colour?")
    finished_reply(page)
    expect(chosen).to_be_hidden()  # emptied once sent
    parts = upstream.sent_messages()[-1]["content"]
    assert [part["type"] for part in parts] == ["text", "image_url"]
