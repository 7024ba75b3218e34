"""The model-written title reaches the tab and the rename field without a reload; a long
conversation loads its earlier messages when scrolled up, or through a link without
JavaScript."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from harness.fake_upstream import Reply
from tests.e2e.helpers import finished_reply, replies, screenshot, send, user_messages


@pytest.fixture(scope="module")
def titled_server(start_server):
    """A server that asks the model for a title after the first reply."""
    return start_server("titles", TITLE_GENERATION="1")


@pytest.fixture(scope="module")
def small_pages_server(start_server):
    """A server whose conversations open at their latest 4 messages."""
    return start_server("pages", MESSAGES_PER_PAGE="4")


def test_the_written_title_reaches_the_tab_and_the_rename_field(new_context, titled_server,
                                                                 upstream):
    upstream.enqueue(Reply("Sure, here is a plan.", delay=1.0),
                     Reply("Rome Trip Planning", delay=0.3))
    page = new_context(base_url=titled_server.url).new_page()
    page.goto("/")
    send(page, "Can you help me plan a three day trip to Rome in spring please")
    finished_reply(page)
    expect(page).to_have_title("Rome Trip Planning · Regolo Chat")
    expect(page.locator("#conv-title")).to_have_text("Rome Trip Planning")
    expect(page.locator("#title-input")).to_have_value("Rome Trip Planning")


def test_scrolling_up_loads_the_earlier_messages(new_context, small_pages_server, upstream):
    # A screen short enough that the latest 4 messages push the link out of view.
    page = new_context(base_url=small_pages_server.url,
                       viewport={"width": 1280, "height": 480}).new_page()
    page.goto("/")
    for n in range(1, 5):
        send(page, f"Question {n}")
        expect(replies(page)).to_have_count(n)  # on the new-chat page, after a redirect
        finished_reply(page)
    page.reload()
    expect(user_messages(page).last).to_contain_text("Question 4")
    expect(page.get_by_role("article")).to_have_count(4)
    expect(page.get_by_role("link", name="Show earlier messages")).not_to_be_in_viewport()
    page.mouse.wheel(0, -100_000)
    expect(page.get_by_role("article")).to_have_count(8)
    expect(user_messages(page).first).to_contain_text("Question 1")
    expect(page.get_by_role("link", name="Show earlier messages")).to_have_count(0)
    screenshot(page, "desktop-earlier-messages-loaded")


def test_without_javascript_a_link_opens_the_earlier_messages(new_context,
                                                               small_pages_server, upstream):
    page = new_context(base_url=small_pages_server.url, java_script_enabled=False).new_page()
    page.goto("/")
    for n in range(1, 4):
        page.get_by_role("textbox", name="Message").fill(f"Question {n}")
        page.get_by_role("button", name="Send").click()
        expect(user_messages(page).last).to_contain_text(f"Question {n}")
    expect(page.get_by_role("article")).to_have_count(4)
    page.get_by_role("link", name="Show earlier messages").click()
    expect(page).to_have_url(re.compile(r"\?before=\d+"))
    expect(user_messages(page).first).to_contain_text("Question 1")
    page.get_by_role("link", name="Show the latest messages").click()
    expect(user_messages(page).last).to_contain_text("Question 3")
