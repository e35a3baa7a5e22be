"""Role-based access to chats: admins see every chat, agents only chats attached to one of their roles."""
from sqlalchemy import exists, select

from extensions import db
from models import Chat, User, chat_roles

MAX_ID = 2 ** 63 - 1  # the largest id a BIGINT (MariaDB) or INTEGER (SQLite) row can have


def parse_id(value) -> int | None:
    """An id from outside (URL, query string, JSON, form) as an int from 0 to MAX_ID, or None.

    Accepts an int (not a bool) or a string of ASCII digits; anything else, or a number too big for
    the database (which SQLite refuses with an overflow), is None.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_ID)):
            return None
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= MAX_ID:
        return None
    return value


def role_ids(user: User) -> list[int]:
    return [role.id for role in user.roles]


def visible_chats(user: User, statement=None):
    """Restrict a `select(Chat ...)` statement to the chats `user` may see."""
    statement = select(Chat) if statement is None else statement
    if user.is_admin:
        return statement
    allowed = role_ids(user)
    if not allowed:
        return statement.where(False)
    return statement.where(exists().where(chat_roles.c.chat_id == Chat.id, chat_roles.c.role_id.in_(allowed)))


def can_see_chat(user: User, chat_id: int) -> bool:
    if user.is_admin:
        return db.session.get(Chat, chat_id) is not None
    allowed = role_ids(user)
    return bool(allowed) and db.session.scalar(
        select(chat_roles.c.chat_id).where(chat_roles.c.chat_id == chat_id, chat_roles.c.role_id.in_(allowed))
        .limit(1)) is not None


def chat_for(user: User, chat_id: int) -> Chat | None:
    """The chat if `user` may see it, else None (callers answer 404 so ids are not probed)."""
    return db.session.get(Chat, chat_id) if can_see_chat(user, chat_id) else None


def chat_by_number_for(user: User, numero: str) -> Chat | None:
    chat = db.session.scalar(select(Chat).filter_by(numero=numero))
    return chat if chat is not None and can_see_chat(user, chat.id) else None
