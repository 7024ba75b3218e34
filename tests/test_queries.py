"""Pages run a fixed number of SQL statements, whatever the size of the conversation, and
load only the messages they show."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import event

from tests.conftest import start_chat, text_of
from webapp.conversations import tree
from webapp.conversations.models import Conversation, Message, Status
from webapp.extensions import db


def grow(app, url: str, turns: int) -> None:
    """Add turns to the conversation at url until it has `turns`; every other reply gets
    an older version beside it, so the shown branch passes by hidden branches."""
    with app.app_context():
        conversation = db.session.scalar(db.select(Conversation).where(
            Conversation.public_id == url.rsplit("/", 1)[1]))
        for turn in range(2, turns + 1):
            question = tree.append(conversation, "user", f"Question {turn}")
            if turn % 2:
                tree.insert(conversation, question.id, "assistant", "An older answer.",
                            status=Status.COMPLETE)
            tree.append(conversation, "assistant", f"Answer {turn}", status=Status.COMPLETE,
                        prompt_tokens=10, completion_tokens=5, total_tokens=15)
        db.session.commit()


@dataclass
class Counts:
    """The SQL statements run, and the messages loaded from their rows."""

    statements: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


@contextmanager
def counted(app):
    """Counts the statements run and the messages loaded meanwhile."""
    counts = Counts()

    def count_statement(conn, cursor, statement, parameters, context, executemany):
        counts.statements.append(statement)

    def count_message(message, context):
        counts.messages.append(message.content)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count_statement)
    event.listen(Message, "load", count_message)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", count_statement)
        event.remove(Message, "load", count_message)


def counts_for(make_app, turns: int, path: str) -> Counts:
    app = make_app()
    client = app.test_client()
    url = start_chat(client, "Question 1", system_prompt="Be brief.")
    grow(app, url, turns)
    page = client.get(url).get_data(as_text=True)
    assert f"Answer {turns}" in text_of(page)
    if turns > 2:
        assert "2 / 2" in text_of(page)  # the versions of replies with an older one
    with counted(app) as counts:
        response = client.get(url + path)
    assert response.status_code == 200
    return counts


@pytest.mark.parametrize("path", ["", "/share", "/export.json", "/export.md"])
def test_a_page_runs_as_many_statements_for_2_turns_as_for_20(make_app, path):
    small, large = counts_for(make_app, 2, path), counts_for(make_app, 20, path)
    assert len(small.statements) == len(large.statements), "\n\n".join(large.statements)
    if path == "/export.json":  # the JSON holds the whole tree, every version
        assert "An older answer." in large.messages
    else:
        assert "An older answer." not in large.messages  # hidden branches are not loaded


def test_the_conversation_page_runs_a_handful_of_statements(make_app):
    counts = counts_for(make_app, 20, "")
    # One of them each for the shown messages' images and documents (selectin).
    assert len(counts.statements) <= 9, "\n\n".join(counts.statements)
    assert len(counts.messages) == 1 + 2 * 20  # the system prompt and the shown turns


def test_a_long_conversation_page_loads_only_its_latest_page(make_app):
    """Only the last MESSAGES_PER_PAGE (50) messages are loaded."""
    short, long = counts_for(make_app, 2, ""), counts_for(make_app, 60, "")
    assert len(short.statements) == len(long.statements), "\n\n".join(long.statements)
    assert len(long.messages) == 50
    assert "Answer 60" in long.messages and "Answer 30" not in long.messages
