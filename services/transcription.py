"""Voice notes to text (DESIGN §6): ffmpeg → 16 kHz mono WAV → Vosk, then the text goes to the flow engine.

The Vosk model is loaded once per process and shared by every thread; each job gets its own
KaldiRecognizer. Every outcome is written on the message: `transcription_status` is "transcrito"
or "no transcrito: <motivo>", and the chat's pipeline (services.pipeline) waits for that final
status before handling the note, so a skip or a failure never blocks the chat.
"""
import importlib.util
import json
import logging
import tempfile
import threading
import time
import wave
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
from flask import current_app

from extensions import db
from models import Chat, Message
from models.types import utcnow
from services import jobs
from services.events import emit
from services.text import normalize

log = logging.getLogger(__name__)
SAMPLE_RATE = 16_000
DONE = "transcrito"
NOT_DONE = "no transcrito: "
PENDING = "pendiente"
WAIT_LIMIT_SECONDS = 15 * 60  # an audio still pending after this is handled as not transcribed
LOAD_WINDOW_SECONDS = 300  # the average processing time looks at notes finished in this window
LOAD_WINDOW_SIZE = 20
CHUNK_FRAMES = 4000
SENTIMENT_TASK = "sentiment.tag"


class AudioError(Exception):
    """The file cannot be read as audio; the message says why."""


# --- the model, once per process -------------------------------------------------------------------------

_models: dict[str, object] = {}
_model_errors: dict[str, str] = {}
_model_lock = threading.Lock()


def _vosk():
    import vosk
    vosk.SetLogLevel(-1)
    return vosk


def looks_like_model(path: str) -> bool:
    directory = Path(path)
    return directory.is_dir() and (directory / "am").is_dir() and (directory / "conf").is_dir()


def get_model(path: str):
    """The Vosk model at `path`, loaded on first use and shared by every thread of this process."""
    with _model_lock:
        if path not in _models:
            try:
                _models[path] = _vosk().Model(path)
                _model_errors.pop(path, None)
                log.info("vosk model loaded from %s", path)
            except Exception as error:  # Vosk raises a bare Exception when the folder is not a model
                _model_errors[path] = f"{type(error).__name__}: {error}"
                raise
        return _models[path]


def preload_model() -> None:
    """Load the configured model now (an RQ worker, before its first job); a bad model is
    only logged here: each note then says why it was not transcribed."""
    path = current_app.config["VOSK_MODEL_PATH"]
    if path and looks_like_model(path):
        try:
            get_model(path)
        except Exception:
            log.exception("vosk model at %s could not be loaded", path)


def speech_status(path: str | None) -> dict:
    """For /api/status: whether a model is configured, valid and loaded in this process, and why not."""
    if not path:
        return {"ok": True, "enabled": False, "loaded": False,
                "reason": "sin modelo: configure VOSK_MODEL_PATH (flask --app app stt download-model es)"}
    if not looks_like_model(path):
        return {"ok": False, "enabled": False, "loaded": False, "model": path,
                "reason": f"no hay un modelo Vosk en {path}"}
    if path in _model_errors:
        return {"ok": False, "enabled": False, "loaded": False, "model": path,
                "reason": f"el modelo no se pudo cargar: {_model_errors[path]}"[:255]}
    loaded = path in _models
    return {"ok": True, "enabled": True, "loaded": loaded, "model": path,
            "reason": "modelo cargado" if loaded else "el modelo se cargará con la primera nota de voz"}


# --- load: average processing time -----------------------------------------------------------------------

class LoadMonitor:
    """Average processing time of the last notes finished recently (per process).

    Old entries leave the window, so once notes are skipped the average recovers by itself.
    """

    def __init__(self, window_seconds: float = LOAD_WINDOW_SECONDS, size: int = LOAD_WINDOW_SIZE):
        self.window, self.samples, self.lock = window_seconds, deque(maxlen=size), threading.Lock()

    def record(self, seconds: float, now: float | None = None) -> None:
        with self.lock:
            self.samples.append((time.monotonic() if now is None else now, seconds))

    def average(self, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        with self.lock:
            while self.samples and self.samples[0][0] < now - self.window:
                self.samples.popleft()
            return sum(s for _, s in self.samples) / len(self.samples) if self.samples else None

    def reset(self) -> None:
        with self.lock:
            self.samples.clear()


load = LoadMonitor()


# --- audio -----------------------------------------------------------------------------------------------

def _ffmpeg_reason(error: Exception) -> str:
    stderr = getattr(error, "stderr", None) or b""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    last = lines[-1]
    # ffmpeg prefixes the file's path ("/srv/media/...: End of file"): the server's folders are not shown
    return (last.split(": ", 1)[1] if last.startswith("/") and ": " in last else last)[:150]


def probe_duration_ms(path: Path) -> int | None:
    """Duration from ffprobe (None when the container does not say); AudioError when it is not audio."""
    try:
        info = ffmpeg.probe(str(path))
    except ffmpeg.Error as error:
        raise AudioError(f"archivo de audio dañado o ilegible ({_ffmpeg_reason(error)})") from error
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise AudioError("el archivo no contiene audio")
    for value in (info.get("format", {}).get("duration"), streams[0].get("duration")):
        try:
            return int(float(value) * 1000)
        except (TypeError, ValueError):
            continue
    return None


def decode_to_wav(path: Path, wav_path: Path, max_ms: int | None = None) -> int:
    """Decode to 16 kHz mono 16-bit WAV (at most `max_ms` + 1 s of it); returns the WAV's duration in ms."""
    options = {"ac": 1, "ar": SAMPLE_RATE, "acodec": "pcm_s16le", "f": "wav"}
    if max_ms:
        options["t"] = max_ms / 1000 + 1
    try:
        ffmpeg.input(str(path)).output(str(wav_path), **options).overwrite_output().run(
            capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as error:
        raise AudioError(f"archivo de audio dañado o ilegible ({_ffmpeg_reason(error)})") from error
    return wav_duration_ms(wav_path)


def wav_duration_ms(wav_path: Path) -> int:
    try:
        with wave.open(str(wav_path), "rb") as wav:
            return int(wav.getnframes() * 1000 / wav.getframerate())
    except (wave.Error, EOFError) as error:
        raise AudioError(f"ffmpeg no produjo un WAV válido ({error})") from error


def recognise(model, wav_path: Path, grammar: list[str] | None = None) -> str:
    """Vosk on a 16 kHz mono WAV: free recognition, or restricted to `grammar` (a list of phrases)."""
    vosk = _vosk()
    recognizer = (vosk.KaldiRecognizer(model, SAMPLE_RATE, json.dumps(grammar, ensure_ascii=False)) if grammar
                  else vosk.KaldiRecognizer(model, SAMPLE_RATE))
    parts = []
    with wave.open(str(wav_path), "rb") as wav:
        while data := wav.readframes(CHUNK_FRAMES):
            if recognizer.AcceptWaveform(data):
                parts.append(json.loads(recognizer.Result()).get("text", ""))
    parts.append(json.loads(recognizer.FinalResult()).get("text", ""))
    return " ".join(part for part in parts if part).strip()


# --- the closed-menu hint --------------------------------------------------------------------------------

def closed_inputs(step: str) -> list[str]:
    """The inputs a step accepts when they form a closed set (no `*` rule); [] when the step is open."""
    from services.conversation import rule_book
    rules = rule_book().rules_for_step(step)
    if not rules or any(rule.is_wildcard for rule in rules):
        return []
    words = {}
    for rule in rules:
        for part in rule.input_text.split(","):
            phrase = " ".join(part.lower().split())
            if phrase and normalize(phrase):
                words.setdefault(normalize(phrase), phrase)
    return list(words.values())


def grammar_match(text: str, inputs: list[str]) -> str | None:
    """The input the grammar result names, if it names exactly one ("dos dos" counts as "dos")."""
    words = text.split()
    collapsed = " ".join(w for i, w in enumerate(words) if i == 0 or w != words[i - 1])
    wanted = {normalize(phrase): phrase for phrase in inputs}
    return wanted.get(normalize(collapsed)) if collapsed else None


# --- the job ---------------------------------------------------------------------------------------------

@dataclass
class Transcript:
    text: str
    duration_ms: int
    seconds: float
    grammar: bool


def transcribe_file(path: Path, model, inputs: list[str] | None = None, max_ms: int | None = None) -> Transcript:
    """Decode and recognise one file; AudioError when it is unreadable, ValueError when it is too long."""
    started = time.monotonic()
    declared = probe_duration_ms(path)
    if max_ms and declared is not None and declared > max_ms:
        raise ValueError(f"nota demasiado larga ({declared / 1000:.1f} s; máximo {max_ms / 1000:.0f} s)")
    with tempfile.TemporaryDirectory(prefix="stt-") as work:
        wav_path = Path(work) / "note.wav"
        duration = decode_to_wav(path, wav_path, max_ms)
        if max_ms and duration > max_ms:
            raise ValueError(f"nota demasiado larga (más de {max_ms / 1000:.0f} s)")
        if inputs:
            found = grammar_match(recognise(model, wav_path, inputs + ["[unk]"]), inputs)
            if found:
                return Transcript(found, duration, time.monotonic() - started, True)
        text = recognise(model, wav_path)
    return Transcript(text, duration, time.monotonic() - started, False)


def is_final(status: str | None) -> bool:
    return bool(status) and (status == DONE or status.startswith(NOT_DONE))


def needs_transcription(message: Message) -> bool:
    return message.type == "audio" and message.direction == "in"


def _finish(message_id: int, status: str, text: str | None = None) -> None:
    """Write the outcome, tell the panel, and let the chat (and sentiment) go on."""
    message = db.session.get(Message, message_id)
    if message is None:
        return
    message.transcription_status = status[:255]
    if text is not None:
        message.transcription = text
    emit("message", chat_id=message.chat_id, message_id=message.id)
    chat_id = message.chat_id
    db.session.commit()
    log.info("transcription message=%s wamid=%s status=%r", message_id, message.wamid, status)
    if text and importlib.util.find_spec("services.sentiment") is not None:
        jobs.enqueue(SENTIMENT_TASK, message_id)
    jobs.enqueue("chat.process", chat_id)


def mark_not_transcribed(message_id: int, reason: str) -> None:
    """Final "no transcrito: <reason>" for a note (download failed, job lost...) unless it already has one."""
    message = db.session.get(Message, message_id)
    if message is None or not needs_transcription(message) or is_final(message.transcription_status):
        db.session.rollback()
        return
    _finish(message_id, NOT_DONE + reason)


@jobs.task("transcription.transcribe", queue=jobs.OUTSIDE, aliases=("services.transcription.transcribe_message",))
def transcribe_message(message_id: int) -> None:
    """Job: transcribe a downloaded voice note and hand it to the chat's pipeline."""
    config = current_app.config
    message = db.session.get(Message, message_id)
    if message is None or not needs_transcription(message) or is_final(message.transcription_status):
        return
    if message.media_status != "ok" or not message.media_path:
        return mark_not_transcribed(message_id, f"audio no descargado ({message.media_error or 'sin archivo'})")
    model_path = config["VOSK_MODEL_PATH"]
    if not model_path:
        return _finish(message_id, NOT_DONE + "sin modelo")
    if not looks_like_model(model_path):
        return _finish(message_id, NOT_DONE + f"sin modelo (no hay un modelo Vosk en {model_path})")
    limit = config["TRANSCRIPTION_MAX_AVG_TIME_SEC"]
    average = load.average()
    if average is not None and average > limit:
        return _finish(message_id, NOT_DONE + f"sistema saturado (media {average:.1f} s por nota; límite {limit:g} s)")
    path = Path(config["MEDIA_ROOT"]) / message.media_path
    chat = db.session.get(Chat, message.chat_id)
    step = chat.step or config["INITIAL_STEP"]
    inputs = closed_inputs(step)
    message.transcription_status = PENDING
    db.session.commit()  # no transaction stays open while ffmpeg and Vosk work
    try:
        model = get_model(model_path)
    except Exception as error:
        return _finish(message_id, NOT_DONE + f"el modelo no se pudo cargar ({error})"[:200])
    try:
        result = transcribe_file(path, model, inputs, config["MAX_TRANSCRIPTION_DURATION_MS"])
    except (AudioError, ValueError) as error:
        return _finish(message_id, NOT_DONE + str(error))
    except OSError as error:
        return _finish(message_id, NOT_DONE + f"no se pudo leer el audio ({type(error).__name__})")
    load.record(result.seconds)
    log.info("transcribed message=%s audio=%.1fs in %.2fs rtf=%.2f grammar=%s", message_id,
             result.duration_ms / 1000, result.seconds, result.seconds / max(result.duration_ms / 1000, 0.001),
             result.grammar)
    if not result.text:
        return _finish(message_id, NOT_DONE + "no se reconoció ninguna palabra", "")
    _finish(message_id, DONE, result.text)


def _transcription_gave_up(message_id: int, reason: str) -> None:
    mark_not_transcribed(message_id, f"el trabajo de transcripción falló ({reason})"[:200])


transcribe_message.gave_up = _transcription_gave_up


def overdue(message: Message) -> bool:
    """A note waiting for its transcription for longer than WAIT_LIMIT_SECONDS."""
    return message.created_at is not None and (utcnow() - message.created_at).total_seconds() > WAIT_LIMIT_SECONDS
