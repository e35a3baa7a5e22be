"""A chat is one customer's conversation with the business, with the bot's state."""
from datetime import datetime

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.types import utcnow
from models.user import Role

chat_roles = Table(
    "chat_roles", db.metadata,
    Column("chat_id", Integer, ForeignKey("chats.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True),
)

CHAT_STATES = ("bot", "human", "closed")


class Chat(db.Model):
    __tablename__ = "chats"
    id: Mapped[int] = mapped_column(primary_key=True)
    numero: Mapped[str] = mapped_column(String(32), unique=True)
    alias: Mapped[str | None] = mapped_column(String(120))
    profile_name: Mapped[str | None] = mapped_column(String(255))
    step: Mapped[str | None] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(16), default="bot")
    context: Mapped[str | None] = mapped_column(Text)
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_inbound_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_message_preview: Mapped[str | None] = mapped_column(String(255))
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    last_sentiment: Mapped[str | None] = mapped_column(String(16))
    assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    taken_over_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    roles: Mapped[list[Role]] = relationship(secondary=chat_roles, lazy="selectin")

    __table_args__ = (
        Index("ix_chats_last_message_at", "last_message_at"),
        Index("ix_chats_state_last_message_at", "state", "last_message_at"),
    )

    def __repr__(self):
        return f"<Chat {self.numero}>"


class ChatLease(db.Model):
    """Who is processing a chat's inbound messages right now (one holder across all workers)."""
    __tablename__ = "chat_leases"
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)


class SimulatorNumber(db.Model):
    """A simulated customer number and the user who owns it: only they (and admins) see its chat in /simulador."""
    __tablename__ = "simulator_numbers"
    numero: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
