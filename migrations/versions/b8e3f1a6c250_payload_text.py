"""payload text: a message's text, content and error detail hold what a webhook can bring (MEDIUMTEXT on MySQL)

MySQL's TEXT stops at 64 KB, and a webhook body may be 3 MB: a longer field made its message fail to store.
SQLite's TEXT has no such limit, so there is nothing to change there.

Revision ID: b8e3f1a6c250
Revises: e5b1c7d93a20
Create Date: 2026-11-23 19:40:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b8e3f1a6c250'
down_revision = 'e5b1c7d93a20'
branch_labels = None
depends_on = None

COLUMNS = {"messages": ("text", "content", "error_detail"), "message_status_events": ("error_detail",)}


def _modify(column_type: str) -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for table, columns in COLUMNS.items():  # one ALTER per table: the table is rebuilt once
        op.execute(f"ALTER TABLE {table} " + ", ".join(f"MODIFY {name} {column_type} NULL" for name in columns))


def upgrade():
    _modify("MEDIUMTEXT")


def downgrade():
    _modify("TEXT")
