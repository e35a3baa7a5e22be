"""Reading WhatsApp Cloud API webhook payloads into plain records.

Pure functions: no database, no Flask. Anything not understood is reported as an `Unhandled` part so the
caller keeps it raw.

An update is read item by item: a message, contact or status that cannot be read is set aside in
`ParsedUpdate.rejected` (where it is in the body, and why) and its neighbours are read as usual; the raw
body stays in the journal, so nothing is lost and a part can be replayed after a fix. Every record that
comes out fits its columns: numbers are digits, text is valid Unicode, content is bounded.
"""
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
NUMBER_RE = re.compile(r"[0-9]{1,32}")
SURROGATES = re.compile("[\ud800-\udfff]")
# WhatsApp's longest message text; a longer one cannot come from WhatsApp and is cut (the raw update keeps it
# whole): a forged 3 MB body is stored once, in the journal, not a second time as a message's text or content.
TEXT_MAX = 65_536
CONTENT_MAX = 256 * 1024  # bytes of a message's content as JSON; past it only its size is kept
LOCAL_MEDIA_PREFIX = "local:"  # media id of a file the simulator stored under MEDIA_ROOT (services.media)
TWILIO_MEDIA_PREFIX = "twilio:"  # media id of a Twilio media URL (services.twilio_payload)
RESERVED_MEDIA_PREFIXES = (LOCAL_MEDIA_PREFIX, TWILIO_MEDIA_PREFIX)  # media ids that name no Graph media


def clean_text(value: str) -> str:
    """`value` with every lone surrogate (which no database can store as UTF-8) as U+FFFD."""
    return SURROGATES.sub("\ufffd", value) if SURROGATES.search(value) else value


def is_number(value) -> bool:
    """A WhatsApp number as Meta sends it (`wa_id`, `from`): ASCII digits only."""
    return isinstance(value, str) and NUMBER_RE.fullmatch(value) is not None


def content_json(content: dict) -> str | None:
    """A message's content as stored: JSON, valid Unicode, at most CONTENT_MAX bytes (past that, its size)."""
    if not content:
        return None
    text = clean_text(json.dumps(content, ensure_ascii=False))
    if len(text) > CONTENT_MAX // 4 and len(text.encode("utf-8")) > CONTENT_MAX:
        return json.dumps({"omitted_bytes": len(text.encode("utf-8")),
                           "omitted": "contenido demasiado grande: completo en el evento del webhook"})
    return text


@dataclass
class InboundMessage:
    wamid: str
    numero: str
    type: str
    timestamp: datetime | None
    text: str | None = None
    content: dict = field(default_factory=dict)
    media_id: str | None = None
    media_mime: str | None = None
    context_wamid: str | None = None
    profile_name: str | None = None
    error: dict | None = None
    direction: str = "in"

    def __post_init__(self):
        if isinstance(self.text, str) and len(self.text) > TEXT_MAX:
            self.text = self.text[:TEXT_MAX]
        _fit_columns(self, {"wamid": 191, "numero": 32, "type": 32, "media_id": 128, "media_mime": 128,
                            "context_wamid": 191, "profile_name": 255},
                     optional=("text", "media_id", "media_mime", "context_wamid", "profile_name"))
        if not isinstance(self.content, dict):
            self.content = {}


@dataclass
class StatusUpdate:
    wamid: str
    status: str
    timestamp: datetime | None
    recipient: str | None
    error: dict | None = None

    def __post_init__(self):
        _fit_columns(self, {"wamid": 191, "status": 16, "recipient": 32}, optional=("recipient",))


def _fit_columns(record, limits: dict[str, int], optional: tuple[str, ...]) -> None:
    """Cut each field of a parsed record to its column (models.message, models.chat), so no payload, from Meta or
    Twilio, makes its row fail to store; an optional field that is not text is dropped, and text is made valid
    Unicode. The raw update keeps the rest."""
    for name in optional:
        if not isinstance(getattr(record, name), str):
            setattr(record, name, None)
    for name in ("text", *limits):
        value = getattr(record, name, None)
        if isinstance(value, str):
            setattr(record, name, clean_text(value[:limits[name]] if name in limits else value))
    error = getattr(record, "error", None)
    if error:
        record.error = {key: clean_text(value) if isinstance(value, str) else value for key, value in error.items()}


@dataclass
class ParsedUpdate:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)  # {"where": path in the body, "reason": why}

    @property
    def kind(self) -> str:
        """What the update carries, each kind once in order of appearance ("text,status:read")."""
        return ",".join(dict.fromkeys(self.kinds))

    def reject(self, where: str, reason: str) -> None:
        self.rejected.append({"where": where, "reason": clean_text(reason[:300])})


class ItemError(ValueError):
    """One item of an update cannot be stored; the message says why."""


def parse_timestamp(value) -> datetime | None:
    """Meta's Unix seconds as naive UTC; None when it is not a time from 1970 to 9999."""
    try:
        seconds = int(value)
        return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None) if seconds >= 0 else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def first_error(errors) -> dict | None:
    """Meta's first error as {code, title, detail}."""
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None
    error = errors[0]
    code = error.get("code")
    details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) else None
    return {
        "code": error_code(code),
        "title": str(error.get("title") or error.get("message") or "")[:255] or None,
        "detail": _as_text(details or error.get("message")),
    }


def error_code(value) -> int | None:
    """An error code that fits the column (a 32-bit integer); anything else is no code."""
    return value if isinstance(value, int) and not isinstance(value, bool) and -2**31 <= value < 2**31 else None


def _as_text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _text_of(value) -> str | None:
    return value if isinstance(value, str) else None


def _object(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value, where: str, parsed: ParsedUpdate) -> list:
    """`value` when it is a list; absent is empty; anything else is set aside."""
    if value is None or isinstance(value, list):
        return value or []
    parsed.reject(where, f"se esperaba una lista, no {type(value).__name__}")
    return []


def _interactive(body: dict) -> tuple[str | None, dict]:
    kind = _text_of(body.get("type"))
    reply = _object(body.get(kind)) if kind else {}
    content = {"kind": kind, **reply}
    if kind in ("button_reply", "list_reply"):
        return _text_of(reply.get("title")), content
    if kind == "nfm_reply":
        response = reply.get("response_json")
        try:
            content["response"] = json.loads(response) if isinstance(response, str) and response else response or {}
        except (ValueError, RecursionError):
            content["response"] = response
        content.pop("response_json", None)
        return _text_of(reply.get("body")), content
    return None, content


def _describe(message: dict) -> tuple[str | None, dict, str | None, str | None]:
    """(text, content, media_id, media_mime) for one message object of any type."""
    kind = _text_of(message.get("type"))
    body = _object(message.get(kind)) if kind else {}
    if kind == "text":
        text, content = body.get("body"), {}
    elif kind in MEDIA_TYPES:
        content = {k: v for k, v in body.items() if k not in ("id", "mime_type", "caption")}
        return _text_of(body.get("caption")), content, _text_of(body.get("id")), _text_of(body.get("mime_type"))
    elif kind == "location":
        content = body
        text = body.get("name") or body.get("address") or f"{body.get('latitude')},{body.get('longitude')}"
    elif kind == "contacts":
        contacts = message.get("contacts") if isinstance(message.get("contacts"), list) else []
        content = {"contacts": contacts}
        names = (c["name"].get("formatted_name") for c in contacts if isinstance(c, dict) and isinstance(c.get("name"), dict))
        text = ", ".join(name for name in names if isinstance(name, str))
    elif kind == "interactive":
        text, content = _interactive(body)
    elif kind == "button":
        text, content = body.get("text"), body
    elif kind in ("reaction", "order"):
        text, content = body.get("emoji" if kind == "reaction" else "text") or None, body
    elif kind == "system":
        text, content = body.get("body"), body
    elif kind == "edit":
        inner = _object(body.get("message"))
        text = _describe(inner)[0] if inner.get("type") else None
        content = body
        if not isinstance(body.get("original_message_id"), str):
            content = {k: v for k, v in body.items() if k != "original_message_id"}
    else:
        text, content = None, body
    if isinstance(message.get("referral"), dict):
        content = {**content, "referral": message["referral"]}
    context = _object(message.get("context"))
    if context.get("forwarded"):
        content = {**content, "forwarded": True, "frequently_forwarded": bool(context.get("frequently_forwarded"))}
    return _text_of(text), content, None, None


def _message(message, profiles: dict, direction: str, allow_local: bool) -> InboundMessage:
    """One message object read, or ItemError saying why it cannot be stored."""
    if not isinstance(message, dict):
        raise ItemError(f"el mensaje no es un objeto ({type(message).__name__})")
    wamid = message.get("id")
    numero = message.get("to") if direction == "out" else message.get("from")
    if not isinstance(wamid, str) or not wamid.strip():
        raise ItemError("el mensaje no tiene id (wamid) de texto")
    if not is_number(numero):
        raise ItemError(f"número inválido ({'to' if direction == 'out' else 'from'}={str(numero)[:40]!r}): "
                        "solo dígitos")
    text, content, media_id, media_mime = _describe(message)
    if media_id and media_id.startswith(RESERVED_MEDIA_PREFIXES) and not (
            allow_local and media_id.startswith(LOCAL_MEDIA_PREFIX)):
        raise ItemError(f"id de medio reservado ({media_id[:40]!r}): solo el simulador usa archivos locales")
    kind = _text_of(message.get("type")) or "unknown"
    return InboundMessage(
        wamid=wamid, numero=numero, type=kind, timestamp=parse_timestamp(message.get("timestamp")),
        text=text, content=content, media_id=media_id, media_mime=media_mime,
        context_wamid=_object(message.get("context")).get("id"), profile_name=profiles.get(numero),
        error=first_error(message.get("errors")), direction=direction,
    )


def _status(status) -> StatusUpdate | None:
    """One status object read (None for call statuses, which are not about a message), or ItemError."""
    if not isinstance(status, dict):
        raise ItemError(f"el estado no es un objeto ({type(status).__name__})")
    wamid, value = status.get("id"), status.get("status")
    if status.get("type") == "call":
        return None
    if not isinstance(wamid, str) or not wamid.strip() or not isinstance(value, str) or not value.strip():
        raise ItemError("el estado necesita id y status de texto")
    recipient = status.get("recipient_id")
    return StatusUpdate(wamid=wamid, status=value.lower(), timestamp=parse_timestamp(status.get("timestamp")),
                        recipient=recipient if is_number(recipient) else None,
                        error=first_error(status.get("errors")))


def _profiles(contacts: list, where: str, parsed: ParsedUpdate) -> dict[str, str]:
    """wa_id -> profile name of an update's contacts; a contact that cannot be read is set aside."""
    profiles = {}
    for index, contact in enumerate(contacts):
        if not isinstance(contact, dict) or not is_number(contact.get("wa_id")):
            parsed.reject(f"{where}[{index}]", "contacto sin wa_id de dígitos")
            continue
        profile = contact.get("profile")
        if profile is not None and not isinstance(profile, dict):
            parsed.reject(f"{where}[{index}].profile", "el perfil no es un objeto")
            continue
        name = _object(profile).get("name")
        if isinstance(name, str):
            profiles[contact["wa_id"]] = name
    return profiles


def _read_items(items: list, where: str, parsed: ParsedUpdate, read) -> list:
    """Each item read by `read`; one that raises is set aside with the reason, its neighbours go on."""
    records = []
    for index, item in enumerate(items):
        try:
            record = read(item)
        except ItemError as error:
            parsed.reject(f"{where}[{index}]", str(error))
            continue
        except Exception as error:  # a shape nobody foresaw: set aside, never the neighbours' loss
            parsed.reject(f"{where}[{index}]", f"{type(error).__name__}: {error}")
            continue
        if record is not None:
            records.append(record)
    return records


def _read_change(value: dict, where: str, parsed: ParsedUpdate, allow_local: bool) -> None:
    profiles = _profiles(_list(value.get("contacts"), f"{where}.contacts", parsed), f"{where}.contacts", parsed)
    for key, direction in (("messages", "in"), ("message_echoes", "out")):
        items = _list(value.get(key), f"{where}.{key}", parsed)
        for message in _read_items(items, f"{where}.{key}", parsed,
                                   lambda item: _message(item, profiles, direction, allow_local)):
            parsed.messages.append(message)
            parsed.kinds.append(message.type if direction == "in" else "echo")
    statuses = _list(value.get("statuses"), f"{where}.statuses", parsed)
    for status in _read_items(statuses, f"{where}.statuses", parsed, _status):
        parsed.statuses.append(status)
        parsed.kinds.append(f"status:{status.status}")
    if value.get("errors"):
        parsed.kinds.append("errors")


def parse_update(payload: dict, allow_local: bool = False) -> ParsedUpdate:
    """Every message, echo and status in a webhook body; other changes only named in `kinds`; what cannot be
    read in `rejected`. `allow_local`: media ids may name local files (the simulator's updates only)."""
    parsed = ParsedUpdate()
    entries = payload.get("entry") if isinstance(payload, dict) and isinstance(payload.get("entry"), list) else []
    for entry_index, entry in enumerate(entries):
        changes = entry.get("changes") if isinstance(entry, dict) and isinstance(entry.get("changes"), list) else []
        for change_index, change in enumerate(changes):
            if not isinstance(change, dict):
                continue
            field_name = change.get("field") if isinstance(change.get("field"), str) and change["field"] else "unknown"
            value = _object(change.get("value"))
            if field_name not in ("messages", "smb_message_echoes"):
                parsed.kinds.append(field_name)
                continue
            _read_change(value, f"entry[{entry_index}].changes[{change_index}].value", parsed, allow_local)
    if not parsed.kinds:
        parsed.kinds.append("unknown")
    return parsed
