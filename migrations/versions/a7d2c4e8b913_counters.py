"""counters: named numbers shared by every process; `rules` is bumped by each change to the bot's rules

Revision ID: a7d2c4e8b913
Revises: f3c8a1d5e742
Create Date: 2026-12-07 17:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a7d2c4e8b913'
down_revision = 'f3c8a1d5e742'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade():
    op.drop_table("counters")
