"""Reading WhatsApp Cloud API webhook payloads into plain records.

Pure functions: no database, no Flask. Anything not understood is reported as an
`Unhandled` part so the caller keeps it raw.
"""
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")


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
        _fit_columns(self, {"wamid": 191, "numero": 32, "type": 32, "media_id": 128, "media_mime": 128,
                            "context_wamid": 191, "profile_name": 255},
                     optional=("text", "media_id", "media_mime", "context_wamid", "profile_name"))


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
    Twilio, makes its row fail to store; an optional field that is not text is dropped. The raw update keeps
    the rest."""
    for name in optional:
        if not isinstance(getattr(record, name), str):
            setattr(record, name, None)
    for name, limit in limits.items():
        value = getattr(record, name)
        if isinstance(value, str):
            setattr(record, name, value[:limit])


@dataclass
class ParsedUpdate:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """What the update carries, each kind once in order of appearance ("text,status:read")."""
        return ",".join(dict.fromkeys(self.kinds))


def parse_timestamp(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), timezone.utc).replace(tzinfo=None)
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


def _interactive(body: dict) -> tuple[str | None, dict]:
    kind = body.get("type")
    reply = body.get(kind) if isinstance(body.get(kind), dict) else {}
    content = {"kind": kind, **reply}
    if kind in ("button_reply", "list_reply"):
        return reply.get("title"), content
    if kind == "nfm_reply":
        try:
            content["response"] = json.loads(reply.get("response_json") or "{}")
        except ValueError:
            content["response"] = reply.get("response_json")
        content.pop("response_json", None)
        return reply.get("body"), content
    return None, content


def _describe(message: dict) -> tuple[str | None, dict, str | None, str | None]:
    """(text, content, media_id, media_mime) for one message object of any type."""
    kind = message.get("type") if isinstance(message.get("type"), str) else None
    body = message.get(kind) if isinstance(message.get(kind), dict) else {}
    if kind == "text":
        text, content = body.get("body"), {}
    elif kind in MEDIA_TYPES:
        content = {k: v for k, v in body.items() if k not in ("id", "mime_type", "caption")}
        return body.get("caption"), content, body.get("id"), body.get("mime_type")
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
    elif kind == "reaction":
        text, content = body.get("emoji") or None, body
    elif kind == "order":
        text, content = body.get("text") or None, body
    elif kind == "system":
        text, content = body.get("body"), body
    elif kind == "edit":
        inner = body.get("message") if isinstance(body.get("message"), dict) else {}
        text, _, _, _ = _describe(inner) if inner.get("type") else (None, {}, None, None)
        content = body
    else:
        text, content = None, body
    if isinstance(message.get("referral"), dict):
        content = {**content, "referral": message["referral"]}
    if isinstance(message.get("context"), dict) and message["context"].get("forwarded"):
        content = {**content, "forwarded": True,
                   "frequently_forwarded": bool(message["context"].get("frequently_forwarded"))}
    return text, content, None, None


def _message(message: dict, profiles: dict, direction: str = "in") -> InboundMessage | None:
    wamid = message.get("id")
    numero = message.get("to") if direction == "out" else message.get("from")
    kind = message.get("type") or "unknown"
    if not isinstance(wamid, str) or not wamid or not isinstance(numero, str) or not numero:
        return None
    text, content, media_id, media_mime = _describe(message)
    context = message.get("context") if isinstance(message.get("context"), dict) else {}
    return InboundMessage(
        wamid=wamid, numero=numero, type=str(kind), timestamp=parse_timestamp(message.get("timestamp")),
        text=text, content=content if isinstance(content, dict) else {},
        media_id=media_id, media_mime=media_mime, context_wamid=context.get("id"),
        profile_name=profiles.get(numero), error=first_error(message.get("errors")), direction=direction,
    )


def _status(status: dict) -> StatusUpdate | None:
    wamid, value = status.get("id"), status.get("status")
    if not isinstance(wamid, str) or not isinstance(value, str) or status.get("type") == "call":
        return None
    return StatusUpdate(wamid=wamid, status=value.lower(), timestamp=parse_timestamp(status.get("timestamp")),
                        recipient=str(status.get("recipient_id") or "") or None, error=first_error(status.get("errors")))


def parse_update(payload: dict) -> ParsedUpdate:
    """Every message, echo and status in a webhook body; other changes only named in `kinds`."""
    parsed = ParsedUpdate()
    entries = payload.get("entry") if isinstance(payload.get("entry"), list) else []
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) and isinstance(entry.get("changes"), list) else []
        for change in changes:
            if not isinstance(change, dict):
                continue
            field_name = str(change.get("field") or "unknown")
            value = change.get("value") if isinstance(change.get("value"), dict) else {}
            if field_name not in ("messages", "smb_message_echoes"):
                parsed.kinds.append(field_name)
                continue
            profiles = {c.get("wa_id"): (c.get("profile") or {}).get("name")
                        for c in value.get("contacts") or [] if isinstance(c, dict)}
            for key, direction in (("messages", "in"), ("message_echoes", "out")):
                for item in value.get(key) or []:
                    message = _message(item, profiles, direction) if isinstance(item, dict) else None
                    if message:
                        parsed.messages.append(message)
                        parsed.kinds.append(message.type if direction == "in" else "echo")
            for item in value.get("statuses") or []:
                status = _status(item) if isinstance(item, dict) else None
                if status:
                    parsed.statuses.append(status)
                    parsed.kinds.append(f"status:{status.status}")
            if value.get("errors"):
                parsed.kinds.append("errors")
    if not parsed.kinds:
        parsed.kinds.append("unknown")
    return parsed
