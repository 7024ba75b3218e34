"""Scale of data: long conversations open with few queries and no Markdown rendering; a
long conversation list is loaded a page at a time."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, insert, select

from tests.conftest import start_chat
from webapp.conversations import rendering
from webapp.conversations.models import Conversation, Message, utcnow
from webapp.extensions import db
from webapp.web.sidebar import PAGE_SIZE, group_of

ITEM = re.compile(r'<li><a id="conv-([A-Za-z0-9_-]+)"')
MORE = re.compile(r'<li class="more"><a href="([^"]+)"')
GROUP = re.compile(r'<li class="group">([^<]+)</li>')


@contextmanager
def counted_queries(app):
    """The SQL statements run inside the block."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def owner_of_first_chat(app) -> str:
    with app.app_context():
        return db.session.scalar(select(Conversation.owner_id))


def add_conversations(app, owner_id: str, count: int, ties: bool = False) -> None:
    """`count` conversations for the owner; with ties, many share one updated_at."""
    start = utcnow() - timedelta(days=1)
    rows = [{"owner_id": owner_id, "model": "m", "title": f"Chat {i}",
             "updated_at": start if ties and i % 3 else start + timedelta(seconds=i)}
            for i in range(count)]
    with app.app_context():
        db.session.execute(insert(Conversation), rows)
        db.session.commit()


def expected_order(app, owner_id: str) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(Conversation.public_id).where(Conversation.owner_id == owner_id)
            .order_by(Conversation.updated_at.desc(), Conversation.id.desc())))


def test_the_sidebar_pages_through_every_conversation_once(client, app):
    start_chat(client)
    owner = owner_of_first_chat(app)
    add_conversations(app, owner, 2 * PAGE_SIZE + 20, ties=True)
    page = client.get("/").get_data(as_text=True)
    seen = ITEM.findall(page)
    assert len(seen) == PAGE_SIZE
    while more := MORE.search(page):
        page = client.get(more.group(1).replace("&amp;", "&"),
                          headers={"HX-Request": "true"}).get_data(as_text=True)
        assert "<nav" not in page
        seen += ITEM.findall(page)
    assert seen == expected_order(app, owner)


def test_without_javascript_show_more_opens_a_page_of_older_conversations(client, app):
    start_chat(client)
    owner = owner_of_first_chat(app)
    add_conversations(app, owner, PAGE_SIZE + 5)
    more = MORE.search(client.get("/").get_data(as_text=True)).group(1)
    page = client.get(more.replace("&amp;", "&")).get_data(as_text=True)
    main = page.split('<main id="main"')[1]
    assert "Older conversations" in main
    assert ITEM.findall(main) == expected_order(app, owner)[PAGE_SIZE:]


@pytest.mark.parametrize("days, group", [(0, "Today"), (1, "Yesterday"), (2, "Previous 7 days"),
                                         (6, "Previous 7 days"), (7, "Previous 30 days"),
                                         (29, "Previous 30 days"), (30, "Older"), (-1, "Today")])
def test_a_conversation_is_listed_under_the_day_it_was_last_active(days, group):
    now = utcnow()
    assert group_of(now - timedelta(days=days), now.date()) == group


def test_each_day_heading_is_shown_once_even_across_pages(client, app):
    start_chat(client)  # today
    owner = owner_of_first_chat(app)
    now = utcnow()
    spread = [1] * (PAGE_SIZE - 5) + [3] * 10 + [10] * 2 + [100] * 2  # a page ends in "7 days"
    with app.app_context():
        db.session.execute(insert(Conversation), [
            {"owner_id": owner, "model": "m", "title": f"Chat {i}",
             "updated_at": now - timedelta(days=days, seconds=i)}
            for i, days in enumerate(spread)])
        db.session.commit()
    page = client.get("/").get_data(as_text=True)
    groups = GROUP.findall(page)
    while more := MORE.search(page):
        page = client.get(more.group(1).replace("&amp;", "&"),
                          headers={"HX-Request": "true"}).get_data(as_text=True)
        groups += GROUP.findall(page)
    assert groups == ["Today", "Yesterday", "Previous 7 days", "Previous 30 days", "Older"]


@pytest.mark.parametrize("cursor", ["garbage", "2020-13-45_x", "_", "\x00", "9" * 400,
                                    f"2020-01-01T00:00:00_{2**31}",
                                    "2020-01-01T00:00:00_99999999999999999999"])
def test_a_malformed_cursor_shows_the_first_page(client, cursor):
    start_chat(client)
    response = client.get("/conversations", query_string={"before": cursor})
    assert response.status_code == 200 and len(ITEM.findall(response.get_data(
        as_text=True))) == 2  # the chat itself, once in the sidebar, once in the list


def test_ten_thousand_conversations_load_one_page_with_few_queries(client, app):
    start_chat(client)
    add_conversations(app, owner_of_first_chat(app), 10_000)
    with counted_queries(app) as statements:
        page = client.get("/").get_data(as_text=True)
    assert len(ITEM.findall(page)) == PAGE_SIZE and MORE.search(page)
    assert len(statements) <= 5


def add_long_conversation(app, public_id: str, count: int, text: str) -> None:
    """`count` alternating user and assistant messages, HTML cached as the app stores it."""
    html = str(rendering.render_markdown(text))
    with app.app_context():
        conversation = db.session.scalar(select(Conversation).where(
            Conversation.public_id == public_id))
        parent = conversation.current_leaf_id
        first = db.session.scalar(select(db.func.max(Message.id))) + 1
        rows = []
        for offset in range(count):
            rows.append({"id": first + offset, "conversation_id": conversation.id,
                         "parent_id": parent, "content": text, "content_html": html,
                         "role": "user" if offset % 2 == 0 else "assistant"})
            parent = first + offset
        db.session.execute(insert(Message), rows)
        conversation.current_leaf_id = parent
        db.session.commit()


def test_a_conversation_of_2000_messages_renders_no_markdown_and_few_queries(
        client, app, monkeypatch):
    url = start_chat(client)
    text = "A paragraph with **bold**, `code` and a [link](https://example.com). " * 7
    add_long_conversation(app, url.rsplit("/", 1)[1], 2000, text)  # about 1 MB of text
    app.config["MESSAGES_PER_PAGE"] = 5000  # the whole branch on one page
    renders = []
    monkeypatch.setattr(rendering, "render_markdown",
                        lambda source: renders.append(source) or "")
    with counted_queries(app) as statements:
        response = client.get(url)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count('class="msg ') >= 2000 and "<strong>bold</strong>" in page
    assert renders == []
    # A constant, not one per message: the images and the documents of the messages are
    # loaded (selectinload) in batches of 500 ids, one statement each.
    batches = -(-2001 // 500)
    assert len(statements) <= 7 + 2 * batches, statements
