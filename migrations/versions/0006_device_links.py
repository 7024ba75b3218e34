"""device links: one-time links that give a second browser the owner's chats

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 06:00:00

Only a hash of each link's token is stored.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('device_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('owner_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_device_links_token_hash'))
    )
    with op.batch_alter_table('device_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_links_owner_id'), ['owner_id'], unique=False)


def downgrade():
    with op.batch_alter_table('device_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_links_owner_id'))

    op.drop_table('device_links')
