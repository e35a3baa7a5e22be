"""The sender: the replies the drain queued, for many chats at once, in one job.

`send_chats(chat_ids)` takes the chats' leases together (one UPDATE), reads every due reply of those chats
(one SELECT), hands them to the transport (each chat's in id order, the chats side by side on a few threads
for the cloud transport, whose calls wait on the network), then writes every outcome and gives the leases
back in one transaction. A chat another job holds is left to it: that job looks for work again when it lets
go (services.pipeline.process_chat), and so does this one, for the chats it held.

A worker that dies after the Graph API accepted a message but before this job's commit leaves the message
pending: when the chat's lease expires (pipeline.LEASE_SECONDS) the message is sent again. A reply may so
reach a customer twice, never not at all (the outbox's promise: nothing silently dropped).
"""
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from flask import current_app
from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import joinedload

from extensions import db
from models import Chat, ChatLease, Message
from models.types import utcnow
from services import jobs
from services.inbound import apply_recorded_statuses
from services.outbox import Attempt, attempt_send, record_attempt
from services.pipeline import LEASE_SECONDS, end_read_keeping_loaded
from services.transports import SendError

log = logging.getLogger(__name__)
SEND_THREADS = 8  # chats sent to at the same time by one job (the cloud transport waits on Graph)
LEASES = ChatLease.__table__


@jobs.task("outbox.send", queue=jobs.MESSAGES)
def send_chats(chat_ids: list[int]) -> int:
    """Job: send the due replies of these chats (see the module); how many messages were handed over."""
    holder = f"sender:{uuid.uuid4().hex}"
    held = _claim(chat_ids, holder)
    if not held:
        return 0
    try:
        due, retry = _due(held)
        end_read_keeping_loaded()  # SQLite would hold the write lock while we send
        transport = current_app.extensions["transport"]
        attempts = _send(due, transport)
        retry.update(_record(attempts, transport.name))
        _release(held, holder)
        db.session.commit()
    except Exception:
        db.session.rollback()
        _release(held, holder)
        db.session.commit()
        raise
    for chat_id, delay in retry.items():
        jobs.enqueue_in(delay, "outbox.send", [chat_id])
    for chat_id in _with_work(set(held)):  # work stored while we held them is ours to pass on
        jobs.enqueue("chat.process", chat_id)
    return sum(len(messages) for messages in attempts.values())


def _claim(chat_ids: list[int], holder: str) -> list[int]:
    now = utcnow()
    db.session.execute(update(LEASES).where(LEASES.c.chat_id.in_(chat_ids),
                                            LEASES.c.holder.is_(None) | (LEASES.c.expires_at < now))
                       .values(holder=holder, expires_at=now + timedelta(seconds=LEASE_SECONDS)))
    held = list(db.session.scalars(select(LEASES.c.chat_id).where(LEASES.c.chat_id.in_(chat_ids),
                                                                  LEASES.c.holder == holder)))
    db.session.commit()
    return held


def _release(chat_ids: list[int], holder: str) -> None:
    db.session.execute(update(LEASES).where(LEASES.c.chat_id.in_(chat_ids), LEASES.c.holder == holder)
                       .values(holder=None, expires_at=None))


def _due(chat_ids: list[int]) -> tuple[dict[int, list[Message]], dict[int, float]]:
    """Each chat's pending replies that may go now, in id order, up to the first one still waiting for its
    retry (nothing goes before it); and those chats, with the seconds left to wait."""
    now = utcnow()
    rows = db.session.scalars(
        select(Message).where(Message.chat_id.in_(chat_ids), Message.direction == "out", Message.status == "pending")
        .options(joinedload(Message.chat).lazyload(Chat.roles)).order_by(Message.chat_id, Message.id)).all()
    due: dict[int, list[Message]] = {}
    waiting: dict[int, float] = {}
    for message in rows:
        if message.chat_id in waiting:
            continue
        if message.next_attempt_at and message.next_attempt_at > now:
            waiting[message.chat_id] = max((message.next_attempt_at - now).total_seconds(), 0.01)
            continue
        due.setdefault(message.chat_id, []).append(message)
    return due, waiting


def _send(due: dict[int, list[Message]], transport) -> dict[int, list]:
    """(message, attempt) pairs of each chat, in order; a chat stops at its first message that must wait."""
    media_root = current_app.config["MEDIA_ROOT"]
    work = {chat_id: [(m.chat.numero, m.type, m.text, m.content_data, m.context_wamid) for m in messages]
            for chat_id, messages in due.items()}

    def send_chat(chat_id: int) -> list:
        attempts = []
        for numero, kind, text, content, reply_to in work[chat_id]:
            try:
                attempt = attempt_send(transport, numero, kind, text, content, reply_to, media_root)
            except Exception as error:  # e.g. a media upload refused: this chat waits, the others' sends stand
                log.warning("send to chat %s failed: %r; tried again later", chat_id, error)
                attempt = Attempt(error=SendError(f"{type(error).__name__}: {error}", transient=True))
            attempts.append(attempt)
            if attempt.error is not None and getattr(attempt.error, "transient", False):
                break  # the rest of this chat waits behind it, in order
        return attempts

    if transport.name == "sandbox" or len(work) == 1:
        results = {chat_id: send_chat(chat_id) for chat_id in work}
    else:
        with ThreadPoolExecutor(min(SEND_THREADS, len(work)), thread_name_prefix="send") as pool:
            results = dict(zip(work, pool.map(send_chat, work)))
    return {chat_id: list(zip(due[chat_id], attempts)) for chat_id, attempts in results.items()}


def _record(attempts: dict[int, list], transport_name: str) -> dict[int, float]:
    """Write every outcome (and the statuses Meta reported before a wamid was known); the chats to try again
    later, with the seconds to wait."""
    delays = current_app.config["SEND_RETRY_DELAYS"]
    retry, sent = {}, []
    for chat_id, pairs in attempts.items():
        for message, attempt in pairs:
            delay = record_attempt(message, attempt, transport_name, delays)
            if delay is not None:
                retry[chat_id] = delay
            elif attempt.wamid and transport_name != "sandbox":
                sent.append(message)
    if sent:
        db.session.flush()
        apply_recorded_statuses(*sent)
    return retry


def _with_work(chat_ids: set[int]) -> list[int]:
    """Of these chats, those with an inbound message not handled yet or a reply due now."""
    if not chat_ids:
        return []
    now = utcnow()
    pending_in = exists().where(Message.chat_id == Chat.id, Message.direction == "in", Message.processed_at.is_(None))
    due_out = exists().where(Message.chat_id == Chat.id, Message.direction == "out", Message.status == "pending",
                             or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now))
    found = list(db.session.scalars(select(Chat.id).where(Chat.id.in_(chat_ids), pending_in | due_out)))
    db.session.commit()
    return found
