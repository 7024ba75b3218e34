"""A long conversation opens at its latest page; earlier pages load on demand (htmx) or
through a plain link, every message of the shown branch exactly once, versions intact."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.conftest import start_chat, text_of
from tests.test_queries import grow
from webapp.conversations import tree
from webapp.conversations.models import Conversation
from webapp.extensions import db

TURNS = 70  # 141 messages on the shown branch: three pages
PAGE_SIZE = 50  # MESSAGES_PER_PAGE by default
MESSAGE_ID = re.compile(r'<article class="msg [^"]*" id="m-(\d+)"')
EARLIER = re.compile(r'<p class="page-link" id="earlier-\d+">\s*<a href="([^"]+)"\s*'
                     r'hx-get="([^"]+)"')
HTMX = {"HX-Request": "true"}


@pytest.fixture
def long_chat(app, client):
    """The URL of a conversation of TURNS turns (every other reply with an older version),
    and the ids of its shown branch, root to leaf."""
    url = start_chat(client, "Question 1", system_prompt="Be brief.")
    grow(app, url, TURNS)
    with app.app_context():
        conversation = db.session.scalar(db.select(Conversation).where(
            Conversation.public_id == url.rsplit("/", 1)[1]))
        branch = [message.id for message in tree.shown_branch(conversation).messages]
    return url, branch


def ids_in(html: str) -> list[int]:
    return [int(found) for found in MESSAGE_ID.findall(html)]


def earlier_link(html: str) -> tuple[str, str] | None:
    """The "Show earlier messages" link's href and hx-get, if the page has one."""
    found = EARLIER.search(html)
    return (unescape(found[1]), unescape(found[2])) if found else None


def test_the_page_opens_at_the_latest_messages(client, long_chat):
    url, branch = long_chat
    page = client.get(url).get_data(as_text=True)
    assert ids_in(page) == branch[-PAGE_SIZE:]
    assert "Show earlier messages" in page
    assert f"Answer {TURNS}" in text_of(page)


def test_scrolling_up_with_htmx_reaches_every_message_once(client, long_chat):
    url, branch = long_chat
    page = client.get(url).get_data(as_text=True)
    seen, pages = ids_in(page), 1
    while (link := earlier_link(page)) is not None:
        page = client.get(link[1], headers=HTMX).get_data(as_text=True)
        assert "<html" not in page  # a fragment, put in the link's place
        seen, pages = ids_in(page) + seen, pages + 1
    assert seen == branch  # each message once, in order, hidden branches left out
    assert pages == 3
    assert "System prompt Be brief." in text_of(page)


def test_earlier_pages_keep_the_versions_of_their_messages(client, long_chat):
    url, _ = long_chat
    page = client.get(url).get_data(as_text=True)
    first_page = client.get(earlier_link(client.get(earlier_link(page)[1], headers=HTMX)
                                         .get_data(as_text=True))[1], headers=HTMX)
    html = first_page.get_data(as_text=True)
    # Turns 3, 5, 7 ... have an older reply beside the shown one.
    answer_3 = html[html.index("Answer 3"):html.index("Question 4")]
    assert "2 / 2" in text_of(answer_3) and "Previous version" in answer_3


def test_without_javascript_the_link_opens_each_earlier_page(client, long_chat):
    url, branch = long_chat
    page = client.get(url).get_data(as_text=True)
    seen = ids_in(page)
    while (link := earlier_link(page)) is not None:
        response = client.get(link[0])
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert "<html" in page and "Show the latest messages" in page
        seen = ids_in(page) + seen
    assert seen == branch


def test_a_link_to_an_early_message_opens_the_page_that_shows_it(client, long_chat):
    url, branch = long_chat
    early = branch[3]
    response = client.get(f"{url}/messages/{early}")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert early in ids_in(page)
    assert ids_in(page)[-1] == early


def test_earlier_needs_a_message_to_page_before(client, long_chat):
    url, _ = long_chat
    assert client.get(f"{url}/earlier", headers=HTMX).status_code == 400


def test_earlier_without_htmx_opens_the_page(client, long_chat):
    url, branch = long_chat
    response = client.get(f"{url}/earlier?before={branch[-50]}")
    assert response.status_code == 303
    assert response.headers["Location"] == f"{url}?before={branch[-50]}"


def test_switching_versions_far_up_keeps_the_message_in_view(client, long_chat):
    url, branch = long_chat
    # Answer 3 (branch[6]: system, Q1, A1, Q2, A2, Q3, A3) has an older version, a leaf.
    page = client.get(f"{url}/earlier?before={branch[7]}", headers=HTMX)
    older = int(re.search(r'id="m-%d".*?/messages/(\d+)/show' % branch[6],
                          page.get_data(as_text=True), re.S)[1])
    html = client.post(f"{url}/messages/{older}/show", headers=HTMX).get_data(as_text=True)
    assert ids_in(html) == branch[:6] + [older]  # a short branch, shown whole
    html = client.post(f"{url}/messages/{branch[6]}/show",
                       headers=HTMX).get_data(as_text=True)
    assert ids_in(html) == branch[5:]  # back: from the question above it down to the end
