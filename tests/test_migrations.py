"""The migrations build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from webapp.conversations.models import Comparison, ComparisonColumn, Conversation, Message
from webapp.extensions import db
from webapp.search.index import is_index_object

TABLES = {"alembic_version", "conversations", "messages", "shares", "attachments",
          "device_links", "import_jobs", "comparisons", "comparison_columns", "documents"}


def test_upgrade_on_an_empty_database_matches_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_name": lambda name, *_: not is_index_object(name)})
        assert compare_metadata(context, db.metadata) == []


def test_downgrade_to_base_then_upgrade(app):
    with app.app_context():
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {name for name in tables if not is_index_object(name)} == TABLES


def test_downgrade_past_comparisons_with_replies_active_in_two_lanes(app):
    """0010's downgrade keeps one active reply per conversation (the newest) so the older
    unique index can be built again, with a comparison's rows in place."""
    with app.app_context():
        conversation = Conversation(owner_id="owner", model="m-a")
        question = Message(conversation=conversation, role="user", content="Q",
                           status="complete")
        db.session.add(question)
        db.session.flush()
        replies = [Message(conversation=conversation, parent_id=question.id,
                           role="assistant", content="", status="streaming", lane=lane)
                   for lane in (0, 1)]
        db.session.add_all(replies)
        db.session.flush()
        comparison = Comparison(conversation=conversation, fork_id=question.id, columns=[
            ComparisonColumn(position=position, model=model, leaf_id=reply.id)
            for position, (model, reply) in enumerate(zip(["m-a", "m-b"], replies))])
        db.session.add(comparison)
        db.session.flush()
        conversation.comparison_id = comparison.id
        db.session.commit()
        ids = [reply.id for reply in replies]
        db.session.remove()

        downgrade(revision="0009")
        statuses = dict(db.session.execute(text("SELECT id, status FROM messages")).all())
        assert [statuses[ids[0]], statuses[ids[1]]] == ["interrupted", "streaming"]
        db.session.remove()
        upgrade()
        assert db.session.execute(text("SELECT lane FROM messages WHERE id = :id"),
                                  {"id": ids[1]}).scalar() == 0
        db.session.remove()


def test_a_conversation_with_a_complete_reply_counts_as_asked_for_its_title(app):
    """0012 marks what already had its first complete reply, so an older conversation is
    not titled again by its next reply; one still waiting for that reply is not marked."""
    with app.app_context():
        answered, waiting = (Conversation(owner_id="owner", model="m-a") for _ in range(2))
        db.session.add_all([
            Message(conversation=answered, role="user", content="Q", status="complete"),
            Message(conversation=answered, role="assistant", content="A", status="complete"),
            Message(conversation=waiting, role="user", content="Q", status="complete"),
            Message(conversation=waiting, role="assistant", content="", status="error")])
        db.session.commit()
        ids = answered.id, waiting.id
        db.session.remove()
        downgrade(revision="0011")
        upgrade()
        asked = dict(db.session.execute(text("SELECT id, title_asked FROM conversations")).all())
        assert [bool(asked[ids[0]]), bool(asked[ids[1]])] == [True, False]
        db.session.remove()
