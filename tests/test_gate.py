"""The access gate: ACCESS_PASSWORD once per browser; shared links stay public."""

from __future__ import annotations

import pytest

from tests.conftest import messages_of, share_link, start_chat
from webapp.web.gate import public

PASSWORD = "correct horse battery staple"


@pytest.fixture
def gated(make_app):
    app = make_app(ACCESS_PASSWORD=PASSWORD, RATELIMIT_ENABLED=True,
                   PASSWORD_TRIES_PER_MINUTE=3)
    app.add_url_rule("/public-example", "public_example", public(lambda: "shared"))
    return app


def test_without_the_password_chatting_leads_to_the_gate(gated, upstream):
    client = gated.test_client()
    response = client.get("/")
    assert response.status_code == 303
    assert response.headers["Location"] == "/access?next=/"
    response = client.post("/c", data={"content": "Hi"})
    assert response.status_code == 303 and response.headers["Location"] == "/access"
    response = client.post("/c", data={"content": "Hi"}, headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"] == "/access"
    assert messages_of(gated) == [] and upstream.chat_requests == []
    page = client.get("/access").get_data(as_text=True)
    assert 'type="password"' in page and "Access password" in page


def test_the_password_is_asked_once_then_remembered(gated):
    client = gated.test_client()
    response = client.post("/access", data={"password": "wrong", "next": "/"})
    assert response.status_code == 403
    assert "That password is not right." in response.get_data(as_text=True)
    response = client.post("/access", data={"password": PASSWORD, "next": "/c/x?y=1"})
    assert response.status_code == 303 and response.headers["Location"] == "/c/x?y=1"
    assert client.get("/").status_code == 200
    assert client.post("/c", data={"content": "Hi"}).status_code == 303


def test_changing_the_password_asks_again(gated, make_app):
    client = gated.test_client()
    client.post("/access", data={"password": PASSWORD})
    other = make_app(ACCESS_PASSWORD="a new one")
    other_client = other.test_client()
    other_client.set_cookie("session", client.get_cookie("session").value)
    assert other_client.get("/").status_code == 303


HOSTILE_NEXT = [
    "//evil.example/", "https://evil.example/", "/\\evil.example", "\\/evil.example",
    "/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/\r\n/evil.example",
    "\t//evil.example", " //evil.example", "/ /evil.example".replace(" ", "\x0b"),
    "/\x00/evil.example", "/\x7f/evil.example", "javascript:alert(1)",
    "http:evil.example", "https:/evil.example", "///evil.example", "/.\\evil.example",
    "/\u3000/evil.example", "evil.example", "",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_the_gate_never_redirects_to_another_site(gated, target):
    client = gated.test_client()
    response = client.get("/access", query_string={"next": target})
    assert response.status_code == 200
    assert 'name="next" value="/"' in response.get_data(as_text=True)
    response = client.post("/access", data={"password": PASSWORD, "next": target})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    response = client.get("/access", query_string={"next": target})
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_a_tab_in_the_query_string_never_leads_off_site(gated):
    client = gated.test_client()
    client.post("/access", data={"password": PASSWORD})
    for raw in ("/%09/evil.example", "/%0A/evil.example", "/%0D/evil.example"):
        response = client.get(f"/access?next={raw}")
        assert response.status_code == 303 and response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/c/x?y=1", "/search?q=a%20b", "/shares", "/%09"])
def test_paths_on_this_site_pass(gated, target):
    client = gated.test_client()
    response = client.post("/access", data={"password": PASSWORD, "next": target})
    assert response.headers["Location"] == target


def test_wrong_passwords_are_rate_limited(gated):
    client = gated.test_client()
    for _ in range(3):
        assert client.post("/access", data={"password": "guess"}).status_code == 403
    response = client.post("/access", data={"password": PASSWORD})
    assert response.status_code == 429
    assert "too many wrong passwords in a minute. Try again in" in response.get_data(
        as_text=True)


def test_public_views_and_static_files_need_no_password(gated):
    client = gated.test_client()
    assert client.get("/public-example").get_data(as_text=True) == "shared"
    with client.get("/static/favicon.svg") as response:
        assert response.status_code == 200


def test_without_a_password_there_is_no_gate(client):
    assert client.get("/").status_code == 200
    assert client.get("/access").status_code == 303


def test_shared_links_stay_public_but_continuing_needs_the_password(gated):
    owner = gated.test_client()
    owner.post("/access", data={"password": PASSWORD})
    link = share_link(owner, start_chat(owner, "Shared words"))
    stranger = gated.test_client()
    response = stranger.get(link)
    assert response.status_code == 200 and "Shared words" in response.get_data(as_text=True)
    response = stranger.post(f"{link}/continue")
    assert response.status_code == 303 and response.headers["Location"] == "/access"
