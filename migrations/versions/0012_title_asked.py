"""conversations.title_asked: whether the model has been asked for the title yet

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:30:00

The title is asked for once, after the first reply to complete; compared replies can
complete at the same moment in different threads, so the one that asks is the one whose
conditional write sets this flag. A conversation with a complete reply already had its
chance, so it starts with the flag set.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('conversations', sa.Column('title_asked', sa.Boolean(), nullable=False,
                                             server_default=sa.false()))
    op.execute("UPDATE conversations SET title_asked = true WHERE EXISTS ("
               "SELECT 1 FROM messages WHERE messages.conversation_id = conversations.id "
               "AND messages.role = 'assistant' AND messages.status = 'complete')")


def downgrade():
    op.execute('ALTER TABLE conversations DROP COLUMN title_asked')
