"""Per-customer ordering: a chat's inbound messages are handled one at a time, in arrival order.

A lease row per chat (in the database, so it holds across threads, processes and hosts)
says who is working on the chat; whoever holds it drains the chat's pending messages.
Different chats proceed in parallel.
"""
import logging
import time
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import joinedload

from extensions import db
from models import Chat, ChatLease, Message
from models.types import utcnow
from services import jobs, metrics, transcription
from services.events import emit
from services.outbox import deliver_due

log = logging.getLogger(__name__)
LEASE_SECONDS = 120
MAX_ATTEMPTS = 3


def acquire_lease(chat_id: int, holder: str) -> bool:
    now = utcnow()
    result = db.session.execute(
        update(ChatLease)
        .where(ChatLease.chat_id == chat_id, (ChatLease.holder.is_(None)) | (ChatLease.expires_at < now))
        .values(holder=holder, expires_at=now + timedelta(seconds=LEASE_SECONDS)))
    db.session.commit()
    return result.rowcount == 1


def release_lease(chat_id: int, holder: str) -> None:
    db.session.execute(update(ChatLease).where(ChatLease.chat_id == chat_id, ChatLease.holder == holder)
                       .values(holder=None, expires_at=None))
    db.session.commit()


def renew_lease(chat_id: int, holder: str, commit: bool = True) -> None:
    db.session.execute(update(ChatLease).where(ChatLease.chat_id == chat_id, ChatLease.holder == holder)
                       .values(expires_at=utcnow() + timedelta(seconds=LEASE_SECONDS)))
    if commit:
        db.session.commit()


def next_pending(chat_id: int) -> Message | None:
    # The chat comes in the same query (the handler needs it); its roles only if the handler reads them.
    return db.session.scalar(
        select(Message).where(Message.chat_id == chat_id, Message.direction == "in", Message.processed_at.is_(None))
        .options(joinedload(Message.chat).lazyload(Chat.roles))
        .order_by(Message.id).limit(1))


def work_left(chat_id: int) -> bool:
    """One query: an inbound message not handled yet, or an outbound one due now."""
    pending_in = exists().where(Message.chat_id == chat_id, Message.direction == "in", Message.processed_at.is_(None))
    due_out = exists().where(Message.chat_id == chat_id, Message.direction == "out", Message.status == "pending",
                             or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= utcnow()))
    return bool(db.session.scalar(select(pending_in | due_out)))


def ready_pending(chat_id: int) -> Message | None:
    """The next inbound message to handle now; None when there is none, or when it is a voice note whose
    transcription is not final yet (its transcription job starts the chat again when it lands).

    A note whose download failed, that has no file, or that waited longer than
    transcription.WAIT_LIMIT_SECONDS is marked "no transcrito: ..." here, so the chat goes on.
    """
    message = next_pending(chat_id)
    if message is None or not transcription.needs_transcription(message) \
            or transcription.is_final(message.transcription_status):
        return message
    if not message.media_id:
        reason = "la nota no trae archivo"
    elif message.media_status == "failed":
        reason = f"audio no descargado ({message.media_error or 'error desconocido'})"
    elif transcription.overdue(message):
        reason = "tiempo de espera agotado"
    else:
        return None
    message.transcription_status = (transcription.NOT_DONE + reason)[:255]
    emit("message", chat_id=message.chat_id, message_id=message.id)
    db.session.commit()
    return message


def work_ready(chat_id: int) -> bool:
    """work_left, except that a voice note still being transcribed is not work for now."""
    if not work_left(chat_id):
        return False
    due_out = exists().where(Message.chat_id == chat_id, Message.direction == "out", Message.status == "pending",
                             or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= utcnow()))
    return ready_pending(chat_id) is not None or bool(db.session.scalar(select(due_out)))


def end_read_keeping_loaded() -> None:
    """End the transaction that loaded the next message without expiring what it loaded.

    On SQLite every transaction holds the write lock from its first statement; a handler that
    takes its time (a model, an outside API) must not make other chats and webhooks wait for it.
    """
    session = db.session()
    if session.get_bind().dialect.name != "sqlite":
        return  # MariaDB/MySQL: a plain read takes no lock (READ COMMITTED), nothing to release early
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def mark_processed(message: Message) -> None:
    message.processed_at = utcnow()


def count_failure(message_id: int, error: Exception) -> bool:
    """Count a failed attempt at a message (the caller commits); after MAX_ATTEMPTS the message is set aside so
    the chat goes on. True when it was."""
    message = db.session.get(Message, message_id)
    message.attempts += 1
    gave_up = message.attempts >= MAX_ATTEMPTS
    if gave_up:
        message.processed_at = utcnow()
        message.error_title = f"no procesado: {type(error).__name__}"[:255]
        message.error_detail = str(error)[:2000]
        log.error("message %s (%s) set aside after %d failed attempts", message_id, message.wamid, message.attempts)
    return gave_up


def _give_up_after_failure(message_id: int, error: Exception) -> bool:
    gave_up = count_failure(message_id, error)
    db.session.commit()
    return gave_up


@jobs.task("chat.process", queue=jobs.MESSAGES, aliases=("services.pipeline.process_chat",))
def process_chat(chat_id: int) -> int:
    """Handle every pending inbound message of a chat in order, sending what is due after each one.

    Returns how many inbound messages this call handled. When a send must wait (Graph down,
    throttled), the chat is looked at again when it is due.
    """
    handle = current_app.extensions["inbound_handler"]
    holder = uuid.uuid4().hex
    handled, retry_in = 0, None
    while acquire_lease(chat_id, holder):
        try:
            round_handled = 0
            while (message := ready_pending(chat_id)) is not None:
                message_id = message.id
                end_read_keeping_loaded()
                started = time.perf_counter()
                try:
                    handle(message)
                    mark_processed(message)
                    renew_lease(chat_id, holder, commit=False)  # one commit for the reply, the mark and the lease
                    db.session.commit()
                    metrics.observe_message(time.perf_counter() - started, "ok")
                except Exception as error:
                    db.session.rollback()
                    metrics.observe_message(time.perf_counter() - started, "failed")
                    if not _give_up_after_failure(message_id, error):
                        raise
                handled += 1
                round_handled += 1
                retry_in = deliver_due(chat_id)  # replies queued earlier go first: the outbox sends in id order
            if not round_handled:  # woken for a send that had to wait (or an agent's reply)
                retry_in = deliver_due(chat_id)
        finally:
            release_lease(chat_id, holder)
        # Work stored while we were releasing would have found the lease taken: look once more.
        if not work_ready(chat_id):
            break
        db.session.rollback()
    if retry_in is not None:
        jobs.enqueue_in(retry_in, "chat.process", chat_id)
    return handled


def pending_chat_ids(limit: int = 1000) -> list[int]:
    """Chats with inbound messages not handled yet (after a crash or a lost job)."""
    return list(db.session.scalars(
        select(Message.chat_id).where(Message.direction == "in", Message.processed_at.is_(None))
        .group_by(Message.chat_id).limit(limit)))
