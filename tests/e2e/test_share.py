"""Sharing as people do it: the owner shares, a stranger reads the snapshot, continues, is revoked."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.helpers import finished_reply, menu_item, screenshot, send, user_messages

GONE = "status of 410"  # the browser logs the removed link's 410 as a console error


def share_link(owner: Page, create: str = "Create link") -> str:
    """Open the conversation's share page, press Create (or Update), return the link."""
    menu_item(owner, "Share").click()
    owner.get_by_role("button", name=create).click()
    link = owner.get_by_role("textbox", name="Anyone with this link can read the conversation")
    expect(link).to_have_value(re.compile(r"/s/[\w-]+$"))
    return link.input_value()


def test_share_view_update_continue_and_revoke(new_context, upstream):
    owner_context = new_context()
    owner_context.grant_permissions(["clipboard-read", "clipboard-write"])
    owner = owner_context.new_page()
    owner.goto("/")
    send(owner, "Hello share")
    expect(finished_reply(owner)).to_contain_text("You said: Hello share")
    conversation_url = owner.url
    link = share_link(owner)
    owner.get_by_role("button", name="Copy link").click()
    expect(owner.get_by_text("Link copied.")).to_be_visible()
    assert owner.evaluate("navigator.clipboard.readText()") == link

    viewer_context = new_context(expected_console_errors=(GONE,))
    viewer = viewer_context.new_page()
    viewer.goto(link)
    expect(viewer.get_by_role("heading", level=1)).to_have_text("Hello share")
    expect(viewer.get_by_text("You said: Hello share")).to_be_visible()
    expect(viewer.get_by_text("read-only snapshot")).to_be_visible()
    assert viewer_context.cookies() == [], "reading a shared page sets no cookie"
    screenshot(viewer, "desktop-shared-page")

    owner.goto(conversation_url)
    send(owner, "A private follow-up")
    expect(finished_reply(owner)).to_contain_text("You said: A private follow-up")
    viewer.reload()
    expect(viewer.get_by_text("You said: Hello share")).to_be_visible()
    expect(viewer.get_by_text("A private follow-up")).to_have_count(0)

    assert share_link(owner, create="Update link") == link, "updating keeps the same link"
    viewer.reload()
    expect(viewer.get_by_text("You said: A private follow-up")).to_be_visible()

    stranger = new_context().new_page()
    stranger.goto(link)
    stranger.get_by_role("link", name="Continue this conversation").click()
    expect(stranger.get_by_role("heading", level=1)).to_have_text("Continue “Hello share”?")
    stranger.get_by_role("button", name="Copy into my chats").click()
    expect(stranger).to_have_url(re.compile(r"/c/[\w-]+$"))
    assert stranger.url != conversation_url
    expect(user_messages(stranger)).to_have_count(2)
    send(stranger, "Carrying on")
    expect(finished_reply(stranger)).to_contain_text("You said: Carrying on")
    assert [m["content"] for m in upstream.sent_messages()] == [
        "Hello share", "You said: Hello share", "A private follow-up",
        "You said: A private follow-up", "Carrying on"]
    owner.goto(conversation_url)
    expect(owner.get_by_text("Carrying on")).to_have_count(0)

    owner.goto("/shares")
    expect(owner.get_by_role("link", name="Open the link to “Hello share”")).to_have_attribute(
        "href", re.compile(re.escape(link.split("/s/")[1]) + "$"))
    owner.get_by_role("button", name="Revoke the link to “Hello share”").click()
    expect(owner.get_by_text("You have not shared any conversation")).to_be_visible()
    viewer.reload()
    expect(viewer.get_by_role("heading", name="Link removed")).to_be_visible()
    expect(viewer.get_by_text("You said: Hello share")).to_have_count(0)


def test_revoke_from_the_share_page(new_context, upstream):
    owner = new_context().new_page()
    owner.goto("/")
    send(owner, "Short lived")
    finished_reply(owner)
    link = share_link(owner)
    owner.get_by_role("button", name="Revoke link").click()
    expect(owner.get_by_role("button", name="Create link")).to_be_visible()

    viewer = new_context(expected_console_errors=(GONE,)).new_page()
    response = viewer.goto(link)
    assert response.status == 410
    expect(viewer.get_by_text("removed by its owner")).to_be_visible()
