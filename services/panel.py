"""What the agents' panel reads: the chat list and a conversation's history, a page at a time."""
import mimetypes
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app, url_for
from sqlalchemy import and_, func, or_, select

from extensions import db
from models import Chat, Message, Role, User, chat_roles
from models.types import utcnow
from services.access import can_see_chat, role_ids, visible_chats
from services.exports import message_record
from services.simulator import resolve_inside, view_record

CHAT_PAGE = 50
MESSAGE_PAGE = 50
SERVICE_WINDOW = timedelta(hours=24)
STATES = ("bot", "human", "closed")


@dataclass(frozen=True)
class ChatFilter:
    query: str = ""
    role_id: int | None = None
    state: str | None = None
    before: tuple[datetime, int] | None = None  # keyset cursor: (last_message_at, id) of the last chat shown


def roles_to_filter(user: User) -> list[Role]:
    """The roles the list can be filtered by: the user's own, or every role for an admin."""
    if user.is_admin:
        return list(db.session.scalars(select(Role).order_by(Role.name)))
    return sorted(user.roles, key=lambda role: role.name)


def window_open(chat: Chat, now: datetime | None = None) -> bool:
    """Whether free-form messages may be sent: the customer wrote in the last 24 hours."""
    return bool(chat.last_inbound_at) and (now or utcnow()) - chat.last_inbound_at < SERVICE_WINDOW


def chat_summary(chat: Chat, now: datetime | None = None) -> dict:
    return {
        "id": chat.id, "numero": chat.numero, "alias": chat.alias, "profile_name": chat.profile_name,
        "name": chat.alias or chat.profile_name or chat.numero, "state": chat.state, "step": chat.step,
        "unread": chat.unread_count, "preview": chat.last_message_preview,
        "last_message_at": chat.last_message_at.isoformat(timespec="microseconds") + "Z"
        if chat.last_message_at else None,
        "window_open": window_open(chat, now), "roles": [{"id": r.id, "name": r.name} for r in chat.roles],
        "sentiment": chat.last_sentiment, "assigned_user_id": chat.assigned_user_id,
    }


def _matching_text(query: str, roles: list[int] | None):
    """Chats with a message containing `query` (the newest 200 matches); only among the chats of `roles` when
    given (an agent's, or the role filter), so matches in chats the list would drop do not use up the 200."""
    statement = select(Message.chat_id).where(Message.text.contains(query, autoescape=True))
    if roles is not None:
        statement = statement.where(_in_roles(roles, Message.chat_id))
    return statement.order_by(Message.id.desc()).limit(200)


def _in_roles(ids: list[int], chat_id=Chat.id):
    """Chats (or the messages of chats, by `chat_id`) attached to one of the roles `ids`.

    A correlated count rather than EXISTS: MariaDB turns EXISTS into a semi-join that reads every chat of
    the role and sorts them all (0.2-0.4 s with 100,000 chats), while this is checked chat by chat, on the
    primary key of chat_roles, as the chats are read newest first from ix_chats_last_message_at, and stops
    at the page's last one (bench/panel_bench.py).
    """
    return select(func.count()).select_from(chat_roles).where(
        chat_roles.c.chat_id == chat_id, chat_roles.c.role_id.in_(ids)).scalar_subquery() > 0


def _visible(user: User):
    """services.access.visible_chats's rule (admins every chat, agents their roles' chats), planned for a page."""
    if user.is_admin:
        return visible_chats(user)
    allowed = role_ids(user)
    return select(Chat).where(_in_roles(allowed)) if allowed else visible_chats(user)


def list_chats(user: User, chat_filter: ChatFilter = ChatFilter(), limit: int = CHAT_PAGE) -> list[Chat]:
    """A page of the chats `user` may see, most recent first, filtered by text, role and state."""
    statement = _visible(user).order_by(Chat.last_message_at.desc(), Chat.id.desc()).limit(limit)
    if chat_filter.query:
        query = chat_filter.query
        roles = [chat_filter.role_id] if chat_filter.role_id else None if user.is_admin else role_ids(user)
        text_chats = list(db.session.scalars(_matching_text(query, roles)))
        statement = statement.where(or_(*(column.contains(query, autoescape=True)
                                          for column in (Chat.numero, Chat.alias, Chat.profile_name)),
                                        Chat.id.in_(text_chats or [-1])))
    if chat_filter.role_id:
        statement = statement.where(_in_roles([chat_filter.role_id]))
    if chat_filter.state in STATES:
        statement = statement.where(Chat.state == chat_filter.state)
    if chat_filter.before:
        at, chat_id = chat_filter.before
        statement = statement.where(or_(Chat.last_message_at < at, and_(Chat.last_message_at == at, Chat.id < chat_id)))
    return list(db.session.scalars(statement))


def message_view(message: Message) -> dict:
    """A message as the panel shows it: the simulator's view (options, media URL, error reason) plus what only
    agents see (raw content for locations, contacts, reactions and templates; transcription state; sentiment)."""
    view = view_record(message, lambda message_id: url_for("chat.media", message_id=message_id))
    record = message_record(message)
    view.update(content=record["content"], sentiment=record["sentiment"], error_code=message.error_code,
                transcription_status=message.transcription_status, agent_id=message.agent_id)
    return view


def media_file(user: User, message_id: int) -> tuple[Path, str | None, str] | None:
    """(path, mime, download name) of the file a message shows, when `user` may see it and it lies inside
    MEDIA_ROOT; None otherwise (a stored path can never lead outside it)."""
    message = db.session.get(Message, message_id)
    if message is None or not can_see_chat(user, message.chat_id):
        return None
    content = message.content_data
    if message.direction == "in":
        relative, mime = message.media_path, message.media_mime
    else:
        relative, mime = content.get("media_path"), content.get("mime")
    path = resolve_inside(current_app.config["MEDIA_ROOT"], relative)
    if path is None:
        return None
    return path, mime or mimetypes.guess_type(path.name)[0], content.get("filename") or path.name


def message_in_chat(chat_id: int, message_id: int) -> dict | None:
    message = db.session.get(Message, message_id)
    return message_view(message) if message is not None and message.chat_id == chat_id else None


def messages_page(chat_id: int, before_id: int | None = None, limit: int = MESSAGE_PAGE) -> list[dict]:
    """The `limit` messages before `before_id` (the newest when None), oldest first."""
    statement = select(Message).where(Message.chat_id == chat_id).order_by(Message.id.desc()).limit(limit)
    if before_id:
        statement = statement.where(Message.id < before_id)
    return [message_view(m) for m in reversed(db.session.scalars(statement).all())]


def messages_after(chat_id: int, after_id: int, limit: int = 200) -> list[dict]:
    statement = select(Message).where(Message.chat_id == chat_id, Message.id > after_id).order_by(Message.id)
    return [message_view(m) for m in db.session.scalars(statement.limit(limit))]
