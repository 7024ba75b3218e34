"""Rate limits on sending: per owner and per IP address, with a clear wait, drafts kept."""

from __future__ import annotations

import re

import pytest

from tests.conftest import start_chat


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


def test_refused_messages_cost_nothing(limited):
    client = limited.test_client()
    url = start_chat(client)
    for _ in range(3):
        assert client.post(f"{url}/messages", data={"content": " "}).status_code == 422
    assert client.post(f"{url}/messages", data={"content": "Two"}).status_code == 303


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
