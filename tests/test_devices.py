"""Use my chats on another device: a one-time, short-lived, revocable link to an owner's chats."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest

from tests.conftest import share_link, start_chat, text_of
from tests.test_csrf import token_of
from webapp.conversations.models import DeviceLink
from webapp.extensions import db

LINK = re.compile(r'id="device-link" type="url" value="http://localhost(/d/[A-Za-z0-9_-]+)"')


def make_link(client) -> str:
    """Press "Make a link" on the devices page; the link's path, shown this once."""
    response = client.post("/devices")
    assert response.status_code == 200
    return LINK.search(response.get_data(as_text=True))[1]


def use_link(client, link: str):
    """Open the link, then confirm it."""
    assert client.get(link).status_code == 200
    return client.post(link)


def stored_links(app) -> list[DeviceLink]:
    with app.app_context():
        return list(db.session.scalars(db.select(DeviceLink).order_by(DeviceLink.id)))


def test_the_devices_page_is_in_the_sidebar_and_works_without_script(client):
    page = client.get("/").get_data(as_text=True)
    assert re.search(r'href="/devices">(<svg .*?</svg>)?Use my chats on another device</a>', page)
    page = client.get("/devices").get_data(as_text=True)
    assert re.search(r'<form method="post" action="/devices">', page)
    assert "Make a link" in page and "device-link" not in page


def test_a_link_is_shown_once_and_only_its_hash_is_stored(app, client):
    link = make_link(client)
    token = link.rsplit("/", 1)[1]
    [row] = stored_links(app)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.expires_at - row.created_at == timedelta(minutes=15)
    page = client.get("/devices").get_data(as_text=True)
    assert token not in page and "works until" in page and "Turn the link off" in page
    other = app.test_client()
    assert token not in other.get("/devices").get_data(as_text=True)


def test_another_browser_gets_the_owners_chats_once(app, client):
    url = start_chat(client, "Words from the phone")
    link = make_link(client)
    laptop = app.test_client()
    question = laptop.get(link).get_data(as_text=True)
    assert "Use these chats here" in question and "will move over" not in question
    assert laptop.get(url).status_code == 404, "asking gives nothing yet"
    response = laptop.post(link)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert "Words from the phone" in laptop.get(url).get_data(as_text=True)
    assert client.get(url).status_code == 200, "the first browser keeps its chats"
    laptop.post(f"{url}/messages", data={"content": "Written on the laptop"})
    assert "Written on the laptop" in client.get(url).get_data(as_text=True)

    third = app.test_client()
    for response in (third.get(link), third.post(link)):
        assert response.status_code == 410
        assert "already used" in text_of(response.get_data(as_text=True))
    assert third.get(url).status_code == 404


def test_chats_already_in_the_other_browser_move_over(app, client):
    phone_chat = start_chat(client, "Phone chat")
    link = make_link(client)
    laptop = app.test_client()
    laptop_chat = start_chat(laptop, "Laptop chat")
    laptop_share = share_link(laptop, laptop_chat)
    laptop_link = make_link(laptop)
    question = text_of(laptop.get(link).get_data(as_text=True))
    assert "The 1 conversation already in this browser will move over too" in question
    assert laptop.post(link).status_code == 303
    for browser in (client, laptop):
        sidebar = browser.get("/").get_data(as_text=True)
        assert phone_chat in sidebar and laptop_chat in sidebar
        assert "Laptop chat" in browser.get(laptop_chat).get_data(as_text=True)
    assert laptop_share in client.get("/shares").get_data(as_text=True)
    assert client.post(f"{laptop_chat}/share/revoke").status_code == 303
    assert app.test_client().get(laptop_share).status_code == 410
    assert app.test_client().get(laptop_link).status_code == 410, (
        "the identity that moved away has no link left")


def test_an_expired_link_says_so(app, client):
    link = make_link(client)
    with app.app_context():
        row = db.session.scalar(db.select(DeviceLink))
        row.expires_at -= timedelta(minutes=15)
        db.session.commit()
    response = app.test_client().get(link)
    assert response.status_code == 410
    assert "expired (links work for 15 minutes)" in text_of(response.get_data(as_text=True))


def test_a_revoked_or_replaced_link_says_so(app, client):
    first = make_link(client)
    second = make_link(client)
    response = app.test_client().get(first)
    assert response.status_code == 410 and "turned off" in response.get_data(as_text=True)
    response = client.post("/devices/revoke")
    assert response.status_code == 303 and response.headers["Location"] == "/devices"
    assert "Make a link" in client.get("/devices").get_data(as_text=True)
    laptop = app.test_client()
    assert laptop.post(second).status_code == 410
    assert [row.revoked_at is not None for row in stored_links(app)] == [True, True]


@pytest.mark.parametrize("token", ["nope", "x" * 43, "x" * 500, "%00", "a.b"])
def test_unknown_links_get_a_404_with_a_sentence(client, token):
    response = client.get(f"/d/{token}")
    assert response.status_code == 404
    assert "There is no device link here" in text_of(response.get_data(as_text=True))
    assert client.post(f"/d/{token}").status_code == 404


def test_opening_the_link_in_the_browser_that_made_it_spends_nothing(app, client):
    link = make_link(client)
    response = use_link(client, link)
    assert response.status_code == 200
    assert "This browser already uses these chats" in response.get_data(as_text=True)
    assert use_link(app.test_client(), link).status_code == 303


def test_confirming_needs_the_csrf_token(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    phone = app.test_client()
    token = token_of(phone.get("/devices").get_data(as_text=True))
    page = phone.post("/devices", data={"csrf_token": token}).get_data(as_text=True)
    link = LINK.search(page)[1]
    laptop = app.test_client()
    question = laptop.get(link).get_data(as_text=True)
    assert laptop.post(link).status_code == 400
    assert stored_links(app)[0].used_at is None
    assert laptop.post(link, data={"csrf_token": token_of(question)}).status_code == 303


def test_links_that_do_not_work_are_rate_limited(make_app):
    app = make_app(RATELIMIT_ENABLED=True, DEVICE_LINK_TRIES_PER_MINUTE=3)
    owner = app.test_client()
    link = make_link(owner)
    guesser = app.test_client()
    for _ in range(3):
        assert guesser.get(f"/d/{'x' * 43}").status_code == 404
    response = guesser.get(link)
    assert response.status_code == 429
    assert "too many device link tries in a minute. Try again in" in text_of(
        response.get_data(as_text=True))
    assert stored_links(app)[0].used_at is None
