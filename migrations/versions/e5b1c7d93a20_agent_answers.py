"""agent answers: each agent message that first answers a customer message keeps that message's time

Revision ID: e5b1c7d93a20
Revises: a4f8d2c6e913
Create Date: 2026-11-23 16:10:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e5b1c7d93a20'
down_revision = 'a4f8d2c6e913'
branch_labels = None
depends_on = None

INDEX = ["sender", "created_at", "answers_at", "chat_id"]


def upgrade():
    op.add_column("messages", sa.Column("answers_at", sa.DateTime(), nullable=True))
    op.create_index("ix_messages_agent_answers", "messages", INDEX)
    # The messages already stored: in each chat's timeline of customer and agent messages, an agent message
    # right after a customer message first answers it (what services.inbound.question_answered does on write).
    m = sa.table("messages", sa.column("id"), sa.column("chat_id"), sa.column("direction"), sa.column("sender"),
                 sa.column("created_at"), sa.column("answers_at"))
    window = {"partition_by": m.c.chat_id, "order_by": (m.c.created_at, m.c.id)}
    timeline = (sa.select(m.c.id, m.c.sender, sa.func.lag(m.c.direction).over(**window).label("prev"),
                          sa.func.lag(m.c.created_at).over(**window).label("t0"))
                .where(sa.or_(m.c.direction == "in", m.c.sender == "agent")).subquery("timeline"))
    answers = (sa.select(timeline.c.id, timeline.c.t0)
               .where(timeline.c.sender == "agent", timeline.c.prev == "in").subquery("answers"))
    op.execute(sa.update(m).where(m.c.id == answers.c.id).values(answers_at=answers.c.t0))


def downgrade():
    op.drop_index("ix_messages_agent_answers", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("answers_at")
