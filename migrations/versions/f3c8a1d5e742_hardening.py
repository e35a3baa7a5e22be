"""hardening: a session version per user, the items a webhook event set aside, simulator numbers' owners

- users.session_version: bumped by logout and password changes; a session cookie carries the version it was
  issued with and stops working once it differs (sessions are revoked server-side).
- webhook_events.rejected: JSON list of the parts of an update that could not be stored (where, reason); the
  raw update stays in `payload`, so a part can be replayed after a fix. `error` (indexed now) sums it up, so
  the events to look at are found without reading the journal.
- simulator_numbers: which user a simulated customer number belongs to (each user sees only their own).

Revision ID: f3c8a1d5e742
Revises: d4a7c2e9f613
Create Date: 2026-12-07 16:40:00.000000

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql


# revision identifiers, used by Alembic.
revision = 'f3c8a1d5e742'
down_revision = 'd4a7c2e9f613'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("rejected", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"),
                                   nullable=True))
    op.create_index("ix_webhook_events_error", "webhook_events", ["error", "id"])
    op.create_table(
        "simulator_numbers",
        sa.Column("numero", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("numero"),
    )
    op.create_index("ix_simulator_numbers_user_id", "simulator_numbers", ["user_id"])


def downgrade():
    op.drop_table("simulator_numbers")
    op.drop_index("ix_webhook_events_error", table_name="webhook_events")
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("rejected")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
