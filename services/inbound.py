"""Storing what an update brings: each message once, each status once (services.intake calls this)."""
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from extensions import db
from models import Chat, ChatLease, Message, MessageStatusEvent
from models.message import STATUS_ORDER
from models.types import utcnow
from services.events import emit
from services.meta_payload import InboundMessage, ParsedUpdate, StatusUpdate, content_json

log = logging.getLogger(__name__)
PREVIEW_LENGTH = 120
CHAT_ID_CACHE_SIZE = 50_000
CHATS = Chat.__table__
MESSAGES = Message.__table__
# Built once, values bound at execution: a statement built per row with .values() costs more CPU (construction
# and cache key of every literal) than its round trip.
INSERT_MESSAGE = insert(MESSAGES)
# A chat's new message: the columns to set are bound at execution; an inbound one also counts as unread.
TOUCH = update(CHATS).where(CHATS.c.id == bindparam("chat"), CHATS.c.numero == bindparam("numero_"))
TOUCH_INBOUND = TOUCH.values(unread_count=CHATS.c.unread_count + 1)


@dataclass
class ReceiveResult:
    """What storing one update did: new message ids, duplicates skipped, statuses kept, and the follow-up work."""
    stored: list[int] = field(default_factory=list)
    customer: list[int] = field(default_factory=list)  # the new ones the customer sent (not the business's echoes)
    duplicates: int = 0
    statuses: int = 0
    chats: set[int] = field(default_factory=set)
    media: list[int] = field(default_factory=list)
    texts: list[int] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)  # as ParsedUpdate.rejected: parts not stored, and why
    answered: list[int] = field(default_factory=list)  # the customer messages the bot answered in the drain
    to_send: set[int] = field(default_factory=set)  # chats with replies the drain queued (services.sender)


def _chat_ids() -> dict:
    """numero -> chat id, per app: only a hint, every use is checked against the row (see _touch_chat)."""
    return current_app.extensions.setdefault("inbound_chat_ids", {})


def _touch_chat(incoming: InboundMessage, values: dict) -> int:
    """Update (and so lock) the chat of a number for a new message; its id.

    Updating first takes the chat's row lock before the message insert, so concurrent webhooks of one
    customer queue up here instead of deadlocking between the insert's foreign-key check and this update.
    The WHERE on both id and numero makes a stale cached id match nothing instead of the wrong chat.
    """
    cache = _chat_ids()
    touch = TOUCH_INBOUND if incoming.direction == "in" else TOUCH
    chat_id = cache.get(incoming.numero)
    if chat_id is not None:
        done = db.session.execute(touch, {"chat": chat_id, "numero_": incoming.numero, **values})
        if done.rowcount == 1:
            return chat_id
        cache.pop(incoming.numero, None)
    chat_id = db.session.scalar(select(CHATS.c.id).where(CHATS.c.numero == incoming.numero))
    if chat_id is None:  # first contact; another webhook creating it at once makes this raise IntegrityError
        chat_id = db.session.execute(insert(CHATS).values(
            numero=incoming.numero, state="bot", unread_count=0, created_at=utcnow())).inserted_primary_key[0]
        db.session.execute(insert(ChatLease.__table__).values(chat_id=chat_id))
    db.session.execute(touch, {"chat": chat_id, "numero_": incoming.numero, **values})
    if len(cache) >= CHAT_ID_CACHE_SIZE:
        cache.clear()
    cache[incoming.numero] = chat_id
    return chat_id


def store_fast(parsed: ParsedUpdate) -> ReceiveResult:
    """Store an update's messages and statuses in few round trips: Core inserts, no savepoints, no ORM.

    A duplicate wamid or status raises IntegrityError from its insert (the unique key decides, under any
    concurrency); the caller then rolls everything back and stores with `store_careful`, which skips them.
    """
    result = ReceiveResult()
    now = utcnow()
    for incoming in parsed.messages:
        inbound = incoming.direction == "in"
        preview = (incoming.text or f"[{incoming.type}]").replace("\n", " ")[:PREVIEW_LENGTH]
        values = {"last_message_at": now, "last_message_preview": preview}
        if inbound:
            values["last_inbound_at"] = now
            if incoming.profile_name:
                values["profile_name"] = incoming.profile_name
        chat_id = _touch_chat(incoming, values)
        message_id = db.session.execute(INSERT_MESSAGE, _message_values(incoming, chat_id, now)).inserted_primary_key[0]
        emit("message", chat_id=chat_id, message_id=message_id)
        _stored(result, incoming, message_id, chat_id)
    for status in parsed.statuses:
        result.statuses += _record_status_fast(status)
    return result


def question_answered(chat_id: int, at: datetime) -> datetime | None:
    """For an agent's message written at `at`: the time of the customer message it is the first answer to, i.e.
    the chat's latest customer message when no agent message came after it (bot messages do not answer for
    an agent); None when it only adds to an earlier answer or nothing was asked. The dashboard's agent
    response time is `created_at - answers_at` over these messages."""
    latest = db.session.execute(
        select(Message.direction, Message.created_at)
        .where(Message.chat_id == chat_id, Message.created_at <= at,
               or_(Message.direction == "in", Message.sender == "agent"))
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1)).first()
    return latest.created_at if latest is not None and latest.direction == "in" else None


def _message_values(incoming: InboundMessage, chat_id: int, now) -> dict:
    error = incoming.error or {}
    inbound = incoming.direction == "in"
    return dict(
        chat_id=chat_id, wamid=incoming.wamid, direction=incoming.direction,
        sender="customer" if inbound else "agent", type=incoming.type, text=incoming.text,
        content=content_json(incoming.content),
        context_wamid=incoming.context_wamid, media_id=incoming.media_id, media_mime=incoming.media_mime,
        media_status="pending" if incoming.media_id and inbound else None,
        status="received" if inbound else "sent",
        error_code=error.get("code"), error_title=error.get("title"), error_detail=error.get("detail"),
        sent_at=incoming.timestamp, processed_at=None if inbound else now,
        # the business's own replies from the WhatsApp Business app (echoes) count as agents' answers
        answers_at=None if inbound else question_answered(chat_id, now),
        created_at=now, updated_at=now, attempts=0,
    )


def _record_status_fast(status: StatusUpdate) -> int:
    """As record_status, without a savepoint: a status already kept raises IntegrityError."""
    error = status.error or {}
    db.session.execute(insert(MessageStatusEvent.__table__).values(
        wamid=status.wamid, status=status.status, timestamp=status.timestamp, recipient=status.recipient,
        error_code=error.get("code"), error_title=error.get("title"), error_detail=error.get("detail"),
        created_at=utcnow()))
    found = db.session.execute(select(MESSAGES.c.id, MESSAGES.c.chat_id).where(MESSAGES.c.wamid == status.wamid)).first()
    if found is not None:
        advance_status(found.id, status.status, error)
        emit("message_update", chat_id=found.chat_id, message_id=found.id)
    return 1


def store_careful(parsed: ParsedUpdate) -> ReceiveResult:
    """As `store_fast`, one savepoint per row: what is already stored is counted as a duplicate and skipped, and a
    row the database refuses is set aside (`rejected`) while the others are stored."""
    result = ReceiveResult()
    for incoming in parsed.messages:
        owner = db.session.scalar(select(CHATS.c.numero).join(MESSAGES, MESSAGES.c.chat_id == CHATS.c.id)
                                  .where(MESSAGES.c.wamid == incoming.wamid))
        if owner is not None:  # stored already: no chat is created for it
            result.duplicates += 1
            if owner != incoming.numero:
                result.rejected.append({"where": f"wamid {incoming.wamid[:80]}", "reason": (
                    f"el wamid ya está guardado en el chat de otro número ({owner}); {incoming.numero} no lo repite")})
            continue
        try:
            message = _store_message(incoming)
        except OperationalError:
            raise
        except DBAPIError as error:  # a value the database refuses: this message is set aside, not its neighbours
            result.rejected.append({"where": f"wamid {incoming.wamid[:80]}",
                                    "reason": f"la base de datos no lo guardó: {error.orig}"[:300]})
            continue
        if message is None:
            result.duplicates += 1
            continue
        _stored(result, incoming, message.id, message.chat_id)
    for status in parsed.statuses:
        try:
            with db.session.begin_nested():
                result.statuses += record_status(status)
        except OperationalError:
            raise
        except DBAPIError as error:
            result.rejected.append({"where": f"estado {status.wamid[:80]}",
                                    "reason": f"la base de datos no lo guardó: {error.orig}"[:300]})
    return result


def find_or_create_chat(numero: str, profile_name: str | None = None) -> Chat:
    """The chat of a number, created (with its lease row) on first contact; safe under concurrency."""
    chat = db.session.scalar(select(Chat).filter_by(numero=numero))
    if chat is None:
        try:
            with db.session.begin_nested():
                chat = Chat(numero=numero, profile_name=profile_name, state="bot", unread_count=0)
                db.session.add(chat)
                db.session.flush()
                db.session.add(ChatLease(chat_id=chat.id))
        except IntegrityError:
            chat = db.session.scalar(select(Chat).filter_by(numero=numero))
    elif profile_name and chat.profile_name != profile_name:
        chat.profile_name = profile_name
    return chat


def preview_of(message: Message) -> str:
    text = message.text or message.transcription or f"[{message.type}]"
    return text.replace("\n", " ")[:PREVIEW_LENGTH]


def _store_message(incoming: InboundMessage) -> Message | None:
    """Insert one message; None when its wamid is already stored (and then no chat is left created for it)."""
    try:
        with db.session.begin_nested():
            chat = find_or_create_chat(incoming.numero, incoming.profile_name if incoming.direction == "in" else None)
            # Take the chat's row lock before the insert: concurrent webhooks of one customer then queue up here
            # instead of deadlocking between the foreign-key check of the insert and the update of the chat below.
            db.session.execute(select(Chat.id).where(Chat.id == chat.id).with_for_update())
            now = utcnow()
            message = Message(**_message_values(incoming, chat.id, now))
            db.session.add(message)
            db.session.flush()
    except IntegrityError:
        return None
    values = {"last_message_at": now, "last_message_preview": preview_of(message)}
    if incoming.direction == "in":
        values.update(last_inbound_at=now, unread_count=Chat.unread_count + 1)
    db.session.execute(update(Chat).where(Chat.id == chat.id).values(**values))
    emit("message", chat_id=chat.id, message_id=message.id)
    return message


def _stored(result: ReceiveResult, incoming: InboundMessage, message_id: int, chat_id: int) -> None:
    """Count a new message and what it needs next: a customer's goes to its chat's flow, its media to be
    downloaded, its text to be tagged with a sentiment; an edit's text is tagged on the message it edits."""
    result.stored.append(message_id)
    edited = _apply_edit(incoming) if incoming.type in ("edit", "revoke") else None
    if incoming.direction != "in":
        return
    result.customer.append(message_id)
    result.chats.add(chat_id)
    if incoming.media_id:
        result.media.append(message_id)
    if edited is not None:
        result.texts.append(edited)
    elif incoming.text and incoming.type != "edit":
        result.texts.append(message_id)


def _apply_edit(incoming: InboundMessage) -> int | None:
    """An edit replaces the original's text (its id is returned: its sentiment is taken again); a revoke marks
    it deleted. The edit itself stays stored."""
    original_id = incoming.content.get("original_message_id")
    original = db.session.scalar(select(Message).filter_by(wamid=original_id)) \
        if isinstance(original_id, str) and original_id else None
    if original is None:
        return None
    content = original.content_data
    if incoming.type == "edit":
        content["edited"] = True
        original.text = incoming.text
    else:
        content["revoked"] = True
    original.content = json.dumps(content, ensure_ascii=False)
    return original.id if incoming.type == "edit" and incoming.text else None


def record_status(status: StatusUpdate) -> int:
    """Keep a status once (1 if new, 0 if seen) and move its message forward if it is stored."""
    error = status.error or {}
    try:
        with db.session.begin_nested():
            db.session.add(MessageStatusEvent(
                wamid=status.wamid, status=status.status, timestamp=status.timestamp, recipient=status.recipient,
                error_code=error.get("code"), error_title=error.get("title"), error_detail=error.get("detail")))
            db.session.flush()
    except IntegrityError:
        return 0
    found = db.session.execute(select(Message.id, Message.chat_id).filter_by(wamid=status.wamid)).first()
    if found is not None:
        advance_status(found.id, status.status, error)
        emit("message_update", chat_id=found.chat_id, message_id=found.id)
    return 1


def advance_status(message_id: int, status: str, error: dict | None = None) -> None:
    """Move an outbound message forward (sent → delivered → read), never back; failed keeps the error."""
    error = error or {}
    if status == "failed":
        db.session.execute(update(Message).where(Message.id == message_id, Message.direction == "out", Message.status != "read").values(
            status="failed", error_code=error.get("code"), error_title=error.get("title"),
            error_detail=error.get("detail"), updated_at=utcnow()))
        return
    if status not in STATUS_ORDER:
        return
    lower = [name for name, rank in STATUS_ORDER.items() if rank < STATUS_ORDER[status]]
    db.session.execute(update(Message).where(Message.id == message_id, Message.direction == "out", Message.status.in_(lower))
                       .values(status=status, updated_at=utcnow()))


def apply_recorded_statuses(*messages: Message) -> None:
    """Statuses that arrived before these messages got their wamids (Meta does not promise order), read in one
    query."""
    by_wamid = {message.wamid: message for message in messages if message.wamid}
    if not by_wamid:
        return
    events = db.session.scalars(select(MessageStatusEvent).where(MessageStatusEvent.wamid.in_(by_wamid))
                                .order_by(MessageStatusEvent.id)).all()
    for event in events:
        advance_status(by_wamid[event.wamid].id, event.status, {"code": event.error_code, "title": event.error_title,
                                                                "detail": event.error_detail})
