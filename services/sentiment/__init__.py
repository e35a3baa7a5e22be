"""Sentiment of customer messages: `positivo`, `neutral` or `negativo`, with a score in [0, 1].

The score is the provider's confidence in the label. Provider chain (SENTIMENT_PROVIDER):
`auto` uses Gemini when GEMINI_API_KEY is set, else the offline model shipped in the repo;
`gemini` asks Gemini; `local` only the offline model; `off` tags nothing. Any Gemini failure
falls back to the offline model. Greetings, numbers and menu choices are neutral before any
model is asked. Results are cached by normalised text.
"""
import logging
import threading
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import and_, select, update

from extensions import db
from models import Chat, Message
from services.events import emit
from services.jobs import OUTSIDE, task
from services.sentiment.cache import LruCache, cache_key
from services.sentiment.gemini import GeminiError, GeminiSentiment
from services.sentiment.offline import LABELS, MODEL_PATH, OfflineModel
from services.text import normalize

log = logging.getLogger(__name__)
CACHE_SIZE = 10_000
NEUTRAL_SCORE = 0.95
NEUTRAL_PHRASES = frozenset("""
hola holi ola buenas buenos dias buen dia buenas tardes buenas noches hola buenas hola buenos dias
hola buenas tardes hola buenas noches que tal saludos hi hello hey good morning good afternoon good evening
si sii no ok okay vale listo dale claro de acuerdo bueno va sale correcto entendido yes yep nope sure
menu menu principal inicio volver regresar atras salir opciones ayuda info informacion cancelar
siguiente continuar otro otra mas asesor agente humano persona ventas soporte facturacion
uno dos tres cuatro cinco seis siete ocho nueve diez opcion
adios chao chau bye hasta luego
""".split()) | frozenset(["buenos dias", "buen dia", "buenas tardes", "buenas noches", "hola buenas", "hola buenos dias",
                         "hola buenas tardes", "hola buenas noches", "que tal", "good morning", "good afternoon",
                         "good evening", "de acuerdo", "menu principal", "hasta luego", "opcion 1", "opcion 2",
                         "opcion 3", "opcion 4", "opcion 5", "hola que tal", "hola hola", "ok gracias"])
_model_lock = threading.Lock()
_offline_model: OfflineModel | None = None


@dataclass(frozen=True)
class Sentiment:
    label: str
    score: float
    provider: str

    def as_dict(self) -> dict:
        return {"label": self.label, "score": round(self.score, 4)}


def offline_model() -> OfflineModel:
    """The shipped model, read once per process and shared by every thread."""
    global _offline_model
    if _offline_model is None:
        with _model_lock:
            if _offline_model is None:
                _offline_model = OfflineModel.load(MODEL_PATH)
    return _offline_model


def neutral_by_rule(text: str) -> bool:
    """Greetings, numbers and menu choices say nothing about how the customer feels."""
    words = normalize(text)
    if not words:
        return False
    return words in NEUTRAL_PHRASES or words.replace(" ", "").isdigit() or \
        (words.startswith("opcion ") and words[7:].isdigit())


class SentimentClassifier:
    """The provider chain of one app, with its cache. Cheap to build; the offline model loads on first use."""

    def __init__(self, setting: str, gemini: GeminiSentiment | None = None, cache_size: int = CACHE_SIZE):
        self.setting, self.gemini = setting, gemini
        self.cache = LruCache(cache_size)
        self.gemini_failures = 0
        self.last_gemini_error: str | None = None
        self.gemini_answered_last = True

    @property
    def provider(self) -> str:
        if self.setting == "off":
            return "off"
        if self.setting in ("gemini", "auto") and self.gemini is not None:
            return "gemini"
        return "local"

    def classify(self, text: str | None) -> Sentiment | None:
        """The sentiment of `text`; None when the provider is off or there is no text."""
        if self.setting == "off" or not text or not text.strip():
            return None
        if neutral_by_rule(text):
            return Sentiment("neutral", NEUTRAL_SCORE, "regla")
        key = cache_key(text)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        result = None
        if self.provider == "gemini":
            try:
                result = Sentiment(*self.gemini.classify(text), "gemini")
                self.gemini_answered_last = True
            except GeminiError as error:
                self.gemini_answered_last = False
                self.gemini_failures += 1
                self.last_gemini_error = str(error)
                log.warning("Gemini no clasificó el mensaje; se usa el modelo local: %s", error)
        if result is None:
            result = Sentiment(*offline_model().classify(text), "local")
        self.cache.put(key, result)
        return result

    def status(self) -> dict:
        if self.setting == "off":
            return {"ok": True, "enabled": False, "provider": "off", "reason": "desactivado con SENTIMENT_PROVIDER=off"}
        report = {"ok": True, "enabled": True, "provider": self.provider, "setting": self.setting,
                  "cache": len(self.cache)}
        try:
            model = offline_model()
            report["fallback"] = f"modelo local ({model.meta.get('examples', '?')} ejemplos)"
        except (OSError, ValueError) as error:
            return {**report, "ok": False, "reason": f"no se pudo leer el modelo local {MODEL_PATH.name}: {error}"}
        if self.setting == "gemini" and self.gemini is None:
            report.update(ok=False, reason="SENTIMENT_PROVIDER=gemini necesita GEMINI_API_KEY; se usa el modelo local")
        elif self.provider == "gemini":
            report["model"] = self.gemini.model
            if self.gemini_failures:
                report.update(gemini_failures=self.gemini_failures, last_error=self.last_gemini_error)
            if not self.gemini_answered_last:
                report["reason"] = "Gemini falló en la última consulta; esos mensajes se clasificaron con el modelo local"
        return report


def make_classifier(config, calls=None) -> SentimentClassifier:
    """Built once per app (services.adapters); Gemini only when a key is set, with at most `calls` (a
    services.outside.CallLimit) requests at once."""
    gemini = None
    if config.get("GEMINI_API_KEY") and config["SENTIMENT_PROVIDER"] in ("auto", "gemini"):
        gemini = GeminiSentiment(config["GEMINI_API_KEY"], config["GEMINI_MODEL"], config.get("GEMINI_API_URL"),
                                 config.get("GEMINI_TIMEOUT_SEC", 8.0), calls)
    return SentimentClassifier(config["SENTIMENT_PROVIDER"], gemini)


def classifier() -> SentimentClassifier:
    return current_app.extensions["sentiment"]


def classify(text: str | None) -> Sentiment | None:
    """The sentiment of a text with this app's provider chain."""
    return classifier().classify(text)


def in_memory_tagger():
    """For the drain: a function that tags a customer message (a loaded `Message`, its chat joined) in memory,
    when this app's provider answers in memory (the offline model, or `off`: nothing to tag); None when it is
    remote (Gemini), which is asked in its own job, `tag_message`, never inside the drain's transaction."""
    chain = classifier()
    if chain.setting == "off":
        return lambda message: None
    if chain.provider != "local":
        return None

    def tag(message: Message) -> None:
        result = chain.classify(message.text)
        if result is not None:
            message.sentiment_label, message.sentiment_score = result.label, result.score
            message.chat.last_sentiment = result.label
    return tag


@task("sentiment.tag", queue=OUTSIDE, aliases=("services.sentiment.tag_message",))
def tag_message(message_id: int) -> None:
    """Job: store the sentiment of a customer message (its text, else its transcription) and
    make it the chat's last sentiment unless a later message is already tagged."""
    found = db.session.execute(select(Message.chat_id, Message.direction, Message.text, Message.transcription)
                               .where(Message.id == message_id)).first()
    db.session.commit()  # no transaction stays open while a provider (maybe remote) thinks
    if found is None or found.direction != "in":
        return
    result = classify(found.text or found.transcription)
    if result is None:
        return
    # The chat row first, as the webhook and the pipeline lock it: same order, no deadlock.
    db.session.execute(select(Chat.id).where(Chat.id == found.chat_id).with_for_update())
    db.session.execute(update(Message).where(Message.id == message_id)
                       .values(sentiment_label=result.label, sentiment_score=result.score))
    newer = select(Message.id).where(Message.chat_id == found.chat_id, Message.direction == "in",
                                     Message.id > message_id, Message.sentiment_label.is_not(None)).exists()
    # No chat is loaded here: nothing to synchronise (the default would SELECT the chat first on MariaDB).
    db.session.execute(update(Chat).where(and_(Chat.id == found.chat_id, ~newer)).values(last_sentiment=result.label)
                       .execution_options(synchronize_session=False))
    emit("message", chat_id=found.chat_id, message_id=message_id)
    db.session.commit()
    log.info("sentiment message=%s label=%s score=%.3f provider=%s", message_id, result.label, result.score,
             result.provider)


__all__ = ["LABELS", "Sentiment", "SentimentClassifier", "classify", "classifier", "in_memory_tagger",
           "make_classifier", "tag_message"]
