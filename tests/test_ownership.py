"""Two browsers, two owners: each sees and acts on its own conversations only."""

from __future__ import annotations

import pytest

from tests.conftest import messages_of, share_link, start_chat

# Every route that names a conversation: (method, path after the conversation URL).
CONVERSATION_ROUTES = [
    ("get", ""),
    ("post", "/messages"),
    ("get", "/messages/{message}/stream"),
    ("post", "/messages/{message}/stop"),
    ("post", "/messages/{message}/retry"),
    ("post", "/messages/{message}/continue"),
    ("post", "/settings"),
    ("post", "/rename"),
    ("post", "/model"),
    ("get", "/delete"),
    ("post", "/delete"),
    ("get", "/share"),
    ("post", "/share"),
    ("post", "/share/revoke"),
    ("get", "/export.md"),
    ("get", "/export.json"),
]
FORM = {"content": "Intruder", "title": "Taken", "model": "Qwen3-8B",
        "include_system_prompt": "1"}


@pytest.fixture
def owned(app, client):
    """A conversation of the first owner, shared, with its reply's id."""
    url = start_chat(client, "Private question", system_prompt="Private prompt")
    link = share_link(client, url)
    return url, messages_of(app)[-1].id, link


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("method, suffix", CONVERSATION_ROUTES)
def test_another_owner_gets_404_on_every_route(app, client, upstream, owned, method,
                                               suffix, htmx):
    url, message_id, link = owned
    intruder = app.test_client()
    headers = {"HX-Request": "true"} if htmx else {}
    path = url + suffix.format(message=message_id)
    response = getattr(intruder, method)(path, data=FORM if method == "post" else None,
                                         headers=headers)

    assert response.status_code == 404
    assert "Private" not in response.get_data(as_text=True)
    page = client.get(url).get_data(as_text=True)
    assert ">Private question</h1>" in page and "Intruder" not in page
    assert [m.content for m in messages_of(app)] == [
        "Private prompt", "Private question", "You said: Private question"]
    assert len(upstream.chat_requests) == 1
    assert client.get(link).status_code == 200


def test_lists_show_only_the_owners_own(app, client, owned):
    url, _, link = owned
    other = app.test_client()
    start_chat(other, "Other owner's chat")
    other_page = other.get("/").get_data(as_text=True)
    assert "Other owner&#39;s chat" in other_page
    assert url not in other_page and "Private question" not in other_page
    assert link not in other.get("/shares").get_data(as_text=True)
    assert "Other owner" not in client.get("/").get_data(as_text=True)
    assert link in client.get("/shares").get_data(as_text=True)


def test_the_owner_cookie_is_signed_httponly_lax_and_long_lived(client):
    start_chat(client, "Hi")
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"
    assert cookie.expires is not None
    forged = cookie.value[:-4] + ("AAAA" if not cookie.value.endswith("AAAA") else "BBBB")
    client.set_cookie("session", forged)
    assert "No conversations yet." in client.get("/").get_data(as_text=True)
