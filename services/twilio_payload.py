"""Reading Twilio's WhatsApp webhooks (urlencoded form posts) into the records Meta's updates give.

Pure functions: no database, no Flask. An inbound message becomes an `InboundMessage` shaped like the
one `services.meta_payload` makes for the same kind; a status callback becomes a `StatusUpdate`.
"""
import hmac
import math
from urllib.parse import parse_qs, urlsplit, urlunsplit

from services.meta_payload import (TWILIO_MEDIA_PREFIX, InboundMessage, ParsedUpdate, StatusUpdate, error_code,
                                   is_number)
from services.signatures import twilio_signature

MEDIA_PREFIX = TWILIO_MEDIA_PREFIX  # the media URL is kept whole in the content: it is longer than the column
STATUSES = {"undelivered": "failed"}
DEFAULT_PORTS = {"https": 443, "http": 80}


def read_form(raw: str) -> dict[str, list[str]]:
    """Every field of an urlencoded body, empty values included (Twilio signs them too)."""
    return parse_qs(raw, keep_blank_values=True)


def is_twilio_form(fields: dict[str, list[str]]) -> bool:
    return bool(_first(fields, "MessageSid", "SmsSid")) and bool(_first(fields, "From"))


def _first(fields: dict, *names: str) -> str:
    for name in names:
        values = fields.get(name)
        if values and values[0]:
            return values[0]
    return ""


def _port_variants(url: str) -> set[str]:
    """The URL as given, and with its default port added or removed (Twilio is not consistent)."""
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.netloc:
        return {url}
    if parts.port is None:
        return {url, urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))}
    if parts.port == default:
        return {url, urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]))}
    return {url}


def valid_signature(token: str, urls: list[str], fields: dict[str, list[str]], header: str | None) -> bool:
    """`X-Twilio-Signature` must be the signature of one of the URLs the request may have been made to
    (each with and without its default port); compared in constant time."""
    if not header:
        return False
    candidates = {variant for url in urls for variant in _port_variants(url)}
    matches = [hmac.compare_digest(twilio_signature(token, url, fields).encode(), header.strip().encode())
               for url in sorted(candidates)]
    return any(matches)


def _number(address: str) -> str:
    """`whatsapp:+31612345678` → `31612345678` (digits only, like Meta's wa_id)."""
    return "".join(ch for ch in address.split(":", 1)[-1] if "0" <= ch <= "9")


def _media_type(mime: str) -> str:
    base = mime.split(";")[0].strip().lower()
    if base == "image/webp":
        return "sticker"
    family = base.split("/", 1)[0]
    return family if family in ("image", "audio", "video") else "document"


def _float(value: str) -> float | str:
    """A coordinate as a number; kept as written when it is not a finite one ("nan" is no place)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return number if math.isfinite(number) else value


def _describe(get) -> tuple[str, str | None, dict, str | None, str | None]:
    """(type, text, content, media_id, media_mime) of an inbound message's fields."""
    body = get("Body") or None
    url, mime = get("MediaUrl0"), get("MediaContentType0")
    if url and _int(get("NumMedia")) > 0:
        content = {"media_url": url, "account_sid": get("AccountSid")}
        extra = [{"url": get(f"MediaUrl{i}"), "mime_type": get(f"MediaContentType{i}")}
                 for i in range(1, min(_int(get("NumMedia")), 10)) if get(f"MediaUrl{i}")]
        if extra:
            content["more_media"] = extra
        media_id = (MEDIA_PREFIX + url.rstrip("/").rsplit("/", 1)[-1])[:128]
        return _media_type(mime), body, content, media_id, mime or None
    if get("Latitude") and get("Longitude"):
        content = {"latitude": _float(get("Latitude")), "longitude": _float(get("Longitude"))}
        content.update({key: get(field) for key, field in (("name", "Label"), ("address", "Address")) if get(field)})
        text = content.get("name") or content.get("address") or f"{content['latitude']},{content['longitude']}"
        return "location", text, content, None, None
    if get("ButtonPayload") or get("ButtonText"):
        return "button", get("ButtonText") or None, {"text": get("ButtonText"), "payload": get("ButtonPayload")}, None, None
    if body:
        return "text", body, {}, None, None
    return "unsupported", None, {"message_type": get("MessageType") or None}, None, None


def _int(value: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _error(get) -> dict | None:
    code, title = get("ErrorCode"), get("ErrorMessage")
    if not code and not title:
        return None
    return {"code": error_code(_int(code)) or None, "title": title[:255] or None, "detail": None}


def parse_form(raw: str) -> ParsedUpdate:
    """The message or the status a Twilio webhook body carries (as stored in the intake journal)."""
    return parse_fields(read_form(raw))


def parse_fields(fields: dict[str, list[str]]) -> ParsedUpdate:
    """`parse_form` of a body already read with `read_form`."""
    def get(name: str) -> str:
        return _first(fields, name)

    parsed = ParsedUpdate()
    sid = _first(fields, "MessageSid", "SmsSid", "SmsMessageSid")
    status = get("MessageStatus").lower()
    if not sid or not get("From"):
        parsed.kinds.append("unknown")
        return parsed
    if status and status != "received" and get("SmsStatus").lower() != "received":
        error = _error(get)
        if status == "undelivered":
            error = {**(error or {"code": None, "title": None}), "detail": "undelivered"}
        update = StatusUpdate(wamid=sid, status=STATUSES.get(status, status), timestamp=None,
                              recipient=_number(get("To")) or None, error=error)
        parsed.statuses.append(update)
        parsed.kinds.append(f"status:{update.status}")
        return parsed
    kind, text, content, media_id, media_mime = _describe(get)
    numero = get("WaId") if is_number(get("WaId")) else _number(get("From"))
    if not numero:
        parsed.kinds.append("unknown")
        return parsed
    parsed.messages.append(InboundMessage(
        wamid=sid, numero=numero, type=kind, timestamp=None, text=text, content=content,
        media_id=media_id, media_mime=media_mime, context_wamid=get("OriginalRepliedMessageSid") or None,
        profile_name=get("ProfileName") or None, error=_error(get)))
    parsed.kinds.append(kind)
    return parsed
