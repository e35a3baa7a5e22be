"""sentiment day index: the dashboard's sentiment chart over all chats reads one range of it per label

Revision ID: d4a7c2e9f613
Revises: b8e3f1a6c250
Create Date: 2026-11-23 19:50:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd4a7c2e9f613'
down_revision = 'b8e3f1a6c250'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_messages_sentiment_day", "messages", ["sentiment_label", "created_at"])


def downgrade():
    op.drop_index("ix_messages_sentiment_day", table_name="messages")
