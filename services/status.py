"""What each dependency is doing: ok, or the reason it is not."""

from flask import current_app
from sqlalchemy import text

from extensions import db

STUCK_SECONDS = 300  # an update waiting this long in the intake journal means no drainer is running


def _database() -> dict:
    try:
        db.session.execute(text("SELECT 1"))
        return {"ok": True, "engine": db.engine.dialect.name}
    except Exception as error:  # any driver error is a status to report, not to raise
        db.session.rollback()
        return {"ok": False, "reason": f"{type(error).__name__}: {str(error)[:200]}"}


def _jobs() -> dict:
    jobs = current_app.extensions["jobs"]
    try:
        return {"ok": True, **jobs.stats()}
    except Exception as error:
        return {"ok": False, "backend": current_app.config["JOBS_BACKEND"], "reason": str(error)[:200]}


def _intake() -> dict:
    """The webhook journal: updates waiting to be stored, and how long the oldest has waited."""
    from services.intake import backlog
    try:
        waiting, oldest_seconds = backlog()
    except Exception as error:
        db.session.rollback()
        return {"ok": False, "reason": f"{type(error).__name__}: {str(error)[:200]}"}
    stuck = oldest_seconds is not None and oldest_seconds > STUCK_SECONDS
    return {"ok": not stuck, "pending": waiting, "oldest_pending_seconds": oldest_seconds,
            **({"reason": f"la actualización más antigua espera hace {oldest_seconds} s"} if stuck else {})}


def _transport() -> dict:
    config = current_app.config
    if config["WHATSAPP_TRANSPORT"] == "sandbox":
        return {"ok": True, "name": "sandbox", "detail": "entrega simulada en /simulador"}
    missing = [name for name in ("META_TOKEN", "PHONE_NUMBER_ID") if not config[name]]
    return {"ok": not missing, "name": "cloud", "graph": config["GRAPH_API_URL"],
            **({"reason": "falta " + ", ".join(missing)} if missing else {})}


def _speech() -> dict:
    from services.transcription import speech_status
    return speech_status(current_app.config["VOSK_MODEL_PATH"])


def _sentiment() -> dict:
    return current_app.extensions["sentiment"].status()


def dependency_status() -> dict:
    checks = {"database": _database(), "jobs": _jobs(), "intake": _intake(), "transport": _transport(), "speech": _speech(),
              "sentiment": _sentiment()}
    return {"ok": all(check["ok"] for check in checks.values()), **checks}
