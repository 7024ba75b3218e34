"""Context and costs: which messages are still sent, and what each reply cost and who wrote it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 06:30:00

conversations.first_sent_id: the oldest message (after the system prompt) still replayed
upstream; older ones were left out to fit the model's context window (NULL: all are sent).
messages.replayed_from_id: that marker as it was when a reply's request was made.
messages.answered_model: the model the server says wrote the reply (it may substitute one).
messages.input_price / output_price / price_currency: the price per token used for the
reply, kept with it so later price changes do not rewrite what it cost.
messages.thinking_seconds: from the first reasoning token to the first content token.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

MESSAGE_COLUMNS = (
    sa.Column('replayed_from_id', sa.Integer(), nullable=True),
    sa.Column('answered_model', sa.String(length=200), nullable=True),
    sa.Column('input_price', sa.Float(), nullable=True),
    sa.Column('output_price', sa.Float(), nullable=True),
    sa.Column('price_currency', sa.String(length=8), nullable=True),
    sa.Column('thinking_seconds', sa.Float(), nullable=True),
)


# Plain ALTER TABLE on both databases, as in 0007 (a batch operation would copy the
# messages table on SQLite and lose its search triggers).
def upgrade():
    op.add_column('conversations', sa.Column('first_sent_id', sa.Integer(), nullable=True))
    for column in MESSAGE_COLUMNS:
        op.add_column('messages', column)


def downgrade():
    for column in reversed(MESSAGE_COLUMNS):
        op.execute(f'ALTER TABLE messages DROP COLUMN {column.name}')
    op.execute('ALTER TABLE conversations DROP COLUMN first_sent_id')
