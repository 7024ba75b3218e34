"""comparisons: several models side by side, one active reply per branch

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 08:40:00

comparisons and comparison_columns: a comparison of two or three models in a
conversation, each column with its model, its position and the leaf of its own thread
(ordinary branches of the message tree); blind comparisons keep the pick.
conversations.comparison_id: the comparison going on in the conversation (NULL: none).
messages.lane: the branch an active reply holds (0 outside comparisons, a column's
position inside one); the unique index on active replies moves from one per conversation
to one per (conversation, lane).
messages.first_token_seconds / writing_seconds: time to the first token, and from there
to the last one (tokens per second).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

WHERE = sa.text("status IN ('pending', 'streaming')")
MESSAGE_COLUMNS = (
    sa.Column('first_token_seconds', sa.Float(), nullable=True),
    sa.Column('writing_seconds', sa.Float(), nullable=True),
    sa.Column('lane', sa.Integer(), server_default='0', nullable=False),
)


# Plain ALTER TABLE and CREATE INDEX on both databases: a batch operation would copy the
# messages table on SQLite and lose its search triggers.
def upgrade():
    for column in MESSAGE_COLUMNS:
        op.add_column('messages', column)
    op.add_column('conversations', sa.Column('comparison_id', sa.Integer(), nullable=True))
    op.drop_index('uq_messages_one_active_reply', table_name='messages',
                  sqlite_where=WHERE, postgresql_where=WHERE)
    op.create_index('uq_messages_one_active_reply_per_lane', 'messages',
                    ['conversation_id', 'lane'], unique=True, sqlite_where=WHERE,
                    postgresql_where=WHERE)
    op.create_table(
        'comparisons',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('blind', sa.Boolean(), nullable=False),
        sa.Column('fork_id', sa.Integer(), nullable=True),
        sa.Column('picked_position', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                                name=op.f('fk_comparisons_conversation_id_conversations'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['fork_id'], ['messages.id'],
                                name=op.f('fk_comparisons_fork_id_messages'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_comparisons')),
    )
    op.create_index(op.f('ix_comparisons_conversation_id'), 'comparisons',
                    ['conversation_id'])
    op.create_table(
        'comparison_columns',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('comparison_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('model', sa.String(length=200), nullable=False),
        sa.Column('leaf_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['comparison_id'], ['comparisons.id'],
                                name=op.f('fk_comparison_columns_comparison_id_comparisons'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['leaf_id'], ['messages.id'],
                                name=op.f('fk_comparison_columns_leaf_id_messages'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_comparison_columns')),
        sa.UniqueConstraint('comparison_id', 'position',
                            name=op.f('uq_comparison_columns_comparison_id')),
    )
    op.create_index(op.f('ix_comparison_columns_comparison_id'), 'comparison_columns',
                    ['comparison_id'])


def downgrade():
    op.drop_index(op.f('ix_comparison_columns_comparison_id'),
                  table_name='comparison_columns')
    op.drop_table('comparison_columns')
    op.drop_index(op.f('ix_comparisons_conversation_id'), table_name='comparisons')
    op.drop_table('comparisons')
    op.drop_index('uq_messages_one_active_reply_per_lane', table_name='messages',
                  sqlite_where=WHERE, postgresql_where=WHERE)
    # Two replies left active in different lanes: keep the newest, as 0005 does.
    op.execute(sa.text(
        "UPDATE messages SET status = 'interrupted' WHERE " + WHERE.text + " AND id NOT IN "
        "(SELECT MAX(id) FROM messages WHERE " + WHERE.text + " GROUP BY conversation_id)"))
    op.create_index('uq_messages_one_active_reply', 'messages', ['conversation_id'],
                    unique=True, sqlite_where=WHERE, postgresql_where=WHERE)
    op.execute('ALTER TABLE conversations DROP COLUMN comparison_id')
    for column in reversed(MESSAGE_COLUMNS):
        op.execute(f'ALTER TABLE messages DROP COLUMN {column.name}')
