"""dashboard role indexes: per-chat, outbound and voice-note ranges for /tablero

Revision ID: 3d9a6c1e7b40
Revises: 5b7e1f0c2d91
Create Date: 2026-11-23 12:25:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '3d9a6c1e7b40'
down_revision = '5b7e1f0c2d91'
branch_labels = None
depends_on = None


INDEXES = {
    # An agent's charts start from chat_roles: per chat, the range of days with every counted column
    # (read from the index alone instead of every message the chat ever had).
    "ix_messages_chat_created_dims": ["chat_id", "created_at", "direction", "sender", "type", "sentiment_label",
                                      "status", "error_code"],
    # The delivery funnel and its top errors: outbound messages of the range only.
    "ix_messages_out_funnel": ["direction", "created_at", "status", "error_code", "chat_id"],
    # Its top errors: the failed outbound messages of the range only (instead of every failed message ever).
    "ix_messages_out_failed": ["direction", "status", "created_at", "error_code", "chat_id"],
    # Transcriptions: only the voice notes of the range.
    "ix_messages_type_dir_created": ["type", "direction", "created_at", "chat_id"],
}


def upgrade():
    for name, columns in INDEXES.items():
        op.create_index(name, "messages", columns)


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name="messages")
