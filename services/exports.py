"""Reading conversations back out, as JSON, CSV or a ZIP of JSON, streamed a page at a time."""
import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator

from sqlalchemy import select

from extensions import db
from models import Chat, Message, User
from services.access import visible_chats
from services.analytics.filters import Filters

PAGE = 1000
CHAT_PAGE = 200
CSV_COLUMNS = ("id", "wamid", "direction", "sender", "type", "text", "created_at", "sent_at", "status",
               "error_code", "error_title", "error_detail", "media_url", "media_id", "media_mime", "media_path",
               "media_status", "media_error", "content", "context_wamid", "transcription", "transcription_status",
               "sentiment_label", "sentiment_score", "step", "rule_id", "agent_id", "agent")
# A cell a spreadsheet would read as a formula: =, +, - or @ first (even after blanks), or a tab or CR first.
FORMULA_START = re.compile(r"\s*[=+\-@]|[\t\r]")


def find_chat(numero: str) -> Chat | None:
    return db.session.scalar(select(Chat).filter_by(numero=numero))


def file_stem(chat: Chat) -> str:
    """The part of an export's file name (and ZIP entry) that names the chat, built from ASCII digits only.

    A number of digits is itself; any other (stored before numbers were checked at intake) keeps its
    digits and gets the chat id, so no quote, slash or line break reaches a header or a ZIP entry and
    two chats never share a name.
    """
    digits = "".join(c for c in chat.numero if c in "0123456789")
    if digits == chat.numero:
        return digits
    return f"{digits}-chat{chat.id}" if digits else f"chat{chat.id}"


def _pages(statement) -> Iterator[Message]:
    """Messages of `statement`, by id, fetched a page at a time (keyset on id) and released after each page."""
    last_id = 0
    while True:
        page = db.session.scalars(statement.where(Message.id > last_id).order_by(Message.id).limit(PAGE)).all()
        yield from page
        if len(page) < PAGE:
            return
        last_id = page[-1].id
        db.session.expunge_all()


def iter_messages(chat_id: int, filters: Filters | None = None) -> Iterator[Message]:
    """Every message of a chat (or those in the filters' date range), oldest first."""
    statement = select(Message).where(Message.chat_id == chat_id)
    if filters is not None:
        statement = statement.where(Message.created_at >= filters.start, Message.created_at < filters.end)
    return _pages(statement)


def agent_names() -> dict[int, str]:
    return dict(db.session.execute(select(User.id, User.username)).all())


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def media_url(message: Message) -> str | None:
    """The panel's link to the stored file (login and role rules apply there too)."""
    return f"/media/{message.id}" if message.media_path else None


def message_record(message: Message, agents: dict[int, str] | None = None) -> dict:
    error = None
    if message.error_code or message.error_title:
        error = {"code": message.error_code, "title": message.error_title, "detail": message.error_detail}
    return {
        "id": message.id, "wamid": message.wamid, "direction": message.direction, "sender": message.sender,
        "type": message.type, "text": message.text, "created_at": _iso(message.created_at),
        "sent_at": _iso(message.sent_at), "status": message.status, "error": error,
        "content": message.content_data or None, "context_wamid": message.context_wamid,
        "media": {"id": message.media_id, "mime": message.media_mime, "path": message.media_path,
                  "url": media_url(message), "size": message.media_size, "status": message.media_status,
                  "error": message.media_error}
        if message.media_id or message.media_path else None,
        "transcription": message.transcription, "transcription_status": message.transcription_status,
        "sentiment": {"label": message.sentiment_label, "score": message.sentiment_score}
        if message.sentiment_label else None,
        "step": message.step, "rule_id": message.rule_id, "agent_id": message.agent_id,
        "agent": (agents or {}).get(message.agent_id) if message.agent_id else None,
    }


def _chat_head(chat: Chat) -> dict:
    return {"numero": chat.numero, "alias": chat.alias, "profile_name": chat.profile_name, "state": chat.state,
            "step": chat.step}


def conversation_json(chat: Chat, filters: Filters | None = None) -> Iterator[str]:
    """The conversation as one JSON document `{"numero", "alias", ..., "messages": [...]}`, in chunks."""
    agents = agent_names()
    yield json.dumps(_chat_head(chat), ensure_ascii=False)[:-1] + ', "messages": ['
    for index, message in enumerate(iter_messages(chat.id, filters)):
        yield ("," if index else "") + json.dumps(message_record(message, agents), ensure_ascii=False)
    yield "]}"


def csv_row(numero: str, alias: str | None, record: dict) -> list:
    error, media, sentiment = record["error"] or {}, record["media"] or {}, record["sentiment"] or {}
    flat = dict(record, error_code=error.get("code"), error_title=error.get("title"),
                error_detail=error.get("detail"), media_url=media.get("url"), media_id=media.get("id"),
                media_mime=media.get("mime"), media_path=media.get("path"), media_status=media.get("status"),
                media_error=media.get("error"), sentiment_label=sentiment.get("label"),
                sentiment_score=sentiment.get("score"),
                content=json.dumps(record["content"], ensure_ascii=False) if record["content"] else None)
    return [numero, alias or ""] + ["" if flat[column] is None else flat[column] for column in CSV_COLUMNS]


def spreadsheet_safe(value):
    """A CSV cell that Excel or LibreOffice shows as text instead of running it (OWASP CSV injection):
    text that could start a formula gets a leading single quote; other values are left as they are."""
    if isinstance(value, str) and FORMULA_START.match(value):
        return "'" + value
    return value


def _csv_lines(rows: Iterable[list]) -> Iterator[str]:
    """CSV text a row at a time, starting with the UTF-8 BOM (so Excel reads accents) and the header.

    Every cell goes through `spreadsheet_safe`: customer texts and aliases reach these files as typed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("numero", "alias") + CSV_COLUMNS)
    yield "\ufeff" + buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([spreadsheet_safe(cell) for cell in row])
        yield buffer.getvalue()


def conversation_csv(chat: Chat) -> Iterator[str]:
    """The conversation as CSV, a row a message."""
    agents = agent_names()
    numero, alias = chat.numero, chat.alias
    return _csv_lines(csv_row(numero, alias, message_record(message, agents)) for message in iter_messages(chat.id))


def range_csv(filters: Filters) -> Iterator[str]:
    """Every message in the filters' range from the chats the viewer may see, as one CSV (oldest first)."""
    agents = agent_names()
    statement = select(Message).where(*filters.conditions(Message.__table__))
    return _csv_lines(csv_row(message.chat.numero, message.chat.alias, message_record(message, agents))
                      for message in _pages(statement))


def range_chats(filters: Filters) -> Iterator[Chat]:
    """The chats with messages in the range that the viewer may see, by id, a page at a time."""
    with_messages = select(Message.chat_id).where(*filters.conditions(Message.__table__))
    statement = visible_chats(filters.viewer, select(Chat)).where(Chat.id.in_(with_messages))
    last_id = 0
    while True:
        page = db.session.scalars(statement.where(Chat.id > last_id).order_by(Chat.id).limit(CHAT_PAGE)).all()
        yield from page
        if len(page) < CHAT_PAGE:
            return
        last_id = page[-1].id


class _Pipe(io.RawIOBase):
    """A write-only, unseekable sink whose bytes are taken out as they are written (for a streamed ZIP)."""

    def __init__(self):
        super().__init__()
        self.chunks: list[bytes] = []

    def writable(self):
        return True

    def write(self, data):
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def range_zip(filters: Filters) -> Iterator[bytes]:
    """A ZIP with one `conversacion-<numero>.json` per chat (its messages in the range), written as it streams."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for chat in range_chats(filters):
            with archive.open(f"conversacion-{file_stem(chat)}.json", "w", force_zip64=True) as entry:
                for chunk in conversation_json(chat, filters):
                    entry.write(chunk.encode("utf-8"))
                    if sum(map(len, pipe.chunks)) >= 64 * 1024:
                        yield pipe.take()
            yield pipe.take()
    yield pipe.take()
