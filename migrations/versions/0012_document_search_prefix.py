"""document search on PostgreSQL: the index covers a document's first 100,000 characters

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 09:50:00

PostgreSQL's parser makes three lexemes of a hyphenated word (the whole word and each
part), so text of short hyphenated words in four-byte letters takes up to about 8.5 bytes
of tsvector a character: 250,000 characters could pass the 1 MB a tsvector may hold, and
the insert of such a document failed. 100,000 characters stay under it whatever the text.
SQLite's FTS5 table has no such limit and is left as it is.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _index_over(characters: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX search_documents_idx")
    op.execute("CREATE INDEX search_documents_idx ON documents USING gin "
               f"(to_tsvector('simple'::regconfig, left(text, {characters})))")


def upgrade():
    _index_over(100000)


def downgrade():
    _index_over(250000)
