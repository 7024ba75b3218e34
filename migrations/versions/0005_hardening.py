"""one reply being generated per conversation; the sidebar's index

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-25 18:30:00

A partial unique index on messages(conversation_id) for the rows whose status is pending
or streaming, so two requests sending at once can't both start a reply; and an index on
conversations(owner_id, updated_at, id) for the sidebar's pages.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None

WHERE = sa.text("status IN ('pending', 'streaming')")


def upgrade():
    # Two replies left active by an earlier race: keep the newest, the others were cut off.
    op.execute(sa.text(
        "UPDATE messages SET status = 'interrupted' WHERE " + WHERE.text + " AND id NOT IN "
        "(SELECT MAX(id) FROM messages WHERE " + WHERE.text + " GROUP BY conversation_id)"))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('uq_messages_one_active_reply', ['conversation_id'],
                              unique=True, sqlite_where=WHERE, postgresql_where=WHERE)


    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_owner_recent',
                              ['owner_id', 'updated_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_owner_recent')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('uq_messages_one_active_reply', sqlite_where=WHERE,
                            postgresql_where=WHERE)
