"""The simulator (`/simulador`): a customer typed in the browser, answered by the bot and the agents."""
import json
import logging
from functools import wraps

from flask import Blueprint, abort, current_app, jsonify, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from services import simulator
from services.simulator import SimulatorError

bp = Blueprint("sandbox", __name__)
log = logging.getLogger(__name__)

# Room for a 16 MB audio plus the multipart envelope; a bigger body is cut off before it is read.
UPLOAD_BODY_LIMIT = simulator.AUDIO_MAX_BYTES + 1024 * 1024
# Media shown inline; anything else is downloaded (never rendered as a page of this site).
INLINE_TYPES = ("audio/", "video/", "image/png", "image/jpeg", "image/gif", "image/webp")


@bp.url_value_preprocessor
def _larger_body_for_uploads(endpoint, values):
    # Runs before the app's before_request hooks, so CSRF (which reads the form) already sees this limit.
    if endpoint == "sandbox.send":
        request.max_content_length = UPLOAD_BODY_LIMIT


def _error(message: str, status: int = 400):
    return jsonify(ok=False, error=message), status


@bp.errorhandler(HTTPException)
def _json_errors(error: HTTPException):
    """The simulator's JSON endpoints answer errors as JSON in Spanish; the page keeps Flask's."""
    if request.endpoint in ("sandbox.page", "sandbox.media"):
        return error
    if isinstance(error, CSRFError):
        return _error("Token CSRF ausente o inválido: recargue la página e inténtelo de nuevo.", 400)
    if error.code == 413:
        return _error(f"El envío supera el máximo de {simulator.AUDIO_MAX_BYTES // (1024 * 1024)} MB.", 413)
    return _error(error.description or error.name, error.code or 500)


def json_login_required(view):
    """Like login_required, but a fetch() gets a 401 JSON instead of the login page."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return _error("Sesión expirada: inicie sesión de nuevo.", 401)
        return view(*args, **kwargs)
    return wrapper


def _media_url(message_id: int) -> str:
    return url_for("sandbox.media", message_id=message_id)


@bp.get("/simulador")
@login_required
def page():
    enabled = current_app.config.get("WHATSAPP_TRANSPORT") == "sandbox"
    return render_template("sandbox/simulator.html", numero=simulator.default_number(current_user.id),
                           enabled=enabled, audio_types=",".join(sorted(simulator.AUDIO_EXTENSIONS)),
                           audio_max_mb=simulator.audio_limit() // (1024 * 1024))


def _body() -> tuple[dict, object]:
    """(fields, audio file) from a JSON or form/multipart request."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise SimulatorError("El cuerpo no es un objeto JSON válido.")
        return data, None
    data = {key: request.form.get(key) for key in ("numero", "text", "reply", "message_id") if key in request.form}
    if isinstance(data.get("reply"), str):
        try:
            data["reply"] = json.loads(data["reply"])
        except ValueError:
            raise SimulatorError("reply debe ser un objeto JSON {kind, id, title}.") from None
    return data, request.files.get("audio")


def _send(data: dict, audio) -> str:
    numero = data.get("numero")
    if numero in (None, ""):
        numero = simulator.default_number(current_user.id)
    given = [name for name, value in (("text", data.get("text")), ("reply", data.get("reply")), ("audio", audio))
             if value not in (None, "")]
    if len(given) != 1:
        raise SimulatorError("Envíe un mensaje de texto, una opción elegida (reply) o un archivo de audio: "
                             "exactamente uno." if given else "Escriba un mensaje: el texto está vacío.")
    who = {"user_id": current_user.id, "is_admin": current_user.is_admin}
    if given[0] == "text":
        return simulator.send_text(numero, data["text"], **who)
    if given[0] == "reply":
        reply = data["reply"]
        if not isinstance(reply, dict):
            raise SimulatorError("reply debe ser un objeto {kind, id, title}.")
        return simulator.send_reply(numero, reply.get("kind"), reply.get("id"), reply.get("title"),
                                    reply.get("description"), reply.get("message_id", data.get("message_id")), **who)
    if not audio.filename:
        raise SimulatorError("Elija un archivo de audio.")
    return simulator.send_audio(numero, audio.stream, audio.filename, **who)


@bp.post("/simulador/enviar")
@json_login_required
def send():
    try:
        data, audio = _body()
        wamid = _send(data, audio)
    except SimulatorError as error:
        return _error(error.message, error.status)
    except OperationalError:
        log.exception("simulator message not stored: database unavailable")
        return _error("Base de datos no disponible; inténtelo de nuevo.", 503)
    return jsonify(ok=True, wamid=wamid)


@bp.post("/simulador/leido")
@json_login_required
def mark_read():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _error("El cuerpo no es un objeto JSON válido.")
    try:
        count = simulator.report_read(data.get("numero"), data.get("ids"), user_id=current_user.id,
                                      is_admin=current_user.is_admin)
    except SimulatorError as error:
        return _error(error.message, error.status)
    return jsonify(ok=True, read=count)


@bp.get("/simulador/mensajes")
@json_login_required
def messages():
    numero = request.args.get("numero") or simulator.default_number(current_user.id)
    try:
        answer = simulator.messages_after(numero, request.args.get("despues", 0), request.args.get("cambios"),
                                          media_url=_media_url, user_id=current_user.id,
                                          is_admin=current_user.is_admin)
    except SimulatorError as error:
        return _error(error.message, error.status)
    return jsonify(ok=True, **answer)


@bp.get("/simulador/media/<int:message_id>")
@login_required
def media(message_id: int):
    """A simulated chat's local file (the customer's audio, the bot's uploaded media), only from MEDIA_ROOT."""
    try:
        found = simulator.media_file(message_id, user_id=current_user.id, is_admin=current_user.is_admin)
    except SimulatorError as error:
        abort(error.status, description=error.message)
    if found is None:
        abort(404)
    path, mime = found
    mime = (mime or "application/octet-stream").split(";")[0].strip().lower()
    inline = mime.startswith(INLINE_TYPES)
    response = send_file(path, mimetype=mime if inline else "application/octet-stream", as_attachment=not inline,
                         download_name=path.name, conditional=True, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response
