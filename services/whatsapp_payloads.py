"""JSON bodies of `POST /{version}/{phone-number-id}/messages` (WhatsApp Cloud API).

Pure functions: no Flask, no database. `build_message` is the one entry point; it validates
WhatsApp's limits before anything is sent, so a bad list or button set fails here with a clear
Spanish message (`PayloadError`) instead of as a Graph error 100 after the fact.
"""
import re

# Limits from Meta's Cloud API reference (interactive list / reply buttons / text / media pages).
TEXT_MAX = 4096
CAPTION_MAX = 1024
LIST_BODY_MAX = 4096
BUTTONS_BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_MAX = 60
LIST_BUTTON_MAX = 20
LIST_ROWS_MAX = 10
LIST_SECTIONS_MAX = 10
SECTION_TITLE_MAX = 24
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
DEFAULT_LIST_BUTTON = "Ver opciones"
DEFAULT_TEMPLATE_LANGUAGE = "es"

MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")
CAPTION_KINDS = ("image", "video", "document")
HEADER_MEDIA_KINDS = ("image", "video", "document")
KINDS = ("text", *MEDIA_KINDS, "list", "buttons", "template", "reaction", "location", "contacts", "read",
         "typing")

URL_RE = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)


class PayloadError(ValueError):
    """The message cannot be sent as asked (WhatsApp limit or missing field)."""


def build_message(to: str, kind: str, text: str | None, content: dict | None, reply_to: str | None = None) -> dict:
    """The exact Graph API body for one outbound message.

    `text` is the message text: the body of text/list/buttons messages, the caption of media.
    `content` holds everything else (see each builder). `reply_to` (a wamid) quotes that message.
    """
    content = dict(content or {})
    if kind == "read":
        return _status_read(content, text)
    if kind == "typing":
        payload = _status_read(content, text)
        payload["typing_indicator"] = {"type": "text"}
        return payload
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise PayloadError(f"tipo de mensaje desconocido: {kind!r} (válidos: {', '.join(KINDS)})")
    to = str(to or "").strip()
    if not to:
        raise PayloadError("falta el destinatario (to)")
    message_type, body = builder(text, content)
    payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": message_type,
               message_type: body}
    if reply_to and kind != "reaction":
        payload["context"] = {"message_id": reply_to}
    return payload


# --- helpers ---------------------------------------------------------------------------------

def _clean(value) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _check_length(value: str, limit: int, what: str) -> str:
    if len(value) > limit:
        raise PayloadError(f"{what} admite como máximo {limit} caracteres (tiene {len(value)}): {value!r}")
    return value


def _media_object(kind: str, source: dict, what: str) -> dict:
    link, media_id = _clean(source.get("link")), _clean(source.get("media_id") or source.get("id"))
    if link and media_id:
        raise PayloadError(f"{what}: indique `link` o `media_id`, no ambos")
    if not link and not media_id:
        raise PayloadError(f"{what}: falta `link` o `media_id` del archivo ({kind})")
    return {"link": link} if link else {"id": media_id}


def _kept(value) -> str | None:
    """The text as written (inner and edge whitespace kept), or None when blank."""
    return str(value) if value is not None and str(value).strip() else None


def _body_text(text: str | None, content: dict, limit: int, what: str) -> str:
    body = _kept(text) or _kept(content.get("body"))
    if not body:
        raise PayloadError(f"{what}: falta el texto del mensaje")
    return _check_length(body, limit, f"el texto del {what}")


def _footer(content: dict) -> dict | None:
    footer = _clean(content.get("footer"))
    return {"text": _check_length(footer, FOOTER_MAX, "el pie (footer)")} if footer else None


# --- builders: (text, content) -> (type, object) -----------------------------------------------

def _text(text, content):
    body = _kept(text) or _kept(content.get("body"))
    if not body:
        raise PayloadError("el mensaje de texto está vacío")
    _check_length(body, TEXT_MAX, "el mensaje de texto")
    preview = content.get("preview_url")
    if preview is None:
        preview = bool(URL_RE.search(body))
    return "text", {"preview_url": bool(preview), "body": body}


def _media(kind):
    def build(text, content):
        media = _media_object(kind, content, f"el mensaje de tipo {kind}")
        if kind in CAPTION_KINDS:
            caption = _clean(content.get("caption")) or _clean(text)
            if caption:
                media["caption"] = _check_length(caption, CAPTION_MAX, "el pie de foto (caption)")
        if kind == "document":
            filename = _clean(content.get("filename"))
            if filename:
                media["filename"] = filename
        return kind, media
    return build


def _row(option, index: int) -> dict:
    if isinstance(option, str):
        option = {"title": option}
    if not isinstance(option, dict):
        raise PayloadError(f"la opción {index} de la lista debe ser texto o un objeto con id y title")
    title = _clean(option.get("title"))
    if not title:
        raise PayloadError(f"la opción {index} de la lista no tiene título")
    _check_length(title, ROW_TITLE_MAX, f"el título de la opción {index} de la lista")
    row_id = _clean(option.get("id")) or title
    _check_length(row_id, ROW_ID_MAX, f"el id de la opción {index} de la lista")
    row = {"id": row_id, "title": title}
    description = _clean(option.get("description"))
    if description:
        row["description"] = _check_length(description, ROW_DESCRIPTION_MAX,
                                           f"la descripción de la opción {index} de la lista")
    return row


def _list(text, content):
    body = _body_text(text, content, LIST_BODY_MAX, "mensaje de lista")
    button = _clean(content.get("button")) or DEFAULT_LIST_BUTTON
    _check_length(button, LIST_BUTTON_MAX, "el botón de la lista")
    raw_sections = content.get("sections")
    if raw_sections is None:
        options = content.get("options") or []
        section = {"rows": options}
        if content.get("section_title"):
            section["title"] = content["section_title"]
        raw_sections = [section]
    if not isinstance(raw_sections, list) or not raw_sections:
        raise PayloadError("la lista necesita al menos una sección con opciones")
    if len(raw_sections) > LIST_SECTIONS_MAX:
        raise PayloadError(f"una lista admite como máximo {LIST_SECTIONS_MAX} secciones (tiene {len(raw_sections)})")
    sections, seen, total = [], set(), 0
    for number, raw in enumerate(raw_sections, start=1):
        rows_in = (raw.get("rows") or []) if isinstance(raw, dict) else []
        if not rows_in:
            raise PayloadError(f"la sección {number} de la lista no tiene opciones")
        section = {}
        title = _clean(raw.get("title"))
        if title:
            section["title"] = _check_length(title, SECTION_TITLE_MAX, f"el título de la sección {number}")
        elif len(raw_sections) > 1:
            raise PayloadError(f"con varias secciones cada una necesita título (falta en la sección {number})")
        rows = []
        for option in rows_in:
            total += 1
            row = _row(option, total)
            if row["id"] in seen:
                raise PayloadError(f"id de opción repetido en la lista: {row['id']!r}")
            seen.add(row["id"])
            rows.append(row)
        section["rows"] = rows
        sections.append(section)
    if total > LIST_ROWS_MAX:
        raise PayloadError(f"una lista admite como máximo {LIST_ROWS_MAX} opciones en total (tiene {total})")
    interactive = {"type": "list"}
    header = _clean(content.get("header"))
    if header:
        interactive["header"] = {"type": "text", "text": _check_length(header, HEADER_TEXT_MAX, "el encabezado")}
    interactive["body"] = {"text": body}
    footer = _footer(content)
    if footer:
        interactive["footer"] = footer
    interactive["action"] = {"button": button, "sections": sections}
    return "interactive", interactive


def _button_header(header) -> dict | None:
    if header is None or header == "":
        return None
    if isinstance(header, str):
        text = _clean(header)
        return {"type": "text", "text": _check_length(text, HEADER_TEXT_MAX, "el encabezado")} if text else None
    if not isinstance(header, dict):
        raise PayloadError("el encabezado debe ser texto o un objeto {type, link|media_id}")
    kind = header.get("type") or next((k for k in HEADER_MEDIA_KINDS if k in header), None) or "text"
    if kind == "text":
        text = _clean(header.get("text"))
        if not text:
            raise PayloadError("el encabezado de texto está vacío")
        return {"type": "text", "text": _check_length(text, HEADER_TEXT_MAX, "el encabezado")}
    if kind not in HEADER_MEDIA_KINDS:
        raise PayloadError(f"encabezado no admitido: {kind!r} (texto, image, video o document)")
    source = header.get(kind) if isinstance(header.get(kind), dict) else header
    media = _media_object(kind, source, "el encabezado")
    if kind == "document" and _clean(source.get("filename")):
        media["filename"] = _clean(source.get("filename"))
    return {"type": kind, kind: media}


def _buttons(text, content):
    body = _body_text(text, content, BUTTONS_BODY_MAX, "mensaje con botones")
    options = content.get("buttons") or content.get("options") or []
    if not 1 <= len(options) <= BUTTONS_MAX:
        raise PayloadError(f"un mensaje con botones lleva de 1 a {BUTTONS_MAX} botones (tiene {len(options)})")
    buttons, ids, titles = [], set(), set()
    for number, option in enumerate(options, start=1):
        if isinstance(option, str):
            option = {"title": option}
        if not isinstance(option, dict):
            raise PayloadError(f"el botón {number} debe ser texto o un objeto con id y title")
        title = _clean(option.get("title"))
        if not title:
            raise PayloadError(f"el botón {number} no tiene título")
        _check_length(title, BUTTON_TITLE_MAX, f"el título del botón {number}")
        button_id = _clean(option.get("id")) or title
        _check_length(button_id, BUTTON_ID_MAX, f"el id del botón {number}")
        if button_id in ids or title in titles:
            raise PayloadError(f"botón repetido: {title!r} (ids y títulos deben ser únicos)")
        ids.add(button_id)
        titles.add(title)
        buttons.append({"type": "reply", "reply": {"id": button_id, "title": title}})
    interactive = {"type": "button"}
    header = _button_header(content.get("header"))
    if header:
        interactive["header"] = header
    interactive["body"] = {"text": body}
    footer = _footer(content)
    if footer:
        interactive["footer"] = footer
    interactive["action"] = {"buttons": buttons}
    return "interactive", interactive


def _template(text, content):
    name = _clean(content.get("name"))
    if not name:
        raise PayloadError("falta el nombre de la plantilla")
    language = content.get("language")
    if isinstance(language, dict):
        language = language.get("code")
    template = {"name": name, "language": {"code": _clean(language) or DEFAULT_TEMPLATE_LANGUAGE}}
    components = content.get("components")
    if components:
        if not isinstance(components, list):
            raise PayloadError("los componentes de la plantilla deben ser una lista")
        template["components"] = components
    return "template", template


def _reaction(text, content):
    message_id = _clean(content.get("message_id"))
    if not message_id:
        raise PayloadError("la reacción necesita el id (wamid) del mensaje")
    emoji = content.get("emoji")
    if emoji is None:
        emoji = text or ""
    return "reaction", {"message_id": message_id, "emoji": str(emoji).strip()}


def _location(text, content):
    try:
        latitude, longitude = float(content["latitude"]), float(content["longitude"])
    except (KeyError, TypeError, ValueError):
        raise PayloadError("la ubicación necesita latitude y longitude numéricas") from None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise PayloadError(f"coordenadas fuera de rango: {latitude}, {longitude}")
    location = {"latitude": latitude, "longitude": longitude}
    for key in ("name", "address"):
        value = _clean(content.get(key))
        if value:
            location[key] = value
    return "location", location


def _contacts(text, content):
    contacts = content.get("contacts", content)
    if isinstance(contacts, dict):
        contacts = [contacts]
    if not contacts or not isinstance(contacts, list):
        raise PayloadError("falta la tarjeta de contacto")
    for number, contact in enumerate(contacts, start=1):
        if not isinstance(contact, dict) or not isinstance(contact.get("name"), dict) \
                or not contact["name"].get("formatted_name"):
            raise PayloadError(f"el contacto {number} necesita name.formatted_name")
    return "contacts", contacts


def _status_read(content: dict, text: str | None) -> dict:
    message_id = _clean(content.get("message_id")) or _clean(text)
    if not message_id:
        raise PayloadError("marcar como leído necesita el id (wamid) del mensaje recibido")
    return {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}


_BUILDERS = {"text": _text, "list": _list, "buttons": _buttons, "template": _template, "reaction": _reaction,
             "location": _location, "contacts": _contacts, **{kind: _media(kind) for kind in MEDIA_KINDS}}
