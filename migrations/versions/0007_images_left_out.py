"""messages.images_left_out: earlier images a reply's request did not carry

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 10:00:00

The request for a reply carries the newest images that fit MAX_UPSTREAM_IMAGE_BYTES; the
reply records how many earlier ones were left out, to say so under it.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases (SQLite 3.35+ drops a column in place): a batch
# operation would copy the messages table on SQLite and lose its search triggers.
def upgrade():
    op.add_column('messages', sa.Column('images_left_out', sa.Integer(), nullable=True))


def downgrade():
    op.execute('ALTER TABLE messages DROP COLUMN images_left_out')
