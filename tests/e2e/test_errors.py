"""Upstream trouble shows a plain sentence in the page and keeps what the person wrote."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from harness.fake_upstream import Reply
from tests.e2e.helpers import finished_reply, replies, send, user_messages


def assert_failed_with(page, sentence: str, typed: str, status: str = "error") -> None:
    reply = finished_reply(page, status)
    expect(reply.get_by_role("alert")).to_contain_text(sentence)
    expect(reply.get_by_role("button", name="Retry")).to_be_visible()
    expect(user_messages(page).last).to_contain_text(typed)


@pytest.mark.parametrize("replies_, sentence", [
    ([Reply(status=401)], "The API key was rejected (401)"),
    ([Reply(status=429, retry_after="0")] * 3, "The API is rate limiting requests (429)"),
], ids=["401", "429"])
def test_an_upstream_error_is_shown_and_the_text_kept(page, upstream, replies_, sentence):
    upstream.enqueue(*replies_)
    page.goto("/")
    send(page, "Please answer this")
    assert_failed_with(page, sentence, "Please answer this")
    page.reload()  # the same after a reload: it is stored, not only shown
    assert_failed_with(page, sentence, "Please answer this")


def test_a_dropped_stream_keeps_the_partial_reply_and_retry_works(page, upstream):
    upstream.enqueue(Reply(tokens=[f"part{i} " for i in range(10)], token_delay=0.03,
                           drop_after=4))
    page.goto("/")
    send(page, "Go on")
    assert_failed_with(page, "The connection to the API dropped in the middle of the reply",
                       "Go on", status="interrupted")
    expect(replies(page).last).to_contain_text("part3")

    replies(page).last.get_by_role("button", name="Retry").click()
    expect(finished_reply(page)).to_contain_text("You said: Go on")


def test_without_an_api_key_sending_says_so(new_context, start_server, upstream):
    keyless = start_server("no-key", REGOLO_API_KEY="")
    page = new_context(base_url=keyless.url).new_page()
    page.goto("/")
    send(page, "Is anyone there?")
    assert_failed_with(page, "No API key is configured: set REGOLO_API_KEY", "Is anyone there?")
    assert not upstream.chat_requests
