"""The simulator: a customer typed in the browser, fed through the real webhook pipeline (DESIGN §5).

Every action builds the body Meta would POST to `/webhook` (same shape as the corpus under
`shared/corpus/meta/webhooks/`) and hands it to `intake.accept`, so the journal, storage, dedup,
ordering, media download, the bot and the outbox all run exactly as for a real customer.
Replies are read back from the database (the sandbox transport sends nothing).

Safety: the simulator never writes into a real customer's conversation (a chat with an inbound
message that did not come from here), and refuses to run unless the transport is `sandbox`, since
with `cloud` the bot's replies to a made-up number would really be sent by WhatsApp. Each simulated
number belongs to one user (`simulator_numbers`): only they and the admins read it, write to it,
report reads in it and open its files (see `check_owner`).

No Flask request objects here: the route validates the HTTP side and calls these functions.
"""
import base64
import hashlib
import json
import logging
import mimetypes
import os
import re
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Callable

from flask import current_app
from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import Chat, Message, SimulatorNumber, User
from models.types import utcnow
from services import intake
from services.access import MAX_ID, parse_id
from services.exports import find_chat, message_record
from services.meta_payload import LOCAL_MEDIA_PREFIX, parse_update
from services.whatsapp_payloads import PayloadError, build_message

log = logging.getLogger(__name__)

WAMID_PREFIX = "wamid.sim."
MEDIA_DIR = "simulator"
PROFILE_NAME = "Cliente simulado"
DEFAULT_NUMBER_BASE = 999_000_000
NUMBER_RE = re.compile(r"^[0-9]{6,15}$")
TEXT_MAX = 4096
REPLY_ID_MAX = 256
REPLY_TITLE_MAX = 100
REPLY_KINDS = ("list_reply", "button_reply")
AUDIO_MAX_BYTES = 16 * 1024 * 1024
CHUNK = 64 * 1024
PAGE = 200
CHANGES_LIMIT = 200
CHANGES_MARGIN = timedelta(seconds=10)  # an update committed a little after its updated_at is still seen
SAFE_LINK_RE = re.compile(r"^https?://", re.IGNORECASE)

# Extension → the audio type WhatsApp knows it as.
AUDIO_EXTENSIONS = {".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg",
                    ".m4a": "audio/mp4", ".mp4": "audio/mp4", ".aac": "audio/aac", ".amr": "audio/amr",
                    ".wav": "audio/wav"}
AUDIO_SUFFIX = {"audio/ogg": ".ogg", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/aac": ".aac",
                "audio/amr": ".amr", "audio/wav": ".wav"}
ACCEPTED_AUDIO = ", ".join(sorted({ext for ext in AUDIO_EXTENSIONS}))


class SimulatorError(ValueError):
    """A request the simulator refuses, with the HTTP status to answer and a message for the user."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


# --- numbers and guards ------------------------------------------------------------------------

def default_number(user_id: int) -> str:
    """Each user's own simulated customer: 999000000 + user id (999 is no country code: never a real number)."""
    return str(DEFAULT_NUMBER_BASE + int(user_id))


def clean_number(value) -> str:
    """The number as digits (spaces, dashes, dots and a leading + allowed), or SimulatorError."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise SimulatorError("El número debe ser texto con 6 a 15 dígitos.")
    raw = re.sub(r"[\s\-.()]", "", str(value))
    digits = raw[1:] if raw.startswith("+") else raw
    if not NUMBER_RE.match(digits):
        raise SimulatorError(f"Número inválido: {str(value)[:40]!r}. Use solo dígitos (entre 6 y 15), "
                             "por ejemplo 999000001.")
    return digits


def is_simulated(chat: Chat) -> bool:
    """True when every inbound message of the chat came from the simulator (and there is at least one)."""
    real = db.session.scalar(select(exists().where(and_(
        Message.chat_id == chat.id, Message.direction == "in",
        ~Message.wamid.startswith(WAMID_PREFIX, autoescape=True)))))
    if real:
        return False
    return bool(db.session.scalar(select(exists().where(and_(Message.chat_id == chat.id,
                                                             Message.direction == "in")))))


def default_owner(numero: str) -> int | None:
    """The user whose default number this is (999000000 + their id), if that user exists."""
    if not (numero.isascii() and numero.isdigit()):
        return None
    user_id = int(numero) - DEFAULT_NUMBER_BASE
    if not 0 < user_id <= MAX_ID or db.session.get(User, user_id) is None:
        return None
    return user_id


def owner_of(numero: str) -> int | None:
    """Who owns a simulated number: the user it is the default number of, else whoever claimed it, else None."""
    return default_owner(numero) or db.session.scalar(
        select(SimulatorNumber.user_id).where(SimulatorNumber.numero == numero))


def claim_number(numero: str, user_id: int) -> int:
    """Make `numero` the user's unless someone has it already; returns its owner's id.

    Race-safe: the insert is the check (the number is the primary key), so of two users sending
    to the same free number at once exactly one gets it and the other reads the winner back.
    """
    db.session.add(SimulatorNumber(numero=numero, user_id=user_id))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return db.session.scalar(select(SimulatorNumber.user_id).where(SimulatorNumber.numero == numero))
    log.info("simulator number %s claimed by user %s", numero, user_id)
    return user_id


def check_owner(numero: str, user_id: int, is_admin: bool, claim: bool = False) -> None:
    """Refuse (403) a user who may not use this simulated number; with `claim`, a free number becomes theirs.

    Admins use every number. A user uses their default number and the numbers they claimed by
    sending to them first. A number with a simulated conversation but no owner (simulated before
    numbers had owners, or whose owner was deleted) is for admins only: it may hold someone else's
    test conversation, so the first user to send to it must not inherit it; others pick a new number.
    Reading a free number without a conversation claims nothing (it shows an empty chat).
    """
    owner = owner_of(numero)
    if owner is None:
        if find_chat(numero) is not None:
            if is_admin:
                return
            raise SimulatorError(f"La conversación simulada del número {numero} no tiene dueño (es anterior a "
                                 "que cada número tuviera uno): solo un administrador puede verla. Use otro "
                                 "número (pulse «Nueva conversación»).", 403)
        if not claim:
            return
        owner = claim_number(numero, user_id)
    if owner != user_id and not is_admin:
        raise SimulatorError(f"El número {numero} es de otro usuario del simulador: solo él y los "
                             "administradores lo ven. Use otro número (pulse «Nueva conversación»).", 403)


def check_enabled() -> None:
    if current_app.config.get("WHATSAPP_TRANSPORT") != "sandbox":
        raise SimulatorError("El simulador solo funciona con WHATSAPP_TRANSPORT=sandbox: con el transporte "
                             "cloud las respuestas del bot se enviarían de verdad por WhatsApp.", 409)


def simulated_chat(numero: str) -> Chat | None:
    """The simulated chat of a number (None if the number has no chat yet); refuses real conversations."""
    chat = find_chat(numero)
    if chat is not None and not is_simulated(chat):
        raise SimulatorError(f"El número {numero} tiene una conversación real; el simulador no la usa. "
                             "Elija otro número (por ejemplo, pulse «Nueva conversación»).", 409)
    return chat


# --- Meta-format payloads (pure) ---------------------------------------------------------------

def new_wamid() -> str:
    return f"{WAMID_PREFIX}{uuid.uuid4().hex}"


def business_metadata(phone_number_id: str | None) -> dict:
    number = str(phone_number_id or "0")
    return {"display_phone_number": number, "phone_number_id": number}


def webhook_payload(numero: str, messages: list[dict] | None = None, statuses: list[dict] | None = None,
                    phone_number_id: str | None = None, profile_name: str = PROFILE_NAME) -> dict:
    """The body of Meta's `POST /webhook` carrying customer messages and/or statuses."""
    value = {"messaging_product": "whatsapp", "metadata": business_metadata(phone_number_id),
             "contacts": [{"profile": {"name": profile_name}, "wa_id": numero}]}
    if messages:
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return {"object": "whatsapp_business_account",
            "entry": [{"id": str(phone_number_id or "0"), "changes": [{"value": value, "field": "messages"}]}]}


def _envelope(numero: str, kind: str, wamid: str, timestamp: int, context: dict | None = None) -> dict:
    message = {"from": numero, "id": wamid, "timestamp": str(int(timestamp)), "type": kind}
    if context:
        message = {"context": context, **message}
    return message


def text_message(numero: str, text: str, wamid: str, timestamp: int) -> dict:
    message = _envelope(numero, "text", wamid, timestamp)
    message["text"] = {"body": text}
    return message


def reply_message(numero: str, kind: str, reply_id: str, title: str, wamid: str, timestamp: int,
                  description: str | None = None, context: dict | None = None) -> dict:
    """A tapped list row (`list_reply`) or reply button (`button_reply`)."""
    reply = {"id": reply_id, "title": title}
    if description and kind == "list_reply":
        reply["description"] = description
    message = _envelope(numero, "interactive", wamid, timestamp, context)
    message["interactive"] = {"type": kind, kind: reply}
    return message


def audio_message(numero: str, media_id: str, mime: str, sha256_b64: str, wamid: str, timestamp: int) -> dict:
    """An audio; OGG/Opus is what WhatsApp records as a voice note (`voice: true`)."""
    message = _envelope(numero, "audio", wamid, timestamp)
    voice = mime == "audio/ogg"
    message["audio"] = {"mime_type": "audio/ogg; codecs=opus" if voice else mime, "sha256": sha256_b64,
                        "id": media_id, "voice": voice}
    return message


def status_entry(numero: str, wamid: str, status: str, timestamp: int) -> dict:
    return {"id": wamid, "status": status, "timestamp": str(int(timestamp)), "recipient_id": numero}


# --- feeding the pipeline ----------------------------------------------------------------------

def _feed(numero: str, messages: list[dict] | None = None, statuses: list[dict] | None = None) -> None:
    payload = webhook_payload(numero, messages, statuses, current_app.config.get("PHONE_NUMBER_ID"))
    db.session.commit()  # ends the checks' read transaction: on SQLite it holds the lock the journal writer needs
    intake.accept("simulator", parse_update(payload, allow_local=True), json.dumps(payload, ensure_ascii=False))


def _prepare(numero, user_id: int, is_admin: bool) -> str:
    check_enabled()
    numero = clean_number(numero)
    simulated_chat(numero)
    check_owner(numero, user_id, is_admin, claim=True)
    return numero


def send_text(numero, text, *, user_id: int, is_admin: bool) -> str:
    """The customer types `text`; returns the message's wamid."""
    if not isinstance(text, str):
        raise SimulatorError("El texto del mensaje debe ser una cadena de caracteres.")
    if not text.strip():
        raise SimulatorError("Escriba un mensaje: el texto está vacío.")
    if len(text) > TEXT_MAX:
        raise SimulatorError(f"El mensaje es demasiado largo ({len(text)} caracteres; máximo {TEXT_MAX}).")
    numero = _prepare(numero, user_id, is_admin)
    wamid = new_wamid()
    _feed(numero, [text_message(numero, text, wamid, int(time.time()))])
    return wamid


def _reply_context(chat: Chat | None, message_id) -> dict | None:
    """Meta's `context` of a tap: the business message the list or buttons were on."""
    if message_id in (None, ""):
        return None
    message_id = parse_id(message_id)
    if message_id is None:
        raise SimulatorError("El mensaje de referencia (message_id) debe ser un número.")
    message = db.session.get(Message, message_id) if chat is not None else None
    if message is None or message.chat_id != chat.id or message.direction != "out" or not message.wamid:
        raise SimulatorError("El mensaje al que responde no existe en esta conversación o aún no se envió.")
    return {"from": str(current_app.config.get("PHONE_NUMBER_ID") or "0"), "id": message.wamid}


def send_reply(numero, kind, reply_id, title, description=None, message_id=None, *, user_id: int,
               is_admin: bool) -> str:
    """The customer taps a list row or a reply button; returns the message's wamid."""
    if kind not in REPLY_KINDS:
        raise SimulatorError("reply.kind debe ser list_reply o button_reply.")
    for name, value, limit in (("id", reply_id, REPLY_ID_MAX), ("title", title, REPLY_TITLE_MAX)):
        if not isinstance(value, str) or not value.strip():
            raise SimulatorError(f"Falta reply.{name} de la opción elegida.")
        if len(value) > limit:
            raise SimulatorError(f"reply.{name} es demasiado largo (máximo {limit} caracteres).")
    if description is not None and not isinstance(description, str):
        raise SimulatorError("reply.description debe ser texto.")
    check_enabled()
    numero = clean_number(numero)
    chat = simulated_chat(numero)
    check_owner(numero, user_id, is_admin, claim=True)
    context = _reply_context(chat, message_id)
    wamid = new_wamid()
    _feed(numero, [reply_message(numero, kind, reply_id, title, wamid, int(time.time()),
                                 (description or "")[:REPLY_TITLE_MAX] or None, context)])
    return wamid


# --- audio -------------------------------------------------------------------------------------

def sniff_audio(head: bytes) -> str | None:
    """The audio type the first bytes of a file show, or None."""
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        return "audio/mp4"
    if head.startswith(b"ADIF"):
        return "audio/aac"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # Frame sync: MPEG audio has a non-zero layer; AAC in ADTS has layer 00.
        return "audio/aac" if head[1] & 0x06 == 0 else "audio/mpeg"
    return None


def audio_limit() -> int:
    return min(AUDIO_MAX_BYTES, int(current_app.config.get("MEDIA_MAX_BYTES") or AUDIO_MAX_BYTES))


def store_audio(stream: BinaryIO, filename: str | None) -> tuple[str, str, int, str]:
    """Check and keep an uploaded audio under MEDIA_ROOT/simulator/.

    Returns (path relative to MEDIA_ROOT, mime, size, base64 sha256). Refuses an unknown
    extension, content that is not the audio the extension says, an empty or oversized file.
    """
    suffix = Path(filename or "").suffix.lower()
    declared = AUDIO_EXTENSIONS.get(suffix)
    if declared is None:
        raise SimulatorError(f"Tipo de archivo no admitido{f' ({suffix})' if suffix else ''}. "
                             f"Audios admitidos: {ACCEPTED_AUDIO}.")
    limit = audio_limit()
    directory = Path(current_app.config["MEDIA_ROOT"]) / MEDIA_DIR
    directory.mkdir(parents=True, exist_ok=True)
    digest, size, head = hashlib.sha256(), 0, b""
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".part-", delete=False)
    try:
        with handle:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise SimulatorError(f"El audio supera el máximo de {limit // (1024 * 1024)} MB.")
                if len(head) < 16:
                    head += chunk[:16 - len(head)]
                digest.update(chunk)
                handle.write(chunk)
        if size == 0:
            raise SimulatorError("El archivo de audio está vacío.")
        sniffed = sniff_audio(head)
        if sniffed != declared:
            raise SimulatorError(f"El contenido del archivo no es un audio {suffix} válido "
                                 f"(se esperaba {declared}).")
        final = directory / f"{uuid.uuid4().hex}{AUDIO_SUFFIX[declared]}"
        os.replace(handle.name, final)
    except BaseException:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
        raise
    return f"{MEDIA_DIR}/{final.name}", declared, size, base64.b64encode(digest.digest()).decode("ascii")


def send_audio(numero, stream: BinaryIO, filename: str | None, *, user_id: int, is_admin: bool) -> str:
    """The customer sends an audio file (a voice note if OGG); returns the message's wamid."""
    numero = _prepare(numero, user_id, is_admin)
    relative, mime, size, sha256 = store_audio(stream, filename)
    wamid = new_wamid()
    try:
        _feed(numero, [audio_message(numero, f"{LOCAL_MEDIA_PREFIX}{relative}", mime, sha256, wamid,
                                     int(time.time()))])
    except BaseException:
        (Path(current_app.config["MEDIA_ROOT"]) / relative).unlink(missing_ok=True)
        raise
    log.info("simulator audio numero=%s wamid=%s bytes=%s mime=%s", numero, wamid, size, mime)
    return wamid


# --- the customer's phone reports what it read ------------------------------------------------

def report_read(numero, message_ids, *, user_id: int, is_admin: bool) -> int:
    """The customer's phone shows these business messages: Meta's `read` statuses go through the webhook.

    Only sent or delivered outbound messages of this simulated chat count; returns how many.
    """
    check_enabled()
    numero = clean_number(numero)
    if not isinstance(message_ids, list) or not all(isinstance(i, int) and parse_id(i) is not None
                                                     for i in message_ids):
        raise SimulatorError("ids debe ser una lista de números de mensaje.")
    chat = simulated_chat(numero)
    check_owner(numero, user_id, is_admin)
    if chat is None or not message_ids:
        return 0
    wamids = db.session.scalars(select(Message.wamid).where(
        Message.chat_id == chat.id, Message.direction == "out", Message.id.in_(message_ids[:PAGE]),
        Message.status.in_(("sent", "delivered")), Message.wamid.is_not(None))).all()
    if wamids:
        now = int(time.time())
        _feed(numero, statuses=[status_entry(numero, wamid, "read", now) for wamid in wamids])
    return len(wamids)


# --- reading the conversation back -------------------------------------------------------------

def _interactive_view(message: Message, content: dict) -> dict:
    """Rows or buttons with exactly the ids the cloud transport would send (built the same way)."""
    kind = "list" if message.type == "list" else "buttons"
    try:
        payload = build_message("0", kind, message.text, content)
    except PayloadError:
        raw = content.get("options") or content.get("buttons") or []
        options = [{"id": str(o), "title": str(o)} if not isinstance(o, dict) else
                   {"id": str(o.get("id") or o.get("title") or ""), "title": str(o.get("title") or "")}
                   for o in raw]
        return {"options": [o for o in options if o["title"]], "list_button": content.get("button") or "Ver opciones"}
    interactive = payload["interactive"]
    view = {"header": (interactive.get("header") or {}).get("text"),
            "footer": (interactive.get("footer") or {}).get("text")}
    if kind == "list":
        view["list_button"] = interactive["action"]["button"]
        view["options"] = [{**row, "section": section.get("title")}
                           for section in interactive["action"]["sections"] for row in section["rows"]]
    else:
        view["options"] = [button["reply"] for button in interactive["action"]["buttons"]]
    return view


def _media_view(message: Message, content: dict, media_url: Callable[[int], str]) -> dict | None:
    if message.direction == "in":
        if not message.media_id:
            return None
        ready = message.media_status == "ok" and message.media_path
        return {"url": media_url(message.id) if ready else None, "mime": message.media_mime,
                "status": message.media_status, "error": message.media_error}
    if message.type not in ("image", "audio", "video", "document", "sticker"):
        return None
    link, path = content.get("link"), content.get("media_path")
    url = None
    if isinstance(link, str) and SAFE_LINK_RE.match(link):
        url = link
    elif isinstance(path, str) and path:
        url = media_url(message.id)
    mime = content.get("mime") or mimetypes.guess_type(str(path or link or ""))[0]
    return {"url": url, "mime": mime, "status": "ok" if url else "missing", "error": None,
            "filename": content.get("filename") or (Path(str(path or link)).name if (path or link) else None)}


def view_record(message: Message, media_url: Callable[[int], str]) -> dict:
    """What the simulator shows of a message: `message_record` plus options, media URL and error title."""
    record = message_record(message)
    content = record.get("content") or {}
    view = {key: record[key] for key in ("id", "wamid", "direction", "sender", "type", "text", "status",
                                         "created_at", "transcription", "context_wamid")}
    view["error"] = (record["error"] or {}).get("title") or (
        f"Error {record['error']['code']}" if record["error"] else None)
    view["options"], view["list_button"], view["header"], view["footer"] = [], None, None, None
    if message.direction == "out" and message.type in ("list", "buttons"):
        view.update(_interactive_view(message, content))
    if message.direction == "in" and message.type == "interactive":
        view["reply"] = {k: content.get(k) for k in ("kind", "id", "title", "description") if content.get(k)}
    view["media"] = _media_view(message, content, media_url)
    if message.type in ("image", "video", "document") and message.direction == "out" and not view["text"]:
        view["text"] = content.get("caption")
    return view


def _parse_since(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).rstrip("Z"))
    except ValueError:
        raise SimulatorError("El parámetro cambios debe ser una fecha ISO 8601.") from None


def messages_after(numero, after_id=0, changed_since=None, media_url: Callable[[int], str] = str, *,
                   user_id: int, is_admin: bool) -> dict:
    """The chat's messages after `after_id` (both directions, oldest first), and earlier ones changed since
    `changed_since` (ISO time from a previous answer: new ticks, downloaded media, transcriptions)."""
    numero = clean_number(numero)
    after_id = parse_id(after_id or 0)
    if after_id is None:
        raise SimulatorError("El parámetro despues debe ser un número de mensaje.")
    since = _parse_since(changed_since)
    now = utcnow().replace(microsecond=0)
    chat = simulated_chat(numero)
    check_owner(numero, user_id, is_admin)
    answer = {"numero": numero, "chat": None, "messages": [], "changed": [], "last_id": after_id,
              "now": now.isoformat() + "Z"}
    if chat is None:
        return answer
    messages = db.session.scalars(select(Message).where(Message.chat_id == chat.id, Message.id > after_id)
                                  .order_by(Message.id).limit(PAGE)).all()
    answer["messages"] = [view_record(m, media_url) for m in messages]
    if messages:
        answer["last_id"] = messages[-1].id
    if since is not None and after_id:
        changed = db.session.scalars(select(Message).where(
            Message.chat_id == chat.id, Message.id <= after_id, Message.updated_at >= since - CHANGES_MARGIN)
            .order_by(Message.id).limit(CHANGES_LIMIT)).all()
        answer["changed"] = [view_record(m, media_url) for m in changed]
    answer["chat"] = {"state": chat.state, "step": chat.step, "profile_name": chat.profile_name}
    return answer


# --- local media -------------------------------------------------------------------------------

def resolve_inside(root: str | Path, relative: str | None) -> Path | None:
    """`root/relative` as an existing file that really lies inside `root` (symlinks resolved), or None."""
    if not relative or not isinstance(relative, str) or "\x00" in relative:
        return None
    base = Path(root).resolve()
    try:
        candidate = (base / relative).resolve()
        candidate.relative_to(base)
    except (OSError, ValueError, RuntimeError):
        return None
    return candidate if candidate.is_file() else None


def media_file(message_id: int, *, user_id: int, is_admin: bool) -> tuple[Path, str | None] | None:
    """The local file a simulated chat's message shows (its downloaded media, or the bot's uploaded file).

    None when there is none; SimulatorError (403) when the chat's number is another user's.
    """
    message = db.session.get(Message, message_id)
    if message is None or not is_simulated(message.chat):
        return None
    check_owner(message.chat.numero, user_id, is_admin)
    if message.direction == "in":
        relative, mime = (message.media_path if message.media_status == "ok" else None), message.media_mime
    else:
        content = message.content_data
        relative, mime = content.get("media_path"), content.get("mime")
    path = resolve_inside(current_app.config["MEDIA_ROOT"], relative)
    if path is None:
        return None
    return path, (mime or mimetypes.guess_type(path.name)[0])
