"""conversations.import_key: which exported conversation an imported one came from

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 06:50:00

Importing the same export twice adds nothing new: each imported conversation keeps its
format and the export's id of it, unique per owner (NULL for every other conversation).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases: a batch operation would copy the conversations
# table on SQLite and lose its search triggers.
def upgrade():
    op.add_column('conversations', sa.Column('import_key', sa.String(length=200),
                                             nullable=True))
    op.create_index('uq_conversations_owner_import_key', 'conversations',
                    ['owner_id', 'import_key'], unique=True)


def downgrade():
    op.drop_index('uq_conversations_owner_import_key', table_name='conversations')
    op.execute('ALTER TABLE conversations DROP COLUMN import_key')
