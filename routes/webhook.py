"""Meta's webhook: handshake and updates."""
import json
import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import OperationalError

from extensions import csrf
from services import intake, metrics
from services.signatures import valid_meta_signature

bp = Blueprint("webhook", __name__)
log = logging.getLogger(__name__)


@bp.get("/webhook")
def verify():
    token = current_app.config["VERIFY_TOKEN"]
    if (request.args.get("hub.mode") == "subscribe" and token
            and request.args.get("hub.verify_token") == token):
        return request.args.get("hub.challenge", ""), 200, {"Content-Type": "text/plain"}
    return "verificación rechazada", 403, {"Content-Type": "text/plain; charset=utf-8"}


@bp.post("/webhook")
@csrf.exempt
def receive():
    raw = request.get_data(cache=False)
    secret = current_app.config["META_APP_SECRET"]
    if secret and not valid_meta_signature(secret, raw, request.headers.get("X-Hub-Signature-256")):
        log.warning("webhook refused: bad signature from %s", request.remote_addr)
        metrics.observe_webhook("meta", "unknown", "invalid_signature")
        return jsonify(error="firma X-Hub-Signature-256 inválida"), 401
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        metrics.observe_webhook("meta", "unknown", "invalid_json")
        return jsonify(error="el cuerpo no es JSON válido"), 400
    if not isinstance(payload, dict):
        metrics.observe_webhook("meta", "unknown", "invalid_json")
        return jsonify(error="se esperaba un objeto JSON"), 400
    try:
        event_id = intake.accept_meta(payload, raw.decode("utf-8"))
    except OperationalError:
        log.exception("webhook not stored: database unavailable")
        metrics.observe_webhook("meta", "unknown", "database_unavailable")
        return jsonify(error="base de datos no disponible, reintente"), 503
    return jsonify(status="ok", event=event_id)
