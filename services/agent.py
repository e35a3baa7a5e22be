"""What an agent does in a chat: reply, attach files, send quick replies, take over, hand back, close, name it,
attach roles, read it."""
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import select

from extensions import db
from models import Chat, Message, Role
from models.types import utcnow
from services import jobs
from services.events import emit
from services.outbox import queue_message
from services.outside import turn
from services.panel import window_open
from services.quick_replies import get_quick_reply, whatsapp_kind
from services.rules import media as stored_files
from services.rules.media import MediaError, Upload

log = logging.getLogger(__name__)
MAX_TEXT = 4096
ATTACHMENTS = "panel"  # agents' uploads and copies of quick-reply files, under MEDIA_ROOT


class ActionError(ValueError):
    """The action cannot be done as asked; the message tells the agent why."""


def _deliver(chat_id: int) -> None:
    jobs.enqueue("chat.process", chat_id)


def take_over(chat: Chat, agent_id: int) -> None:
    """The agent answers from now on; the bot stays quiet in this chat."""
    chat.state, chat.assigned_user_id, chat.taken_over_at = "human", agent_id, utcnow()
    chat.last_activity_at = utcnow()
    emit("chat", chat_id=chat.id)


def hand_back(chat: Chat) -> None:
    """The bot answers again, from the step the chat was in."""
    chat.state, chat.assigned_user_id, chat.taken_over_at = "bot", None, None
    emit("chat", chat_id=chat.id)


def close_chat(chat: Chat) -> None:
    """Closed: the next customer message starts again at the initial step."""
    chat.state, chat.assigned_user_id, chat.unread_count = "closed", None, 0
    emit("chat", chat_id=chat.id)


def set_alias(chat: Chat, alias: str | None) -> None:
    """Name the chat for the agents (None or blank clears it); ActionError unless it is text of up to 120."""
    if alias is not None and not isinstance(alias, str):
        raise ActionError("El campo «alias» debe ser texto.")
    alias = (alias or "").strip()
    if len(alias) > 120:
        raise ActionError("El alias admite como máximo 120 caracteres.")
    chat.alias = alias or None
    emit("chat", chat_id=chat.id)


def set_roles(chat: Chat, role_ids: list[int]) -> None:
    roles = db.session.scalars(select(Role).where(Role.id.in_(role_ids))).all() if role_ids else []
    if len(roles) != len(set(role_ids)):
        raise ActionError("Alguno de los roles elegidos no existe.")
    chat.roles = list(roles)
    emit("chat", chat_id=chat.id)


def mark_read(chat: Chat) -> None:
    """No unread messages left; tells WhatsApp the last customer message was read."""
    chat.unread_count = 0
    last = db.session.scalar(select(Message.wamid).where(Message.chat_id == chat.id, Message.direction == "in",
                                                         Message.wamid.is_not(None)).order_by(Message.id.desc()).limit(1))
    emit("chat", chat_id=chat.id)
    db.session.commit()
    if last:
        jobs.enqueue("agent.read_receipt", last)


@jobs.task("agent.read_receipt", queue=jobs.OUTSIDE, retries=1, aliases=("services.agent.send_read_receipt",))
def send_read_receipt(wamid: str) -> None:
    """Job: tell WhatsApp a customer message was read (the blue ticks)."""
    from flask import current_app
    with turn("graph"):
        current_app.extensions["transport"].mark_read(wamid)


def _check_window(chat: Chat, kind: str) -> None:
    if kind != "template" and not window_open(chat):
        raise ActionError("Pasaron más de 24 horas desde el último mensaje del cliente: solo se pueden enviar "
                          "plantillas aprobadas.")


def _queue(chat: Chat, agent_id: int, kind: str, text: str | None, content: dict | None) -> Message:
    if chat.state != "human" or chat.assigned_user_id != agent_id:
        take_over(chat, agent_id)
    message = queue_message(chat.id, kind, text, content, sender="agent", agent_id=agent_id, step=chat.step)
    chat.last_activity_at = utcnow()
    return message


def _send(chat: Chat, messages: list[Message], agent_id: int) -> None:
    db.session.commit()
    _deliver(chat.id)
    for message in messages:
        log.info("agent %s queued message %s (%s) in chat %s", agent_id, message.id, message.type, chat.id)


def reply(chat: Chat, agent_id: int, kind: str, text: str | None, content: dict | None = None) -> Message:
    """Queue an agent's message (taking the chat over) and have it delivered."""
    text = (text or "").strip() or None
    if kind == "text" and not text:
        raise ActionError("Escriba un mensaje.")
    if text and len(text) > MAX_TEXT:
        raise ActionError(f"El mensaje admite como máximo {MAX_TEXT} caracteres.")
    if kind in ("list", "buttons") and not (content or {}).get("options"):
        raise ActionError("Escriba al menos una opción.")
    _check_window(chat, kind)
    message = _queue(chat, agent_id, kind, text, content)
    _send(chat, [message], agent_id)
    return message


def _text_field(fields: Mapping, name: str) -> str | None:
    value = fields.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ActionError(f"El campo «{name}» debe ser texto.")


def _options_field(fields: Mapping) -> list[str]:
    value = fields.get("opciones")
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split("|")
    elif not isinstance(value, list) or not all(isinstance(option, str) for option in value):
        raise ActionError("El campo «opciones» debe ser texto separado por | o una lista de textos.")
    return [option.strip() for option in value if option.strip()]


def reply_with_fields(chat: Chat, agent_id: int, fields: Mapping) -> Message:
    """An agent's reply as the panel sends it: `tipo` (text, list, buttons or template), `texto`, `opciones`
    ("a|b" or a list of texts), `plantilla` and `idioma`. Each field's type is checked (ActionError naming
    the field), then the message is queued as by `reply`."""
    kind = _text_field(fields, "tipo") or "text"
    text = _text_field(fields, "texto")
    content = {}
    if kind in ("list", "buttons"):
        content["options"] = _options_field(fields)
    elif kind == "template":
        content = {"name": (_text_field(fields, "plantilla") or "").strip(),
                   "language": (_text_field(fields, "idioma") or "es").strip()}
        if not content["name"]:
            raise ActionError("Indique el nombre de la plantilla (campo «plantilla»).")
    elif kind != "text":
        raise ActionError(f"Tipo de mensaje no admitido: {kind[:40]}. Use text, list, buttons o template.")
    return reply(chat, agent_id, kind, text, content)


def _kind_of(filename: str) -> str:
    try:
        return stored_files.kind_of(filename)
    except MediaError as error:
        raise ActionError(f"{str(error)[:1].upper()}{str(error)[1:]}.") from None


def _in_folder(relative: str) -> str:
    """Move a just-stored file under MEDIA_ROOT/panel/ (a generated, safe name) and return its new path."""
    root = stored_files.media_root()
    (root / ATTACHMENTS).mkdir(parents=True, exist_ok=True)
    path = f"{ATTACHMENTS}/{Path(relative).name}"
    os.replace(root / relative, root / path)
    return path


def send_attachment(chat: Chat, agent_id: int, upload: Upload, caption: str | None = None) -> Message:
    """Check an agent's file (extension, content, size), store it under a safe name and send it as an image,
    document, audio or video. Raises ActionError with the reason; nothing is kept then."""
    caption = (caption or "").strip() or None
    if caption and len(caption) > 1024:
        raise ActionError("El texto que acompaña al archivo admite como máximo 1024 caracteres.")
    if not upload.filename:
        raise ActionError("Elija un archivo para adjuntar.")
    tipo = _kind_of(upload.filename)
    _check_window(chat, "document")
    try:
        record = stored_files.store_upload(tipo, upload)
    except MediaError as error:
        raise ActionError(f"No se puede enviar «{Path(upload.filename).name}»: {error}.") from None
    path = _in_folder(record.path)
    try:
        kind = whatsapp_kind(record.mime)
        content = {"media_path": path, "mime": record.mime, "filename": record.filename}
        messages = [_queue(chat, agent_id, kind, None if kind == "audio" else caption, content)]
        if kind == "audio" and caption:  # WhatsApp audio carries no caption: the text goes right after it
            messages.append(_queue(chat, agent_id, "text", caption, None))
        _send(chat, messages, agent_id)
    except BaseException:
        db.session.rollback()
        (stored_files.media_root() / path).unlink(missing_ok=True)
        raise
    return messages[0]


def send_quick_reply(chat: Chat, agent_id: int, quick_reply_id: int) -> list[Message]:
    """Send a quick reply: its text, then each of its files (copied, so the history survives edits to it)."""
    quick = get_quick_reply(quick_reply_id)
    if quick is None:
        raise ActionError("Esa respuesta rápida ya no existe; recargue la página.")
    _check_window(chat, "text")
    root, copies, messages = stored_files.media_root(), [], []
    try:
        if quick.text.strip():
            messages.append(_queue(chat, agent_id, "text", quick.text.strip(), None))
        for media in sorted(quick.media, key=lambda m: m.id):
            (root / ATTACHMENTS).mkdir(parents=True, exist_ok=True)
            copy = f"{ATTACHMENTS}/{uuid.uuid4().hex}{Path(media.path).suffix}"
            shutil.copyfile(root / media.path, root / copy)
            copies.append(copy)
            messages.append(_queue(chat, agent_id, whatsapp_kind(media.mime), None,
                                   {"media_path": copy, "mime": media.mime, "filename": media.filename}))
        _send(chat, messages, agent_id)
    except OSError as error:
        db.session.rollback()
        for copy in copies:
            (root / copy).unlink(missing_ok=True)
        raise ActionError(f"Un archivo de la respuesta rápida no está disponible ({error.strerror}); "
                          "pida a un administrador que lo suba de nuevo.") from None
    except BaseException:
        db.session.rollback()
        for copy in copies:
            (root / copy).unlink(missing_ok=True)
        raise
    return messages
