"""Files uploaded for the bot's rules: type and size checks, storage under MEDIA_ROOT/rules/, clean-up."""
import logging
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from flask import current_app
from sqlalchemy import func, select
from werkzeug.utils import secure_filename

from extensions import db
from models import RuleMedia

log = logging.getLogger(__name__)
MB = 1024 * 1024
CHUNK = 64 * 1024
FOLDER = "rules"
FILE_REFERENCE_PREFIX = "archivo:"
_REFERENCE = re.compile(r"rules/[A-Za-z0-9][A-Za-z0-9._-]{0,250}")


class MediaError(ValueError):
    """An uploaded file cannot be used for a rule; the message says why."""


def _starts(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(prefixes)


def _mp3(head: bytes) -> bool:
    return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _adts(head: bytes) -> bool:
    return head.startswith(b"ADIF") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0)


def _iso_media(head: bytes) -> bool:
    return head[4:8] == b"ftyp"


def _anything(head: bytes) -> bool:
    return True


_OLE = _starts(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
_ZIP = _starts(b"PK\x03\x04")


@dataclass(frozen=True)
class FileType:
    mime: str
    looks_right: Callable[[bytes], bool]


@dataclass(frozen=True)
class MediaKind:
    label: str
    limit: int
    types: dict[str, FileType]


# WhatsApp Cloud API limits per media type; the content is sniffed, the browser's MIME type is not trusted.
KINDS = {
    "imagen": MediaKind("imagen (JPEG o PNG)", 5 * MB, {
        ".jpg": FileType("image/jpeg", _starts(b"\xff\xd8\xff")),
        ".jpeg": FileType("image/jpeg", _starts(b"\xff\xd8\xff")),
        ".png": FileType("image/png", _starts(b"\x89PNG\r\n\x1a\n")),
    }),
    "documento": MediaKind("documento (PDF, Word, Excel, PowerPoint o texto)", 100 * MB, {
        ".pdf": FileType("application/pdf", _starts(b"%PDF-")),
        ".doc": FileType("application/msword", _OLE),
        ".docx": FileType("application/vnd.openxmlformats-officedocument.wordprocessingml.document", _ZIP),
        ".xls": FileType("application/vnd.ms-excel", _OLE),
        ".xlsx": FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _ZIP),
        ".ppt": FileType("application/vnd.ms-powerpoint", _OLE),
        ".pptx": FileType("application/vnd.openxmlformats-officedocument.presentationml.presentation", _ZIP),
        ".txt": FileType("text/plain", _anything),
    }),
    "audio": MediaKind("audio (OGG, MP3, AAC o AMR)", 16 * MB, {
        ".ogg": FileType("audio/ogg", _starts(b"OggS")),
        ".opus": FileType("audio/ogg", _starts(b"OggS")),
        ".mp3": FileType("audio/mpeg", _mp3),
        ".aac": FileType("audio/aac", _adts),
        ".amr": FileType("audio/amr", _starts(b"#!AMR")),
    }),
    "video": MediaKind("video (MP4 o 3GPP)", 16 * MB, {
        ".mp4": FileType("video/mp4", _iso_media),
        ".3gp": FileType("video/3gpp", _iso_media),
        ".3gpp": FileType("video/3gpp", _iso_media),
    }),
}


@dataclass(frozen=True)
class Upload:
    """A file as received: the name the user gave it and its content."""
    filename: str
    stream: BinaryIO


def media_root() -> Path:
    return Path(current_app.config["MEDIA_ROOT"])


def size_limit(tipo: str) -> int:
    """The most bytes a file for a rule of this tipo may have."""
    return min(KINDS[tipo].limit, current_app.config["MEDIA_MAX_BYTES"])


def largest_upload() -> int:
    """The most bytes any rule file may have."""
    return max(size_limit(tipo) for tipo in KINDS)


def upload_limits() -> list[tuple[str, list[str], int]]:
    """For each media tipo: the accepted extensions and the size limit in MB, for forms to show."""
    return [(tipo, list(kind.types), size_limit(tipo) // MB) for tipo, kind in KINDS.items()]


def accepted_files() -> list[tuple[str, list[str], int]]:
    """(label, extensions, MB) of each kind of file, for the panel's and quick replies' upload forms to show."""
    return [(KINDS[tipo].label, extensions, mb) for tipo, extensions, mb in upload_limits()]


def kind_of(filename: str) -> str:
    """The media tipo a file's extension belongs to (for uploads that may be of any kind)."""
    extension = Path(filename).suffix.lower()
    for tipo, kind in KINDS.items():
        if extension in kind.types:
            return tipo
    accepted = ", ".join(ext for kind in KINDS.values() for ext in kind.types)
    raise MediaError(f"tipo de archivo no admitido ({extension or 'sin extensión'}); se aceptan {accepted}")


def _file_type(tipo: str, filename: str) -> tuple[str, FileType]:
    kind = KINDS.get(tipo)
    if kind is None:
        raise MediaError("solo las reglas de tipo imagen, documento, audio o video llevan archivo")
    extension = Path(filename).suffix.lower()
    if extension not in kind.types:
        raise MediaError(f"tipo de archivo no admitido ({extension or 'sin extensión'}); "
                         f"para {tipo} suba {kind.label}: {', '.join(kind.types)}")
    return extension, kind.types[extension]


def check_upload_name(tipo: str, filename: str) -> str | None:
    """Why a file of this name cannot go with a rule of this tipo, or None."""
    try:
        _file_type(tipo, filename)
    except MediaError as error:
        return str(error)
    return None


def _display_name(filename: str) -> str:
    return re.split(r"[\\/]", filename)[-1].strip()[:255] or "archivo"


def _stored_name(filename: str, extension: str) -> str:
    stem = Path(secure_filename(_display_name(filename))).stem[:80] or "archivo"
    return f"{uuid.uuid4().hex}_{stem}{extension}"


def store_upload(tipo: str, upload: Upload) -> RuleMedia:
    """Check the file against the tipo's formats and size, save it under a generated name, return its record.

    The record is not added to the session: attach it to a rule. Raises MediaError with the reason.
    """
    extension, file_type = _file_type(tipo, upload.filename)
    limit = size_limit(tipo)
    directory = media_root() / FOLDER
    directory.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".part-", delete=False)
    size, head = 0, b""
    try:
        with handle:
            while chunk := upload.stream.read(CHUNK):
                if len(head) < 16:
                    head += chunk[:16]
                size += len(chunk)
                if size > limit:
                    raise MediaError(f"el archivo supera el máximo de {limit // MB} MB para {tipo}")
                handle.write(chunk)
        if size == 0:
            raise MediaError("el archivo está vacío")
        if not file_type.looks_right(head):
            raise MediaError(f"el contenido no corresponde a un archivo {extension}")
        name = _stored_name(upload.filename, extension)
        os.replace(handle.name, directory / name)
    except BaseException:
        os.unlink(handle.name)
        raise
    log.info("rule media stored: %s/%s (%d bytes)", FOLDER, name, size)
    return RuleMedia(filename=_display_name(upload.filename), path=f"{FOLDER}/{name}", mime=file_type.mime, size=size)


def reference_for(media: RuleMedia) -> str:
    """How a sheet's media_url column names an uploaded file: `archivo:rules/<name>`."""
    return FILE_REFERENCE_PREFIX + media.path


def resolve_reference(reference: str, tipo: str) -> RuleMedia:
    """The record for a sheet's `archivo:rules/<name>` reference to a file in MEDIA_ROOT; MediaError if unusable."""
    path = reference[len(FILE_REFERENCE_PREFIX):].strip()
    if not _REFERENCE.fullmatch(path):
        raise MediaError(f"{reference!r} no es una referencia válida; use archivo:rules/<nombre> "
                         "tal como la escribe la exportación")
    extension, file_type = _file_type(tipo, path)
    full = media_root() / path
    if not full.is_file():
        raise MediaError(f"el archivo {path} no existe en el servidor; súbalo de nuevo desde el formulario "
                         "de la regla")
    return RuleMedia(filename=Path(path).name, path=path, mime=file_type.mime, size=full.stat().st_size)


def discard_stored(records: list[RuleMedia]) -> None:
    """Delete files just stored for records that were never committed."""
    for record in records:
        (media_root() / record.path).unlink(missing_ok=True)


def remove_unreferenced(paths: list[str]) -> None:
    """Delete the files under MEDIA_ROOT/rules/ that no rule uses any more."""
    root = (media_root() / FOLDER).resolve()
    for path in set(paths):
        if db.session.scalar(select(func.count()).select_from(RuleMedia).where(RuleMedia.path == path)):
            continue
        full = (media_root() / path).resolve()
        if full.parent == root:
            full.unlink(missing_ok=True)
            log.info("rule media removed: %s", path)
