"""Meta's webhook (handshake and updates) and Twilio's."""
import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.urls import iri_to_uri

from extensions import csrf, limiter
from services import intake, json_input, metrics, twilio_payload
from services.meta_payload import ParsedUpdate, parse_update
from services.signatures import valid_meta_signature

bp = Blueprint("webhook", __name__)
log = logging.getLogger(__name__)
MACHINE_PREFIXES = ("/webhook",)  # this blueprint's paths: posted by Meta and Twilio, no session (routes.sessions)
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@limiter.request_filter
def _not_rate_limited() -> bool:
    """Meta and Twilio are never rate limited here (no limit names these routes): spare them the limiter's
    per-request work."""
    return request.blueprint == bp.name


def _read(parse, *args) -> ParsedUpdate:
    """The update read to name its kind in the journal. One the parser cannot read is stored raw all the same
    (the drain sets it aside with the error, to be looked at): never a 500, which the sender would retry forever."""
    try:
        return parse(*args)
    except Exception:
        log.exception("webhook update could not be read; stored raw")
        return ParsedUpdate(kinds=["unreadable"])


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
    if not secret and current_app.config["APP_ENV"] == "production":
        metrics.observe_webhook("meta", "unknown", "unsigned")
        return jsonify(error="webhook de Meta desactivado: defina META_APP_SECRET para comprobar sus firmas"), 403
    if secret and not valid_meta_signature(secret, raw, request.headers.get("X-Hub-Signature-256")):
        log.warning("webhook refused: bad signature from %s", request.remote_addr)
        metrics.observe_webhook("meta", "unknown", "invalid_signature")
        return jsonify(error="firma X-Hub-Signature-256 inválida"), 401
    try:
        body = json_input.decode(raw)
        payload = json_input.load(body)
    except json_input.JSONInputError as error:
        metrics.observe_webhook("meta", "unknown", "invalid_json")
        return jsonify(error=str(error)), 400
    if not isinstance(payload, dict):
        metrics.observe_webhook("meta", "unknown", "invalid_json")
        return jsonify(error="se esperaba un objeto JSON"), 400
    try:
        event_id = intake.accept("meta", _read(parse_update, payload), body)
    except OperationalError:
        log.exception("webhook not stored: database unavailable")
        metrics.observe_webhook("meta", "unknown", "database_unavailable")
        return jsonify(error="base de datos no disponible, reintente"), 503
    return jsonify(status="ok", event=event_id)


@bp.post("/webhook/twilio")
@csrf.exempt
def receive_twilio():
    """Twilio's WhatsApp form post: signed with `X-Twilio-Signature` over the URL it requested and the fields."""
    raw = request.get_data(cache=False)
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        body = None
    fields = twilio_payload.read_form(body) if body is not None else {}
    token = current_app.config["TWILIO_AUTH_TOKEN"]
    if not token and current_app.config["APP_ENV"] == "production":
        metrics.observe_webhook("twilio", "unknown", "unsigned")
        return jsonify(error="webhook de Twilio desactivado: defina TWILIO_AUTH_TOKEN para comprobar sus firmas"), 403
    if token and not twilio_payload.valid_signature(token, [request.url, iri_to_uri(request.url)], fields,
                                                    request.headers.get("X-Twilio-Signature")):
        log.warning("twilio webhook refused: bad signature from %s", request.remote_addr)
        metrics.observe_webhook("twilio", "unknown", "invalid_signature")
        return jsonify(error="firma X-Twilio-Signature inválida"), 401
    if not twilio_payload.is_twilio_form(fields):
        metrics.observe_webhook("twilio", "unknown", "invalid_form")
        return jsonify(error="se esperaba un formulario de Twilio con MessageSid y From"), 400
    try:
        intake.accept("twilio", _read(twilio_payload.parse_fields, fields), body)
    except OperationalError:
        log.exception("twilio webhook not stored: database unavailable")
        metrics.observe_webhook("twilio", "unknown", "database_unavailable")
        return jsonify(error="base de datos no disponible, reintente"), 503
    return TWIML_EMPTY, 200, {"Content-Type": "text/xml; charset=utf-8"}
