"""Messages in and out, their delivery statuses, and the raw webhook updates they came in."""
import json
from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.chat import Chat
from models.types import BigId, LongText, PayloadText, utcnow

STATUS_ORDER = {"pending": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4, "played": 5}


class WebhookEvent(db.Model):
    """One POST as received: the intake journal. Kept raw so nothing Meta or Twilio sends is ever lost;
    `processed_at` is set in the transaction that stores its messages and statuses (services.intake),
    with `error` when the update, or a part of it (`rejected`), could not be stored."""
    __tablename__ = "webhook_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(LongText)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(String(255))
    # JSON list of the parts set aside ({"where", "reason"}): the rest of the update was stored.
    rejected: Mapped[str | None] = mapped_column(PayloadText)

    __table_args__ = (Index("ix_webhook_events_pending", "processed_at", "id"),
                      Index("ix_webhook_events_error", "error", "id"))


class Lease(db.Model):
    """Work that runs in one place at a time across every process and host (the intake drainer):
    who holds it and until when. A holder that dies loses it when it expires."""
    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(96))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)


class Counter(db.Model):
    """A named number every process can read cheaply: `rules` is bumped by every change to the bot's rules,
    so each process knows when its cached copy of them is stale (services.rules.version)."""
    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigId, default=0)


class Message(db.Model):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    wamid: Mapped[str | None] = mapped_column(String(191), unique=True)
    direction: Mapped[str] = mapped_column(String(3))
    sender: Mapped[str] = mapped_column(String(10))
    type: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(PayloadText)
    content: Mapped[str | None] = mapped_column(PayloadText)
    context_wamid: Mapped[str | None] = mapped_column(String(191))
    media_id: Mapped[str | None] = mapped_column(String(128))
    media_mime: Mapped[str | None] = mapped_column(String(128))
    media_path: Mapped[str | None] = mapped_column(String(512))
    media_size: Mapped[int | None] = mapped_column(Integer)
    media_status: Mapped[str | None] = mapped_column(String(16))
    media_error: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_title: Mapped[str | None] = mapped_column(String(255))
    error_detail: Mapped[str | None] = mapped_column(PayloadText)
    step: Mapped[str | None] = mapped_column(String(120))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("rules.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    transcription: Mapped[str | None] = mapped_column(Text)
    transcription_status: Mapped[str | None] = mapped_column(String(255))
    sentiment_label: Mapped[str | None] = mapped_column(String(16))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    # On an agent's message that is the first answer to the customer's latest message: that message's time
    # (services.inbound.question_answered), so the dashboard's agent response time is a range scan.
    answers_at: Mapped[datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    chat: Mapped[Chat] = relationship(lazy="joined")

    __table_args__ = (
        Index("ix_messages_chat_id_id", "chat_id", "id"),
        Index("ix_messages_chat_pending", "chat_id", "direction", "processed_at"),
        Index("ix_messages_chat_outbox", "chat_id", "direction", "status"),
        Index("ix_messages_created_at", "created_at"),
        Index("ix_messages_direction_created_at", "direction", "created_at"),
        Index("ix_messages_status_next_attempt", "status", "next_attempt_at"),
        # the dashboard's aggregates (migration ec02a04c638e)
        Index("ix_messages_dashboard", "created_at", "direction", "sender", "type", "sentiment_label", "status",
              "error_code", "chat_id"),
        Index("ix_messages_chat_dir_created", "chat_id", "direction", "created_at"),
        # an agent's charts, the delivery funnel and transcriptions (migration 3d9a6c1e7b40)
        Index("ix_messages_chat_created_dims", "chat_id", "created_at", "direction", "sender", "type",
              "sentiment_label", "status", "error_code"),
        Index("ix_messages_out_funnel", "direction", "created_at", "status", "error_code", "chat_id"),
        Index("ix_messages_out_failed", "direction", "status", "created_at", "error_code", "chat_id",
              "error_title"),  # its error titles: migration a4f8d2c6e913
        Index("ix_messages_type_dir_created", "type", "direction", "created_at", "chat_id"),
        Index("ix_messages_agent_answers", "sender", "created_at", "answers_at", "chat_id"),  # migration e5b1c7d93a20
        Index("ix_messages_sentiment_day", "sentiment_label", "created_at"),  # migration d4a7c2e9f613
    )

    @property
    def content_data(self) -> dict:
        # a NaN stored before webhooks were read strictly comes back as None: never emitted as a bare NaN
        return json.loads(self.content, parse_constant=lambda _: None) if self.content else {}

    def __repr__(self):
        return f"<Message {self.id} {self.direction} {self.type}>"


class MessageStatusEvent(db.Model):
    """Each status Meta reported for a wamid, once; kept even when it arrives before its message."""
    __tablename__ = "message_status_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    wamid: Mapped[str] = mapped_column(String(191))
    status: Mapped[str] = mapped_column(String(16))
    timestamp: Mapped[datetime | None] = mapped_column(DateTime)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_title: Mapped[str | None] = mapped_column(String(255))
    error_detail: Mapped[str | None] = mapped_column(PayloadText)
    recipient: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("wamid", "status", name="uq_status_wamid_status"),)
