"""One reply per branch at a time, even when requests race each other."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateIndex

from harness.fake_upstream import Reply
from tests.conftest import messages_of, start_chat, wait_for_generations, wait_until
from webapp.conversations.models import (ONE_ACTIVE_REPLY, ONE_ACTIVE_WHERE, Conversation,
                                         Message, utcnow)
from webapp.extensions import db
from webapp.replies.generation import Busy

SLOW = Reply(tokens=[f"w{i} " for i in range(10)], token_delay=0.1)


def add_active_reply(conversation_id: int, lane: int = 0) -> None:
    """What a racing request writes: a reply being generated (in its own session)."""
    db.session.add(Message(conversation_id=conversation_id, role="assistant",
                           status="streaming", heartbeat_at=utcnow(), lane=lane))
    db.session.commit()


def test_the_database_holds_one_active_reply_per_branch(client, app):
    start_chat(client)
    with app.app_context():
        conversation_id = db.session.scalar(select(Conversation.id))
        add_active_reply(conversation_id)
        add_active_reply(conversation_id, lane=1)  # another column of a comparison
        with pytest.raises(IntegrityError):
            add_active_reply(conversation_id)
        db.session.rollback()
        with pytest.raises(IntegrityError):
            add_active_reply(conversation_id, lane=1)


def test_the_models_give_the_index_its_where_on_the_database_in_use(app):
    with app.app_context():
        ddl = str(CreateIndex(ONE_ACTIVE_REPLY).compile(dialect=db.engine.dialect))
    assert ddl.endswith(f"ON messages (conversation_id, lane) WHERE {ONE_ACTIVE_WHERE}")


def test_a_send_that_raced_past_the_check_is_busy_and_keeps_nothing(client, app):
    start_chat(client)
    with app.test_request_context():
        conversation = db.session.scalar(select(Conversation))
        assert conversation.active_reply() is None  # what the racing request saw
        with app.app_context():  # meanwhile another request starts a reply
            add_active_reply(conversation.id)
        with pytest.raises(Busy):
            app.extensions["generation"].start_turn(conversation, "Racing")
    assert "Racing" not in [m.content for m in messages_of(app)]


def submit_at_once(client, app, path: str, senders: int = 4) -> list[int]:
    """The statuses of `senders` tabs of the same browser posting "Tab N" to `path`
    at the same moment (htmx requests), in the order they answered."""
    cookie = client.get_cookie("session").value
    barrier = threading.Barrier(senders)
    statuses: list[int] = []

    def send(text: str) -> None:
        tab = app.test_client()
        tab.set_cookie("session", cookie)
        barrier.wait()
        response = tab.post(path, data={"content": text}, headers={"HX-Request": "true"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(f"Tab {i}",)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_a_double_submit_starts_exactly_one_reply(client, app, upstream):
    url = start_chat(client)
    upstream.default_reply = SLOW
    assert sorted(submit_at_once(client, app, f"{url}/messages")) == [200] + [409] * 3
    wait_for_generations(app)
    messages = messages_of(app)
    assert len([m for m in messages if m.content.startswith("Tab ")]) == 1
    assert [m.status for m in messages if m.role == "assistant"] == ["complete"] * 2


def test_a_double_submit_of_a_compared_turn_starts_each_column_once(client, app, upstream):
    response = client.post("/c", data={"content": "First", "models": ["m-a", "m-b", "m-c"]})
    url = response.headers["Location"].split("#")[0]
    upstream.default_reply = SLOW
    assert sorted(submit_at_once(client, app, f"{url}/compare/messages")) == [200] + [409] * 3
    wait_for_generations(app)
    messages = messages_of(app)
    sent = [m.content for m in messages if m.content.startswith("Tab ")]
    assert len(sent) == 3 and len(set(sent)) == 1  # one turn, once in each column
    assert [m.status for m in messages if m.role == "assistant"] == ["complete"] * 6


def test_a_column_regenerates_while_another_is_still_writing(client, app, upstream):
    slow_a = Reply(tokens=[f"w{i} " for i in range(40)], token_delay=0.05)
    upstream.default_reply = lambda body: slow_a if body["model"] == "m-a" \
        else Reply(f"{body['model']} answers")
    response = client.post("/c", data={"content": "First", "models": ["m-a", "m-b"]},
                           headers={"HX-Request": "true"})
    url = response.headers["HX-Redirect"]
    wait_until(lambda: [m.status for m in messages_of(app) if m.model == "m-b"]
               == ["complete"])
    assert [m.is_active for m in messages_of(app) if m.model == "m-a"] == [True]
    assert client.post(f"{url}/compare/0/retry").status_code == 409  # A is writing
    response = client.post(f"{url}/compare/1/retry", headers={"HX-Request": "true"})
    assert response.status_code == 200  # B's branch is free while A writes
    wait_for_generations(app)
    replies = [(m.model, m.status) for m in messages_of(app) if m.role == "assistant"]
    assert replies == [("m-a", "complete"), ("m-b", "complete"), ("m-b", "complete")]
