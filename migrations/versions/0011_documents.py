"""documents: text files and PDFs sent with user messages, searchable; shares may show them

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 08:50:00

Each document keeps its name, size and the text extracted at upload (what every later
turn replays). Search covers the text as migration 0004 covers messages: on SQLite an
FTS5 table search_documents (rowid = the document's id) kept up to date by triggers (a
document is never changed, only added and deleted, with its message's cascade); on
PostgreSQL a GIN index on the same 'simple' tsvector expression over the first 100,000
characters: a tsvector refuses more than 1 MB of lexemes, and PostgreSQL's parser makes
three lexemes of a hyphenated word (the whole word and each part), so text of short
hyphenated words in four-byte letters takes up to about 8.5 bytes of tsvector a character.
shares.include_documents says whether a share shows the documents' text or only their names.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

SQLITE_UPGRADE = [
    "CREATE VIRTUAL TABLE search_documents USING fts5("
    "text, tokenize = 'unicode61 remove_diacritics 0')",
    """CREATE TRIGGER search_documents_insert AFTER INSERT ON documents
        BEGIN
          INSERT INTO search_documents (rowid, text) VALUES (new.id, new.text);
        END""",
    """CREATE TRIGGER search_documents_delete AFTER DELETE ON documents
        BEGIN
          DELETE FROM search_documents WHERE rowid = old.id;
        END""",
]
SQLITE_DOWNGRADE = ["DROP TRIGGER search_documents_insert",
                    "DROP TRIGGER search_documents_delete",
                    "DROP TABLE search_documents"]
POSTGRESQL_UPGRADE = ["CREATE INDEX search_documents_idx ON documents "
                      "USING gin (to_tsvector('simple'::regconfig, left(text, 100000)))"]
POSTGRESQL_DOWNGRADE = ["DROP INDEX search_documents_idx"]


def _run(statements_by_dialect):
    dialect = op.get_bind().dialect.name
    if dialect not in statements_by_dialect:
        raise NotImplementedError(f"Search is not implemented for {dialect}.")
    for statement in statements_by_dialect[dialect]:
        op.execute(statement)


# Plain ALTER TABLE on shares (see 0009); the documents table is new.
def upgrade():
    op.create_table(
        'documents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('byte_size', sa.Integer(), nullable=False),
        sa.Column('chars', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'],
                                name=op.f('fk_documents_message_id_messages'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_documents')),
    )
    op.create_index(op.f('ix_documents_message_id'), 'documents', ['message_id'])
    op.add_column('shares', sa.Column('include_documents', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    _run({"sqlite": SQLITE_UPGRADE, "postgresql": POSTGRESQL_UPGRADE})


def downgrade():
    _run({"sqlite": SQLITE_DOWNGRADE, "postgresql": POSTGRESQL_DOWNGRADE})
    op.execute('ALTER TABLE shares DROP COLUMN include_documents')
    op.drop_index(op.f('ix_documents_message_id'), table_name='documents')
    op.drop_table('documents')
