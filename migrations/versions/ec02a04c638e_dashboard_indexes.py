"""dashboard indexes: the covering indexes /tablero's aggregates read

Revision ID: ec02a04c638e
Revises: 920d4257a248
Create Date: 2026-11-23 10:57:58.033322

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'ec02a04c638e'
down_revision = '920d4257a248'
branch_labels = None
depends_on = None


# One covering index for every per-range aggregate (chat_id last, so role and number filters stay inside it),
# and one per chat for response times and the number filter.
INDEXES = {
    "ix_messages_dashboard": ["created_at", "direction", "sender", "type", "sentiment_label", "status", "error_code",
                              "chat_id"],
    "ix_messages_chat_dir_created": ["chat_id", "direction", "created_at"],
}


def upgrade():
    for name, columns in INDEXES.items():
        op.create_index(name, "messages", columns)


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name="messages")
