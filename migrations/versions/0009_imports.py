"""imports: conversations.import_key, and import_jobs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 06:50:00

Importing the same export twice adds nothing new: each imported conversation keeps its
format and the export's id of it, unique per owner (NULL for every other conversation).
import_jobs holds each import's progress and report, read by whichever worker serves
its page.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases: a batch operation would copy the conversations
# table on SQLite and lose its search triggers.
def upgrade():
    op.create_table(
        'import_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=32), nullable=False),
        sa.Column('owner_id', sa.String(length=64), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('finished', sa.Boolean(), nullable=False),
        sa.Column('bytes_total', sa.BigInteger(), nullable=False),
        sa.Column('bytes_read', sa.BigInteger(), nullable=False),
        sa.Column('report', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs')),
        sa.UniqueConstraint('public_id', name=op.f('uq_import_jobs_public_id')),
    )
    op.create_index(op.f('ix_import_jobs_owner_id'), 'import_jobs', ['owner_id'])
    op.add_column('conversations', sa.Column('import_key', sa.String(length=200),
                                             nullable=True))
    op.create_index('uq_conversations_owner_import_key', 'conversations',
                    ['owner_id', 'import_key'], unique=True)


def downgrade():
    op.drop_index('uq_conversations_owner_import_key', table_name='conversations')
    op.execute('ALTER TABLE conversations DROP COLUMN import_key')
    op.drop_index(op.f('ix_import_jobs_owner_id'), table_name='import_jobs')
    op.drop_table('import_jobs')
