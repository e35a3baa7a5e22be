"""The agents' quick replies: prepared answers (text and files) shown as buttons in the panel."""
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from flask import url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from extensions import db
from models import QuickReply, QuickReplyMedia
from services.rules import media as stored_files
from services.rules.media import MediaError, Upload
from services.text import fold_accents

log = logging.getLogger(__name__)
FOLDER = "quick_replies"
TITLE_MAX = 60
TEXT_MAX = 4096
FILES_MAX = 10
KIND_LABELS = {"image": "imagen", "document": "documento", "audio": "audio", "video": "video"}


class QuickReplyError(ValueError):
    """A quick reply cannot be saved as asked; `errors` maps each form field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


def whatsapp_kind(mime: str) -> str:
    """How WhatsApp calls a file of this MIME type: image, audio, video or document."""
    family = mime.split("/", 1)[0]
    return family if family in ("image", "audio", "video") else "document"


def kind_label(mime: str) -> str:
    """The Spanish name of a file's kind, for the pages."""
    return KIND_LABELS[whatsapp_kind(mime)]


def _store(upload: Upload) -> QuickReplyMedia:
    # The rules' checker (extension, magic bytes, size) saves under rules/; its file is moved to our folder.
    record = stored_files.store_upload(stored_files.kind_of(upload.filename), upload)
    directory = stored_files.media_root() / FOLDER
    directory.mkdir(parents=True, exist_ok=True)
    path = f"{FOLDER}/{Path(record.path).name}"
    os.replace(stored_files.media_root() / record.path, stored_files.media_root() / path)
    log.info("quick reply media stored: %s (%d bytes)", path, record.size)
    return QuickReplyMedia(filename=record.filename, path=path, mime=record.mime, size=record.size)


def _remove_files(paths: Iterable[str]) -> None:
    root = (stored_files.media_root() / FOLDER).resolve()
    for path in paths:
        full = (stored_files.media_root() / path).resolve()
        if full.parent == root:
            full.unlink(missing_ok=True)
            log.info("quick reply media removed: %s", path)


def _shown(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _folded(title: str) -> str:
    return fold_accents(" ".join(title.split()).casefold())


def _check(quick_reply_id: int | None, title: str, text: str, files: int) -> dict[str, str]:
    errors = {}
    if not title:
        errors["title"] = "Escriba el título del botón."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"El título admite hasta {TITLE_MAX} caracteres (tiene {len(title)})."
    else:
        for other_id, other in db.session.execute(select(QuickReply.id, QuickReply.title)):
            if other_id != quick_reply_id and _folded(other) == _folded(title):
                errors["title"] = f"Ya existe el botón «{other}»; use otro título."
                break
    if len(text) > TEXT_MAX:
        errors["text"] = f"El texto admite hasta {TEXT_MAX} caracteres (tiene {len(text)})."
    elif not text and files == 0:
        errors["text"] = "Escriba el texto o adjunte al menos un archivo."
    if files > FILES_MAX:
        errors["files"] = f"Un botón lleva como máximo {FILES_MAX} archivos."
    return errors


def _store_all(uploads: list[Upload], errors: dict) -> list[QuickReplyMedia]:
    """Every upload stored, or none: the first refused file discards the ones already saved."""
    if errors:
        raise QuickReplyError(errors)
    stored = []
    for upload in uploads:
        try:
            stored.append(_store(upload))
        except MediaError as error:
            _remove_files(media.path for media in stored)
            raise QuickReplyError({"files": f"{_shown(upload.filename)}: {error}"}) from None
        except BaseException:
            _remove_files(media.path for media in stored)
            raise
    return stored


def _commit(stored: list[QuickReplyMedia]) -> None:
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        _remove_files(media.path for media in stored)
        raise


def _ordered():
    return select(QuickReply).options(selectinload(QuickReply.media)).order_by(QuickReply.position, QuickReply.id)


def quick_replies() -> list[QuickReply]:
    """Every quick reply in the order agents see them."""
    return list(db.session.scalars(_ordered()))


def list_quick_replies() -> list[dict]:
    """The quick replies as plain dicts for the panel (call within a request: `url` is built for it).

    `[{id, title, text, media: [{id, filename, mime, size, kind, url}]}]`, in order; `kind` is
    WhatsApp's media type (image, document, audio, video).
    """
    return [{"id": reply.id, "title": reply.title, "text": reply.text,
             "media": [{"id": media.id, "filename": media.filename, "mime": media.mime, "size": media.size,
                        "kind": whatsapp_kind(media.mime),
                        "url": url_for("quick_replies.media", media_id=media.id)}
                       for media in sorted(reply.media, key=lambda m: m.id)]}
            for reply in quick_replies()]


def get_quick_reply(quick_reply_id: int) -> QuickReply | None:
    return db.session.get(QuickReply, quick_reply_id)


def quick_reply_media(media_id: int) -> QuickReplyMedia | None:
    return db.session.get(QuickReplyMedia, media_id)


def create_quick_reply(title: str, text: str, uploads: Iterable[Upload] = ()) -> QuickReply:
    """Add a quick reply at the end of the list; QuickReplyError says what to fix and nothing is kept."""
    title, text, uploads = " ".join((title or "").split()), (text or "").strip(), list(uploads)
    stored = _store_all(uploads, _check(None, title, text, len(uploads)))
    last = db.session.scalar(select(func.max(QuickReply.position)))
    reply = QuickReply(title=title, text=text, position=(last or 0) + 1, media=stored)
    db.session.add(reply)
    _commit(stored)
    log.info("quick reply %s created with %d files", reply.id, len(stored))
    return reply


def update_quick_reply(quick_reply_id: int, title: str, text: str, uploads: Iterable[Upload] = (),
                       remove_media_ids: Iterable[int] = ()) -> QuickReply:
    """Change a quick reply's title and text, add files and remove the chosen ones; all or nothing."""
    reply = get_quick_reply(quick_reply_id)
    if reply is None:
        raise LookupError(quick_reply_id)
    title, text, uploads = " ".join((title or "").split()), (text or "").strip(), list(uploads)
    remove = set(remove_media_ids)
    removed = [media for media in reply.media if media.id in remove]
    kept = len(reply.media) - len(removed)
    stored = _store_all(uploads, _check(reply.id, title, text, kept + len(uploads)))
    reply.title, reply.text = title, text
    for media in removed:
        reply.media.remove(media)
    reply.media.extend(stored)
    _commit(stored)
    _remove_files(media.path for media in removed)
    log.info("quick reply %s saved (+%d files, -%d files)", reply.id, len(stored), len(removed))
    return reply


def delete_quick_reply(quick_reply_id: int) -> str:
    """Remove a quick reply and its files; returns its title."""
    reply = get_quick_reply(quick_reply_id)
    if reply is None:
        raise LookupError(quick_reply_id)
    title, paths = reply.title, [media.path for media in reply.media]
    db.session.delete(reply)
    db.session.commit()
    _remove_files(paths)
    log.info("quick reply %s (%s) deleted", quick_reply_id, title)
    return title


def move_quick_reply(quick_reply_id: int, offset: int) -> None:
    """Move a quick reply up (offset -1) or down (+1); positions are renumbered 1..n."""
    replies = list(db.session.scalars(select(QuickReply).order_by(QuickReply.position, QuickReply.id)
                                      .with_for_update()))
    ids = [reply.id for reply in replies]
    if quick_reply_id not in ids:
        db.session.rollback()
        raise LookupError(quick_reply_id)
    index = ids.index(quick_reply_id)
    replies.insert(max(0, min(len(replies) - 1, index + offset)), replies.pop(index))
    for position, reply in enumerate(replies, start=1):
        reply.position = position
    db.session.commit()
