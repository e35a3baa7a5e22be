"""The bot's rules and the agents' quick replies, each with optional uploaded media."""
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.types import utcnow

RULE_TYPES = ("texto", "lista", "botones", "imagen", "documento", "audio", "video")


class Rule(db.Model):
    __tablename__ = "rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    step: Mapped[str] = mapped_column(String(120))
    input_text: Mapped[str] = mapped_column(Text)
    respuesta: Mapped[str] = mapped_column(Text, default="")
    tipo: Mapped[str] = mapped_column(String(16), default="texto")
    opciones: Mapped[str | None] = mapped_column(Text)
    siguiente_step: Mapped[str | None] = mapped_column(String(120))
    prioridad: Mapped[int] = mapped_column(Integer, default=1)
    avanzar: Mapped[bool] = mapped_column(Boolean, default=False)
    rol_keyword: Mapped[str | None] = mapped_column(String(80))
    handler: Mapped[str | None] = mapped_column(String(80))
    calculo: Mapped[str | None] = mapped_column(Text)
    media_url: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    media: Mapped[list["RuleMedia"]] = relationship(back_populates="rule", cascade="all, delete-orphan")

    __table_args__ = (Index("ix_rules_step_prioridad", "step", "prioridad"),)


class RuleMedia(db.Model):
    __tablename__ = "rule_media"
    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(512))
    mime: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    rule: Mapped[Rule] = relationship(back_populates="media")


class QuickReply(db.Model):
    """A button agents press to send a prepared answer."""
    __tablename__ = "quick_replies"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    media: Mapped[list["QuickReplyMedia"]] = relationship(back_populates="quick_reply", cascade="all, delete-orphan")


class QuickReplyMedia(db.Model):
    __tablename__ = "quick_reply_media"
    id: Mapped[int] = mapped_column(primary_key=True)
    quick_reply_id: Mapped[int] = mapped_column(ForeignKey("quick_replies.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(512))
    mime: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    quick_reply: Mapped[QuickReply] = relationship(back_populates="media")
