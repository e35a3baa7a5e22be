"""pipeline indexes: the outbox's next pending message of a chat

Revision ID: 5b7e1f0c2d91
Revises: ec02a04c638e
Create Date: 2026-11-23 11:05:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5b7e1f0c2d91'
down_revision = 'ec02a04c638e'
branch_labels = None
depends_on = None


INDEXES = {
    # services.outbox.first_pending: WHERE chat_id=? AND direction='out' AND status='pending' ORDER BY id
    # (InnoDB and SQLite end every index with the primary key, so the ORDER BY reads it in order).
    "ix_messages_chat_outbox": ["chat_id", "direction", "status"],
}


def upgrade():
    for name, columns in INDEXES.items():
        op.create_index(name, "messages", columns)


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name="messages")
