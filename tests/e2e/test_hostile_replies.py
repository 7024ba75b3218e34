"""Model output and user text are untrusted: a hostile reply never runs script in the page.

The new_context fixture fails the test on any dialog, uncaught error or console error.
"""

from __future__ import annotations

from playwright.sync_api import expect

from harness.fake_upstream import Reply, split_tokens
from tests.e2e.helpers import finished_reply, replies, send, user_messages

# What a reply must not contain; the app's own icons (svg.icon, from its sprite) aside.
FORBIDDEN = "img, script, svg:not(.icon), iframe"
HOSTILE = ('<img src=x onerror=alert(1)> <script>alert(2)</script> '
           '[click me](javascript:alert(3)) <a href="javascript:alert(4)">raw link</a> '
           '<svg onload=alert(5)></svg> ![pic](javascript:alert(6))')


def test_a_hostile_reply_is_shown_as_text_and_runs_nothing(page, upstream):
    upstream.enqueue(Reply(tokens=split_tokens(HOSTILE), token_delay=0.02))
    page.goto("/")
    send(page, "<script>alert('user')</script> <img src=x onerror=alert(7)>")

    reply = finished_reply(page)
    expect(reply).to_contain_text("<img src=x onerror=alert(1)>")
    expect(reply).to_contain_text("<script>alert(2)</script>")
    expect(reply.locator(FORBIDDEN)).to_have_count(0)
    link = reply.get_by_text("click me")
    expect(link).to_be_visible()
    assert not (link.get_attribute("href") or "").startswith("javascript:")
    link.click()
    reply.get_by_text("pic").click()
    expect(user_messages(page).last).to_contain_text("<script>alert('user')</script>")
    for message in (reply, user_messages(page).last):
        hrefs = message.locator("a").evaluate_all("links => links.map(a => a.href)")
        assert not [href for href in hrefs if href.lower().startswith("javascript:")]

    page.reload()  # the stored reply, rendered by the page instead of the stream
    expect(replies(page).last.locator(FORBIDDEN)).to_have_count(0)
    expect(replies(page).last).to_contain_text("<script>alert(2)</script>")
