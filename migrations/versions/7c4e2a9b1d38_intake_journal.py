"""intake journal: webhook events processed after the 200, and the drainer's lease

Revision ID: 7c4e2a9b1d38
Revises: 3d9a6c1e7b40
Create Date: 2026-11-23 13:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c4e2a9b1d38'
down_revision = '3d9a6c1e7b40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('processed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('error', sa.String(length=255), nullable=True))
    # Every update stored before this revision was processed when it arrived.
    op.execute("UPDATE webhook_events SET processed_at = received_at")
    op.create_index('ix_webhook_events_pending', 'webhook_events', ['processed_at', 'id'], unique=False)
    op.create_table(
        'leases',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('holder', sa.String(length=96), nullable=True),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade():
    op.drop_table('leases')
    op.drop_index('ix_webhook_events_pending', table_name='webhook_events')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_column('error')
        batch_op.drop_column('processed_at')
