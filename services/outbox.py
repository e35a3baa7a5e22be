"""The outbox: every outbound message is written first, then sent in order, retried, or failed with a reason."""
import json
import logging
import mimetypes
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.util import identity_key

from extensions import db
from models import Chat, Message
from models.types import utcnow
from services import metrics
from services.events import emit
from services.inbound import apply_recorded_statuses, preview_of, question_answered
from services.media import LOCAL_PREFIX

log = logging.getLogger(__name__)
DELIVER_BATCH = 10


def queue_message(chat_id: int, kind: str, text: str | None = None, content: dict | None = None,
                  sender: str = "bot", rule_id: int | None = None, step: str | None = None,
                  agent_id: int | None = None, reply_to: str | None = None) -> Message:
    """Write an outbound message as pending; `deliver_due` sends it. The caller commits."""
    now = utcnow()
    message = Message(chat_id=chat_id, direction="out", sender=sender, type=kind, text=text,
                      content=json.dumps(content, ensure_ascii=False) if content else None, context_wamid=reply_to,
                      status="pending", attempts=0, rule_id=rule_id, step=step, agent_id=agent_id,
                      answers_at=question_answered(chat_id, now) if sender == "agent" else None,
                      processed_at=now, created_at=now, updated_at=now)
    chat = db.session.identity_map.get(identity_key(Chat, chat_id))
    if chat is not None:  # loaded (the bot's chat): one UPDATE with its other changes at the flush below
        chat.last_message_at, chat.last_message_preview = now, preview_of(message)
    db.session.add(message)
    db.session.flush()
    if chat is None:
        db.session.execute(update(Chat).where(Chat.id == chat_id)
                           .values(last_message_at=now, last_message_preview=preview_of(message)))
    emit("message", chat_id=chat_id, message_id=message.id)
    return message


def pending_out(chat_id: int, limit: int = 1):
    # The chat (for its number) in the same query; its roles are not needed to send.
    return db.session.scalars(select(Message).where(Message.chat_id == chat_id, Message.direction == "out",
                                                    Message.status == "pending")
                              .options(joinedload(Message.chat).lazyload(Chat.roles)).order_by(Message.id)
                              .limit(limit)).all()


def first_pending(chat_id: int) -> Message | None:
    found = pending_out(chat_id)
    return found[0] if found else None


def media_content(content: dict, transport, media_root: str) -> dict:
    """Content for the transport: an uploaded file becomes a Graph media id (the caller keeps it for reuse)."""
    path = content.get("media_path")
    if path and not content.get("media_id") and transport.name == "sandbox":
        return {**content, "media_id": LOCAL_PREFIX + path}  # the simulator shows the file from MEDIA_ROOT
    if path and not content.get("media_id"):
        full = Path(media_root) / path
        mime = content.get("mime") or mimetypes.guess_type(full.name)[0] or "application/octet-stream"
        graph = transport.graph
        with open(full, "rb") as handle:
            answer = graph.request("POST", f"{graph.phone_number_id}/media", data={"messaging_product": "whatsapp",
                                   "type": mime}, files={"file": (full.name, handle, mime)})
        return {**content, "media_id": answer["id"]}
    return content


def _fail(message: Message, code, title: str, detail: str | None = None) -> None:
    message.status, message.error_code, message.error_title = "failed", code, (title or "")[:255]
    message.error_detail = detail
    log.warning("send failed message=%s chat=%s code=%s title=%s", message.id, message.chat_id, code, title)
    metrics.observe_send("failed", code)


@dataclass
class Attempt:
    """How one send went: `wamid` when sent; `error` (SendError, PayloadError or OSError) when not; `content`
    when an uploaded file got its Graph media id on the way (kept on the message for the next send)."""
    wamid: str | None = None
    error: Exception | None = None
    content: dict | None = None


def attempt_send(transport, numero: str, kind: str, text: str | None, content: dict, reply_to: str | None,
                 media_root: str) -> Attempt:
    """Hand one message to the transport. Touches no database, so that senders may run it in threads."""
    from services.transports import SendError
    from services.whatsapp_payloads import PayloadError
    try:
        sendable = media_content(content, transport, media_root)
        wamid = transport.send(numero, kind, text, sendable, reply_to=reply_to)
    except (PayloadError, SendError, OSError) as error:
        return Attempt(error=error)
    return Attempt(wamid=wamid, content=sendable if sendable.get("media_id") != content.get("media_id")
                   and transport.name != "sandbox" else None)


def record_attempt(message: Message, attempt: Attempt, transport_name: str, delays) -> float | None:
    """Write how a send went on its message (the caller commits): sent, deferred (the seconds to wait before
    the next try, returned) or failed with the reason."""
    from services.transports import SendError, retry_delay
    from services.whatsapp_payloads import PayloadError
    now = utcnow()
    if attempt.content is not None:
        message.content = json.dumps(attempt.content, ensure_ascii=False)
    error = attempt.error
    if isinstance(error, PayloadError):
        _fail(message, None, f"mensaje inválido: {error}")
    elif isinstance(error, SendError):
        message.attempts += 1
        if error.transient and message.attempts <= len(delays):
            delay = delays[message.attempts - 1]
            if error.retry_after or error.code == 131056:  # Meta asked for a wait: honour it
                delay = max(delay, retry_delay(error, message.attempts - 1))
            message.next_attempt_at = now + timedelta(seconds=delay)
            metrics.observe_send("deferred", error.code)
            log.info("send of message %s deferred %.1fs (attempt %d): %s", message.id, delay, message.attempts,
                     error)
            return delay
        _fail(message, error.code, error.title or str(error), getattr(error, "details", None))
    elif isinstance(error, OSError):
        _fail(message, None, f"no se pudo leer el archivo: {error.strerror or error}")
    else:
        message.wamid, message.status, message.sent_at = attempt.wamid, "sent", now
        message.attempts += 1
        message.next_attempt_at = None
        if transport_name == "sandbox":
            # Simulated delivery; a wamid made up here cannot have statuses recorded before it.
            message.status = "delivered"
        log.info("sent message=%s chat=%s wamid=%s type=%s", message.id, message.chat_id, attempt.wamid,
                 message.type)
        metrics.observe_send("sent")
    emit("message_update", chat_id=message.chat_id, message_id=message.id)
    return None


def deliver_due(chat_id: int) -> float | None:
    """Send the chat's pending messages in order; the seconds to wait when one must be retried later."""
    transport = current_app.extensions["transport"]
    delays = current_app.config["SEND_RETRY_DELAYS"]
    # Read the chat's queue a batch at a time (a reply is often a few messages); anything queued meanwhile by
    # another job is picked up by it or by process_chat's look after releasing the lease.
    while batch := pending_out(chat_id, DELIVER_BATCH):
        for message in batch:
            delay = _deliver_one(message, transport, delays)
            if delay is not None:
                return delay
        if len(batch) < DELIVER_BATCH:
            break
    return None


def _deliver_one(message: Message, transport, delays) -> float | None:
    """Send one pending message and commit its outcome; the seconds to wait when it must be retried later."""
    if message.status != "pending":  # changed since the batch was read (expired on commit, reloaded)
        return None
    now = utcnow()
    if message.next_attempt_at and message.next_attempt_at > now:
        return max((message.next_attempt_at - now).total_seconds(), 0.01)
    attempt = attempt_send(transport, message.chat.numero, message.type, message.text, message.content_data,
                           message.context_wamid, current_app.config["MEDIA_ROOT"])
    delay = record_attempt(message, attempt, transport.name, delays)
    if attempt.wamid and transport.name != "sandbox":
        db.session.flush()
        apply_recorded_statuses(message)
    db.session.commit()
    return delay
