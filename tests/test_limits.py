"""Rate limits on sending: per owner and per IP address, with a clear wait, drafts kept."""

from __future__ import annotations

import io
import re

import pytest

from harness.fake_upstream import Reply
from tests.conftest import start_chat, wait_for_generations


@pytest.fixture
def limited(make_app):
    """An app whose owners may send two messages a minute."""
    return make_app(RATELIMIT_ENABLED=True, MESSAGES_PER_MINUTE_PER_OWNER=2,
                    MESSAGES_PER_MINUTE_PER_IP=100)


def wait_in(html: str) -> int:
    match = re.search(r"Slow down: too many messages in a minute\. Try again in (\d+) s\.", html)
    assert match, html[:2000]
    return int(match.group(1))


def test_an_owner_sending_too_fast_is_told_how_long_to_wait(limited, upstream):
    client = limited.test_client()
    url = start_chat(client)
    assert client.post(f"{url}/messages", data={"content": "Two"}).status_code == 303
    response = client.post(f"{url}/messages", data={"content": "Three, kept"})
    html = response.get_data(as_text=True)
    assert response.status_code == 429
    assert 1 <= wait_in(html) <= 60
    assert ">Three, kept</textarea>" in html
    assert len(upstream.chat_requests) == 2


def test_with_htmx_the_wait_is_shown_next_to_the_message_box(limited):
    client = limited.test_client()
    url = start_chat(client)
    client.post(f"{url}/messages", data={"content": "Two"})
    response = client.post(f"{url}/messages", data={"content": "Three"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 429
    assert response.headers["HX-Retarget"] == "#form-error"
    wait_in(response.get_data(as_text=True))


def test_a_new_chat_over_the_limit_keeps_its_draft_and_prompt(limited):
    client = limited.test_client()
    start_chat(client)
    start_chat(client)
    response = client.post("/c", data={"content": "Third", "system_prompt": "Be brief"})
    html = response.get_data(as_text=True)
    assert response.status_code == 429 and ">Third</textarea>" in html and "Be brief" in html


def test_refused_attempts_count_like_accepted_ones(limited, upstream):
    client = limited.test_client()
    for _ in range(2):  # refused for their input: they use up the budget all the same
        assert client.post("/c", data={"content": " "}).status_code == 422
    response = client.post("/c", data={"content": "A fine message"})
    assert response.status_code == 429
    assert ">A fine message</textarea>" in response.get_data(as_text=True)
    assert upstream.chat_requests == []


def test_a_busy_refusal_counts_too(limited, upstream):
    client = limited.test_client()
    upstream.enqueue(Reply(tokens=["slow "] * 20, token_delay=0.1))
    htmx = {"HX-Request": "true"}
    url = client.post("/c", data={"content": "Hi"}, headers=htmx).headers["HX-Redirect"]
    for status in (409, 429):
        response = client.post(f"{url}/messages", data={"content": "Again"}, headers=htmx)
        assert response.status_code == status
    wait_for_generations(limited)


def test_the_limit_is_checked_before_the_form_is(limited, upstream):
    """Over the limit, a body that would be refused for its content gets the limit's answer:
    its text, images and settings were never looked at."""
    client = limited.test_client()
    url = start_chat(client)
    start_chat(client)
    not_an_image = (io.BytesIO(b"plain text, not a picture"), "photo.png")
    too_long = "x" * (limited.config["MAX_MESSAGE_CHARS"] + 1)
    for path, form in ((f"{url}/messages", {"content": too_long, "images": not_an_image}),
                       ("/c", {"content": "Hi", "temperature": "hot"})):
        response = client.post(path, data=form, content_type="multipart/form-data")
        assert response.status_code == 429, path
        wait_in(response.get_data(as_text=True))
    assert len(upstream.chat_requests) == 2


def test_one_address_is_limited_across_browsers(make_app):
    app = make_app(RATELIMIT_ENABLED=True, MESSAGES_PER_MINUTE_PER_OWNER=100,
                   MESSAGES_PER_MINUTE_PER_IP=2, TRUST_PROXY=1)
    first, second, elsewhere = (app.test_client() for _ in range(3))
    office = {"X-Forwarded-For": "198.51.100.7"}
    for client in (first, second):
        assert client.post("/c", data={"content": "Hi"}, headers=office).status_code == 303
    assert second.post("/c", data={"content": "Hi"}, headers=office).status_code == 429
    home = {"X-Forwarded-For": "203.0.113.4"}
    assert elsewhere.post("/c", data={"content": "Hi"}, headers=home).status_code == 303


def test_counters_are_kept_in_memory_unless_configured(app):
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"


def test_a_redis_outage_lets_messages_through(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
                   MESSAGES_PER_MINUTE_PER_OWNER=1)
    client = app.test_client()
    for _ in range(2):  # over the limit, but the counters can't be reached: fail open
        assert client.post("/c", data={"content": "Hi"}).status_code == 303


def test_every_view_that_asks_the_model_counts_against_the_limits(app):
    limited = {endpoint for endpoint, view in app.view_functions.items()
               if "flask_limiter" in view.__code__.co_filename}  # a Flask-Limiter wrapper
    starts_a_reply = {"chat.create", "chat.send", "chat.retry", "chat.edit",
                      "chat.continue_reply"}
    assert starts_a_reply <= limited


def test_a_compared_send_counts_once_per_model(make_app, upstream):
    """Comparing asks the upstream for a reply per model, so it uses that many of the
    budget: with 5 a minute, a 3-model comparison and one follow-up (3 + 3) is too many,
    where a plain chat sends five."""
    app = make_app(RATELIMIT_ENABLED=True, MESSAGES_PER_MINUTE_PER_OWNER=5,
                   MESSAGES_PER_MINUTE_PER_IP=100)
    client = app.test_client()
    response = client.post("/c", data={"content": "Hi", "models": ["m-a", "m-b", "m-c"]})
    assert response.status_code == 303
    url = response.headers["Location"].split("#")[0]
    assert client.post(f"{url}/compare/messages", data={"content": "Again"}).status_code == 429
    plain = app.test_client()
    url = start_chat(plain)
    for _ in range(4):
        assert plain.post(f"{url}/messages", data={"content": "Hi"}).status_code == 303
