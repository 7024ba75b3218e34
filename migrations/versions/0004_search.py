"""full-text search over titles and messages

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-27 10:00:00.000000

SQLite: two FTS5 tables (search_messages, search_titles) whose rowids are the message and
conversation ids, filled from the existing rows and kept up to date by triggers, so every
writer (sending, the final write of a reply, reaping dead replies, renaming, deleting with
its cascade) updates the index without remembering to. A reply is indexed once it is no
longer being written, so the partial text flushed while streaming costs the index nothing.

PostgreSQL: GIN indexes on to_tsvector('simple', ...) expressions, which the database
keeps up to date by itself; the message index is partial, leaving out replies still being
written for the same reason. The 'simple' configuration (no stemming, no stop words) is used
on both databases (and FTS5's unicode61 tokenizer without diacritics folding to match it),
so a conversation in any language is searched the same way, ignoring case: folding accents
on PostgreSQL would need the unaccent extension, which not every server has.

Everything here is named search_*; migrations/env.py leaves such objects out of
autogenerate comparisons. webapp/search/index.py holds the queries that use them.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None

BEING_WRITTEN = "('pending', 'streaming')"

SQLITE_UPGRADE = [
    "CREATE VIRTUAL TABLE search_messages USING fts5("
    "content, tokenize = 'unicode61 remove_diacritics 0')",
    "CREATE VIRTUAL TABLE search_titles USING fts5("
    "title, tokenize = 'unicode61 remove_diacritics 0')",
    "INSERT INTO search_messages (rowid, content) SELECT id, content FROM messages "
    f"WHERE status NOT IN {BEING_WRITTEN}",
    "INSERT INTO search_titles (rowid, title) SELECT id, title FROM conversations",
    f"""CREATE TRIGGER search_messages_insert AFTER INSERT ON messages
        WHEN new.status NOT IN {BEING_WRITTEN}
        BEGIN
          INSERT INTO search_messages (rowid, content) VALUES (new.id, new.content);
        END""",
    f"""CREATE TRIGGER search_messages_update AFTER UPDATE OF content, status ON messages
        WHEN new.status NOT IN {BEING_WRITTEN} OR old.status NOT IN {BEING_WRITTEN}
        BEGIN
          DELETE FROM search_messages WHERE rowid = old.id;
          INSERT INTO search_messages (rowid, content)
            SELECT new.id, new.content WHERE new.status NOT IN {BEING_WRITTEN};
        END""",
    """CREATE TRIGGER search_messages_delete AFTER DELETE ON messages
        BEGIN
          DELETE FROM search_messages WHERE rowid = old.id;
        END""",
    """CREATE TRIGGER search_titles_insert AFTER INSERT ON conversations
        BEGIN
          INSERT INTO search_titles (rowid, title) VALUES (new.id, new.title);
        END""",
    """CREATE TRIGGER search_titles_update AFTER UPDATE OF title ON conversations
        BEGIN
          UPDATE search_titles SET title = new.title WHERE rowid = old.id;
        END""",
    """CREATE TRIGGER search_titles_delete AFTER DELETE ON conversations
        BEGIN
          DELETE FROM search_titles WHERE rowid = old.id;
        END""",
]

SQLITE_DOWNGRADE = [
    *(f"DROP TRIGGER search_{name}" for name in (
        "messages_insert", "messages_update", "messages_delete",
        "titles_insert", "titles_update", "titles_delete")),
    "DROP TABLE search_messages",
    "DROP TABLE search_titles",
]

POSTGRESQL_UPGRADE = [
    "CREATE INDEX search_messages_idx ON messages "
    "USING gin (to_tsvector('simple'::regconfig, content)) "
    f"WHERE status NOT IN {BEING_WRITTEN}",
    "CREATE INDEX search_titles_idx ON conversations "
    "USING gin (to_tsvector('simple'::regconfig, title))",
]

POSTGRESQL_DOWNGRADE = [
    "DROP INDEX search_messages_idx",
    "DROP INDEX search_titles_idx",
]


def _run(statements_by_dialect):
    dialect = op.get_bind().dialect.name
    if dialect not in statements_by_dialect:
        raise NotImplementedError(f"Search is not implemented for {dialect}.")
    for statement in statements_by_dialect[dialect]:
        op.execute(statement)


def upgrade():
    _run({"sqlite": SQLITE_UPGRADE, "postgresql": POSTGRESQL_UPGRADE})


def downgrade():
    _run({"sqlite": SQLITE_DOWNGRADE, "postgresql": POSTGRESQL_DOWNGRADE})
