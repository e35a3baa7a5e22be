"""Downloading customers' media from the Graph API (or from Twilio) into MEDIA_ROOT."""
import hashlib
import logging
import mimetypes
import os
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import requests
from flask import current_app

from extensions import db
from models import Message
from services.events import emit
from services.graph import GraphError
from services.jobs import OUTSIDE, PermanentJobError, TransientJobError, enqueue, task
from services.outside import turn
from services.meta_payload import LOCAL_MEDIA_PREFIX
from services.twilio_payload import MEDIA_PREFIX as TWILIO_PREFIX

log = logging.getLogger(__name__)
MB = 1024 * 1024
# Meta's limits per media type, and the families of MIME types each accepts.
LIMITS = {"image": 5 * MB, "audio": 16 * MB, "video": 16 * MB, "document": 100 * MB, "sticker": 500 * 1024}
ACCEPTED = {"image": ("image/",), "audio": ("audio/", "video/ogg", "application/ogg"), "video": ("video/",),
            "document": ("",), "sticker": ("image/webp",)}
CHUNK = 64 * 1024
LOCAL_PREFIX = LOCAL_MEDIA_PREFIX
LOCAL_DIR = "simulator"  # the only folder a local media id may name (services.simulator.MEDIA_DIR)


@dataclass(frozen=True)
class MediaRef:
    """What a download needs from its message, read once so no transaction stays open during it."""
    message_id: int
    chat_id: int
    wamid: str | None
    kind: str
    media_id: str
    mime: str | None


def media_root() -> Path:
    return Path(current_app.config["MEDIA_ROOT"])


def extension_for(mime: str) -> str:
    base = mime.split(";")[0].strip().lower()
    return {"audio/ogg": ".ogg", "audio/mpeg": ".mp3", "image/jpeg": ".jpg", "audio/amr": ".amr",
            "audio/aac": ".aac", "audio/mp4": ".m4a"}.get(base) or mimetypes.guess_extension(base) or ".bin"


def check_media(kind: str, mime: str, size: int | None) -> str | None:
    """The reason a file of this type/size is refused, or None."""
    base = (mime or "").split(";")[0].strip().lower()
    if kind in ACCEPTED and not base.startswith(ACCEPTED[kind]):
        return f"tipo de archivo no admitido para {kind}: {base or 'desconocido'}"
    limit = min(LIMITS.get(kind, 100 * MB), current_app.config["MEDIA_MAX_BYTES"])
    if size is not None and size > limit:
        return f"archivo demasiado grande ({size} bytes; máximo {limit})"
    return None


def timeout() -> tuple[float, float]:
    """(connect, read) seconds for a media download: MEDIA_CONNECT_TIMEOUT_SEC, MEDIA_READ_TIMEOUT_SEC."""
    config = current_app.config
    return config["MEDIA_CONNECT_TIMEOUT_SEC"], config["MEDIA_READ_TIMEOUT_SEC"]


def _record_failure(message_id: int, reason: str) -> None:
    """The message's media failed for good: say why, and let a voice note's chat go on without it."""
    message = db.session.get(Message, message_id)
    if message is None or message.media_status == "ok":
        db.session.rollback()
        return
    message.media_status = "failed"
    message.media_error = reason[:255]
    db.session.commit()
    _after_media(message)


def _fail(media: MediaRef, reason: str) -> None:
    _record_failure(media.message_id, reason)
    log.warning("media %s of message %s (%s) failed: %s", media.media_id, media.message_id, media.wamid, reason)
    raise PermanentJobError(reason)


def _stream_to_file(response, limit: int, directory: Path) -> tuple[Path, int, str]:
    directory.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".part-", delete=False)
    try:
        with handle, response:
            try:
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise ValueError(f"archivo demasiado grande (más de {limit} bytes)")
                    digest.update(chunk)
                    handle.write(chunk)
            except requests.RequestException as error:  # cut mid-way: worth another try, like a timeout
                raise GraphError(f"descarga interrumpida: {type(error).__name__}") from error
    except BaseException:
        os.unlink(handle.name)
        raise
    return Path(handle.name), size, digest.hexdigest()


@task("media.download", queue=OUTSIDE, retries=3, delays="MEDIA_RETRY_DELAYS",
      aliases=("services.media.download_media",))
def download_media(message_id: int) -> None:
    """Fetch a message's media (Graph `GET /{media-id}`, then the file), check it and keep it.

    Timeouts, 5xx and expired URLs fail the attempt with a TransientJobError: the job is tried again
    after MEDIA_RETRY_DELAYS. After the last try, or on a permanent refusal, the message says why
    (`media_status="failed"`, `media_error`).
    """
    message = db.session.get(Message, message_id)
    if message is None or not message.media_id or message.media_status == "ok":
        return
    if message.media_id.startswith(LOCAL_PREFIX):
        return _use_local_file(message)
    media = MediaRef(message.id, message.chat_id, message.wamid, message.type, message.media_id, message.media_mime)
    fetch, service = _download, "graph"
    if message.media_id.startswith(TWILIO_PREFIX):
        content = message.content_data
        fetch, service = partial(_download_twilio, content.get("media_url") or "", content.get("account_sid")), "twilio"
    # No transaction stays open while we talk to Graph: on SQLite an open transaction holds the write
    # lock, and every webhook would wait for the download.
    db.session.rollback()
    try:
        with turn(service):
            fetch(media)
    except GraphError as error:
        if not (error.transient or error.status == 404):
            _fail(media, f"no se pudo descargar: {error}")
        log.info("media %s of message %s: %s; to be tried again", media.media_id, media.message_id, error)
        raise TransientJobError(f"no se pudo descargar: {error}") from error


def _download_gave_up(message_id: int, reason: str) -> None:
    _record_failure(message_id, reason)
    log.warning("media of message %s failed after its retries: %s", message_id, reason)


download_media.gave_up = _download_gave_up


def _download(media: MediaRef) -> None:
    graph = current_app.extensions["graph"]
    info = graph.media_info(media.media_id, timeout=timeout())
    mime = info.get("mime_type") or media.mime or ""
    declared = info.get("file_size")
    reason = check_media(media.kind, mime, int(declared) if str(declared or "").isdigit() else None)
    if reason:
        _fail(media, reason)
    if not info.get("url"):
        _fail(media, "Graph no devolvió la URL del archivo")
    _keep(media, graph.download(info["url"], timeout=timeout()), mime, str(info.get("sha256") or "").lower())


def twilio_media_allowed(url: str) -> bool:
    """Only Twilio's media host (TWILIO_MEDIA_HOSTS) is fetched: a webhook never makes us fetch any URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() in current_app.config["TWILIO_MEDIA_HOSTS"]


def _download_twilio(url: str, account_sid: str | None, media: MediaRef) -> None:
    """A Twilio media URL, fetched with HTTP basic auth (AccountSid, TWILIO_AUTH_TOKEN) and its redirect
    followed (requests drops the credentials when the redirect leaves the host)."""
    if not twilio_media_allowed(url):
        _fail(media, f"URL de Twilio no permitida (TWILIO_MEDIA_HOSTS): {urlsplit(url).netloc or url[:60]}")
    token = current_app.config["TWILIO_AUTH_TOKEN"]
    try:
        response = requests.get(url, auth=(account_sid, token) if account_sid and token else None,
                                timeout=timeout(), stream=True)
    except requests.RequestException as error:
        raise GraphError(f"Twilio no responde: {type(error).__name__}") from error
    if response.status_code >= 400:
        response.close()
        raise GraphError(f"descarga fallida: HTTP {response.status_code}", status=response.status_code)
    mime = media.mime or response.headers.get("Content-Type") or ""
    declared = response.headers.get("Content-Length") or ""
    reason = check_media(media.kind, mime, int(declared) if declared.isdigit() else None)
    if reason:
        response.close()
        _fail(media, reason)
    _keep(media, response, mime)


def _keep(media: MediaRef, response, mime: str, expected: str = "") -> None:
    """Stream a download into MEDIA_ROOT under the size limit, check its sha256 when known, and store it."""
    limit = min(LIMITS.get(media.kind, 100 * MB), current_app.config["MEDIA_MAX_BYTES"])
    directory = media_root() / "inbound" / str(media.chat_id)
    try:
        part, size, sha256 = _stream_to_file(response, limit, directory)
    except ValueError as error:
        _fail(media, str(error))
    if len(expected) == 64 and expected != sha256:
        part.unlink()
        _fail(media, "el archivo descargado no coincide con su sha256")
    final = directory / f"{media.message_id}{extension_for(mime)}"
    os.replace(part, final)
    message = db.session.get(Message, media.message_id)
    if message is None:  # deleted (with its chat) while we were downloading
        final.unlink()
        return
    message.media_path = str(final.relative_to(media_root()))
    message.media_size, message.media_mime, message.media_status, message.media_error = size, mime, "ok", None
    emit("message_update", chat_id=message.chat_id, message_id=message.id)
    db.session.commit()
    log.info("media stored message=%s wamid=%s bytes=%s", message.id, message.wamid, size)
    _after_media(message)


def _use_local_file(message: Message) -> None:
    """A `local:<path>` media id names a file the simulator stored under MEDIA_ROOT: no Graph call, just check it.

    Only the simulator's updates may carry such an id (services.intake); still, the path must resolve (symlinks
    included) to a file inside MEDIA_ROOT's simulator folder, never another area's files (quick replies, rules).
    """
    root = media_root().resolve()
    relative = message.media_id[len(LOCAL_PREFIX):]
    path, size, mime = None, None, message.media_mime or ""
    try:
        path = (root / relative).resolve()
        path.relative_to(root / LOCAL_DIR)
        reason = None if path.is_file() else "el archivo local no existe"
    except (OSError, ValueError, RuntimeError):
        reason = "ruta local fuera de la carpeta del simulador"
    if reason is None:
        size = path.stat().st_size
        mime = mime or mimetypes.guess_type(path.name)[0] or ""
        reason = check_media(message.type, mime, size)
    if reason:
        message.media_status, message.media_error = "failed", reason[:255]
    else:
        message.media_path = path.relative_to(root).as_posix()
        message.media_size, message.media_mime, message.media_status, message.media_error = size, mime, "ok", None
    emit("message_update", chat_id=message.chat_id, message_id=message.id)
    db.session.commit()
    _after_media(message)
    if reason:
        log.warning("local media %s of message %s (%s) refused: %s", message.media_id, message.id, message.wamid,
                    reason)
        raise PermanentJobError(reason)
    log.info("local media kept message=%s wamid=%s bytes=%s", message.id, message.wamid, size)


def _after_media(message: Message) -> None:
    """A customer's voice note goes on to transcription once stored; when its download failed, the note
    is final ("no transcrito: ...") and its chat is started again so it does not wait for it."""
    from services import transcription
    if not transcription.needs_transcription(message):
        return
    if message.media_status == "ok":
        enqueue("transcription.transcribe", message.id)
    else:
        transcription.mark_not_transcribed(message.id, f"audio no descargado ({message.media_error})")


def requeue_stalled(limit: int = 1000) -> str:
    """After a crash: queue again the downloads still pending and the voice notes downloaded but not
    transcribed (both jobs do nothing when their work is already done). Returns a line saying how many."""
    from sqlalchemy import select

    from services import transcription
    downloads = list(db.session.scalars(
        select(Message.id).where(Message.direction == "in", Message.media_status == "pending").limit(limit)))
    notes = list(db.session.scalars(
        select(Message.id).where(Message.direction == "in", Message.type == "audio", Message.media_status == "ok",
                                 Message.processed_at.is_(None),
                                 (Message.transcription_status.is_(None))
                                 | (Message.transcription_status == transcription.PENDING)).limit(limit)))
    db.session.rollback()
    for message_id in downloads:
        enqueue("media.download", message_id)
    for message_id in notes:
        enqueue("transcription.transcribe", message_id)
    return f"{len(downloads)} descargas y {len(notes)} transcripciones encoladas"
