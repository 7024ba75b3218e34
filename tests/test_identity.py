"""A browser's identity: no request from another site changes state or replaces the cookie,
and Continue on a shared page keeps the identity of whoever continues."""

from __future__ import annotations

import pytest

from tests.conftest import messages_of, share_link, start_chat
from tests.test_csrf import token_of
from webapp.conversations.models import Conversation
from webapp.extensions import db

EVIL = "https://evil.example"
# What a browser sends with a form that a page of another site submits by itself: with
# Fetch Metadata (current browsers), with only an Origin (older ones), with neither.
FORGED_HEADERS = [
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
     "Sec-Fetch-Dest": "document", "Origin": EVIL},
    {"Origin": EVIL},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://sibling.localhost"},
]


@pytest.fixture
def protected(make_app):
    return make_app(WTF_CSRF_ENABLED=True)


def own_conversations(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            db.select(Conversation.owner_id, Conversation.public_id).order_by(Conversation.id))]


def set_cookies(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def victim_and_link(app) -> tuple:
    """A browser with a conversation of its own, and a shared link an attacker chose."""
    victim = app.test_client()
    token = token_of(victim.get("/").get_data(as_text=True))
    response = victim.post("/c", data={"content": "My own words", "csrf_token": token})
    own = response.headers["Location"].split("#")[0]
    attacker = app.test_client()
    attacker_token = token_of(attacker.get("/").get_data(as_text=True))
    bait = attacker.post("/c", data={"content": "Bait", "system_prompt": "Obey evil",
                                     "csrf_token": attacker_token})
    link = share_link(attacker, bait.headers["Location"].split("#")[0],
                      csrf_token=attacker_token, include_system_prompt="1")
    return victim, own, link


@pytest.mark.parametrize("headers", FORGED_HEADERS + [{}],
                         ids=["fetch-metadata", "origin-only", "same-site", "no-headers"])
def test_a_forged_continue_changes_nothing_and_the_victim_keeps_their_chats(protected,
                                                                            headers):
    victim, own, link = victim_and_link(protected)
    before = own_conversations(protected)
    # SameSite=Lax keeps the victim's cookie off the forged POST: it arrives with none.
    cookieless = protected.test_client()
    response = cookieless.post(f"{link}/continue", headers=headers)
    assert response.status_code in (400, 403)
    assert set_cookies(response) == [], "no cookie that could replace the victim's"
    # A browser that does send the cookie with it (Chrome's first two minutes) is refused too.
    response = victim.post(f"{link}/continue", headers=headers)
    assert response.status_code in (400, 403)
    assert own_conversations(protected) == before
    page = victim.get(own)
    assert page.status_code == 200 and "My own words" in page.get_data(as_text=True)


def test_every_unsafe_request_from_another_site_is_refused(app, client):
    url = start_chat(client)
    link = share_link(client, url)
    values = {"public_id": url.rsplit("/", 1)[1], "message_id": messages_of(app)[-1].id,
              "token": link.rsplit("/", 1)[1], "position": 0}
    before = (own_conversations(app), [m.content for m in messages_of(app)])
    adapter = app.url_map.bind("localhost")
    checked = 0
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods:
            continue
        path = adapter.build(rule.endpoint, {name: values[name] for name in rule.arguments})
        for headers in FORGED_HEADERS[:2]:
            response = client.post(path, data={"content": "x", "title": "x"}, headers=headers)
            assert response.status_code == 403, (path, headers)
            assert "came from another site" in response.get_data(as_text=True)
        checked += 1
    assert checked >= 12
    for method in (client.put, client.patch, client.delete):
        assert method(url, headers=FORGED_HEADERS[0]).status_code == 403
    assert (own_conversations(app), [m.content for m in messages_of(app)]) == before


def test_the_apps_own_pages_may_post(app, client):
    for headers in ({"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
                    {"Origin": "http://localhost"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "none"}):
        assert client.post("/c", data={"content": "Hi"}, headers=headers).status_code == 303


def test_a_cross_site_subrequest_never_sets_the_cookie(client):
    image = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
             "Sec-Fetch-Dest": "image"}
    framed = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
              "Sec-Fetch-Dest": "iframe"}
    for headers in (image, framed):
        response = client.get("/", headers=headers)
        assert response.status_code == 200 and set_cookies(response) == []
    # Arriving from a link on another site is a page load: the cookie comes with it.
    arriving = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Dest": "document"}
    assert any(c.startswith("session=") for c in set_cookies(client.get("/", headers=arriving)))


def continue_with_the_form(client, link: str):
    """Open Continue's question from the shared page, then confirm it with its form."""
    page = client.get(f"{link}/continue").get_data(as_text=True)
    assert "Copy into my chats" in page
    return client.post(f"{link}/continue", data={"csrf_token": token_of(page)},
                       headers={"Sec-Fetch-Site": "same-origin"})


def test_continue_works_for_a_fresh_visitor(protected):
    _, _, link = victim_and_link(protected)
    visitor = protected.test_client()
    response = continue_with_the_form(visitor, link)
    assert response.status_code == 303
    copy = response.headers["Location"]
    page = visitor.get(copy).get_data(as_text=True)
    assert "Bait" in page and "Obey evil" in page


def test_continue_keeps_an_existing_visitors_identity_and_chats(protected):
    victim, own, link = victim_and_link(protected)
    response = continue_with_the_form(victim, link)
    copy = response.headers["Location"]
    assert response.status_code == 303 and copy != own
    owners = {owner for owner, public_id in own_conversations(protected)
              if f"/c/{public_id}" in (own, copy)}
    assert len(owners) == 1, "the copy joins the visitor's own list"
    sidebar = victim.get("/").get_data(as_text=True)
    assert own in sidebar and copy in sidebar
    assert victim.get(own).status_code == 200
