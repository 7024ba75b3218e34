"""Retry-After from the upstream: seconds or an HTTP date; nonsense falls back to backoff,
and a wait longer than the retry budget fails at once, saying when to try again."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from harness.fake_upstream import Reply
from tests.conftest import messages_of, start_chat, text_of
from webapp.upstream.llm import duration_text, retry_after_seconds

NOW = 1_700_000_000.0


@pytest.mark.parametrize("value, seconds", [
    ("5", 5.0), (" 2.5 ", 2.5), ("0", 0.0),
    (formatdate(NOW + 120, usegmt=True), 120.0),
    ("-5", None), ("nan", None), ("inf", None), ("-inf", None), ("soon", None),
    ("", None), (None, None),
    (formatdate(NOW - 60, usegmt=True), None),       # a date in the past
    ("Sun Nov  6 08:49:37 1994", None),               # no time zone: not an HTTP date
    ("Mon, 99 Foo 2024 99:99:99 GMT", None),
])
def test_retry_after_is_read_as_seconds_or_an_http_date(value, seconds):
    assert retry_after_seconds(value, now=NOW) == seconds


@pytest.mark.parametrize("seconds, text", [
    (0.2, "1 s"), (40, "40 s"), (89, "89 s"), (120, "2 minutes"), (599.4, "10 minutes"),
    (7200, "2 hours"),
])
def test_waits_are_said_in_seconds_minutes_or_hours(seconds, text):
    assert duration_text(seconds) == text


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "soon"])
def test_an_unusable_retry_after_falls_back_to_the_backoff(make_app, upstream, value):
    """Backoff waits 1 s, then 2 s: with a budget of 1.5 s there is one retry, not two
    immediate ones."""
    app = make_app(REGOLO_RETRY_BUDGET=1.5)
    upstream.enqueue(*[Reply(status=429, retry_after=value) for _ in range(3)])
    client = app.test_client()
    url = start_chat(client, "Hi")
    assert len(upstream.chat_requests) == 2
    reply = messages_of(app)[-1]
    assert (reply.status, reply.error) == ("error", "The API is rate limiting requests (429).")
    assert "rate limiting" in text_of(client.get(url).get_data(as_text=True))


@pytest.mark.parametrize("value, when", [
    (lambda: "40", "40 s"),
    # An HTTP date made when the test runs, not when it is collected.
    (lambda: formatdate(time.time() + 600, usegmt=True), "10 minutes"),
], ids=["seconds", "http-date"])
def test_a_wait_past_the_budget_fails_at_once_saying_when_to_try_again(client, app, upstream,
                                                                        value, when):
    upstream.enqueue(Reply(status=429, retry_after=value()))
    url = start_chat(client, "Hi")
    assert len(upstream.chat_requests) == 1
    sentence = f"The API is rate limiting requests (429); try again in about {when}."
    assert messages_of(app)[-1].error == sentence
    assert sentence in text_of(client.get(url).get_data(as_text=True))


def test_a_retry_after_within_the_budget_is_waited_for(make_app, upstream):
    app = make_app(REGOLO_RETRY_BUDGET=5)
    upstream.enqueue(Reply(status=429, retry_after=formatdate(time.time() + 2, usegmt=True)))
    client = app.test_client()
    url = start_chat(client, "Hi")
    assert len(upstream.chat_requests) == 2
    assert "You said: Hi" in text_of(client.get(url).get_data(as_text=True))
