"""The agents' panel: chat list, conversation, replies, actions, live updates and media."""
from datetime import datetime

from flask import (Blueprint, Response, abort, current_app, jsonify, render_template, request,
                   send_file)
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

from extensions import db
from routes import id_arg
from services import agent, live
from services.access import chat_for, parse_id
from services.panel import (CHAT_PAGE, MESSAGE_PAGE, ChatFilter, chat_summary, list_chats, media_file,
                            message_in_chat, messages_after, messages_page, roles_to_filter)
from services.quick_replies import list_quick_replies
from services.rules.media import MB, Upload, accepted_files, largest_upload

bp = Blueprint("chat", __name__)
# Shown in the page; anything else is downloaded, never rendered as a page of this site.
INLINE_TYPES = ("audio/", "video/", "image/png", "image/jpeg", "image/gif", "image/webp")


@bp.url_value_preprocessor
def _larger_body_for_attachments(endpoint, values):
    # Runs before the CSRF check reads the form, so an attachment up to the largest limit gets through.
    if endpoint == "chat.attach":
        request.max_content_length = largest_upload() + MB


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_error):
    limit = request.max_content_length or current_app.config["MAX_CONTENT_LENGTH"]
    if request.endpoint == "chat.attach":
        return jsonify(error=f"El archivo supera el máximo de {largest_upload() // MB} MB."), 413
    return jsonify(error=f"El envío supera el máximo de {max(limit // MB, 1)} MB."), 413


@bp.errorhandler(CSRFError)
def _csrf(_error):
    return jsonify(error="Token CSRF ausente o inválido: recargue la página e inténtelo de nuevo."), 400


def _chat_or_404(chat_id: int):
    chat = chat_for(current_user, chat_id)
    if chat is None:
        abort(404, description="Ese chat no existe o no tiene acceso a él.")
    return chat


def _filter_from_args() -> ChatFilter:
    before = None
    if request.args.get("antes"):
        try:
            at, chat_id = request.args["antes"].rsplit("|", 1)
            before = (datetime.fromisoformat(at.rstrip("Z")), parse_id(chat_id))
        except ValueError:
            before = None
        if before is None or before[1] is None:
            abort(400, description="Parámetro 'antes' inválido.")
    return ChatFilter(query=request.args.get("q", "").strip()[:100], role_id=id_arg("rol"),
                      state=request.args.get("estado") or None, before=before)


def _panel(selected=None, messages=()):
    chat_filter = _filter_from_args()
    chats = [chat_summary(chat) for chat in list_chats(current_user, chat_filter)]
    roles = roles_to_filter(current_user)
    return render_template("chats/panel.html", chats=chats, filter=chat_filter, roles=roles, selected=selected,
                           messages=list(messages), quick_replies=list_quick_replies(),
                           attachment_limits=accepted_files(), chat_page=CHAT_PAGE,
                           message_page=MESSAGE_PAGE)


@bp.get("/")
@login_required
def index():
    return _panel()


@bp.get("/chats/<int:chat_id>")
@login_required
def show(chat_id):
    chat = _chat_or_404(chat_id)
    return _panel(chat_summary(chat), messages_page(chat.id))


@bp.get("/api/chats")
@login_required
def chats_json():
    chats = list_chats(current_user, _filter_from_args())
    return jsonify(chats=[chat_summary(chat) for chat in chats])


@bp.get("/api/chats/<int:chat_id>")
@login_required
def chat_json(chat_id):
    return jsonify(chat_summary(_chat_or_404(chat_id)))


@bp.get("/api/chats/<int:chat_id>/mensajes")
@login_required
def messages_json(chat_id):
    chat = _chat_or_404(chat_id)
    after = id_arg("despues")
    if after is not None:
        return jsonify(messages=messages_after(chat.id, after))
    return jsonify(messages=messages_page(chat.id, id_arg("antes")))


@bp.get("/api/chats/<int:chat_id>/mensajes/<int:message_id>")
@login_required
def message_json(chat_id, message_id):
    chat = _chat_or_404(chat_id)
    view = message_in_chat(chat.id, message_id)
    if view is None:
        abort(404, description="Ese mensaje no existe en este chat.")
    return jsonify(view)


def _fields():
    """The request's fields: its JSON object, or its form; a JSON body that is not an object, or not JSON this
    app reads (services.json_input), is a 400."""
    if not request.is_json:
        return request.form
    data = request.get_json(silent=True)
    if isinstance(data, dict):
        return data
    abort(400, description="El cuerpo debe ser un objeto JSON válido.")


def _action_result(chat):
    db.session.commit()
    return jsonify(ok=True, chat=chat_summary(chat))


@bp.post("/api/chats/<int:chat_id>/mensajes")
@login_required
def send(chat_id):
    chat = _chat_or_404(chat_id)
    data = _fields()
    try:
        message = agent.reply_with_fields(chat, current_user.id, data)
    except agent.ActionError as error:
        db.session.rollback()
        return jsonify(error=str(error)), 400
    return jsonify(ok=True, message_id=message.id), 201


@bp.post("/api/chats/<int:chat_id>/adjunto")
@login_required
def attach(chat_id):
    """An agent's file (multipart `archivo`, optional `texto`), sent as image, document, audio or video."""
    chat = _chat_or_404(chat_id)
    file = request.files.get("archivo")
    if file is None or not file.filename:
        return jsonify(error="Elija un archivo para adjuntar."), 400
    try:
        message = agent.send_attachment(chat, current_user.id, Upload(file.filename, file.stream),
                                        request.form.get("texto"))
    except agent.ActionError as error:
        db.session.rollback()
        return jsonify(error=str(error)), 400
    return jsonify(ok=True, message_id=message.id), 201


@bp.post("/api/chats/<int:chat_id>/respuesta-rapida")
@login_required
def quick_reply(chat_id):
    chat = _chat_or_404(chat_id)
    data = _fields()
    quick_reply_id = parse_id(data.get("id"))
    if not quick_reply_id:
        return jsonify(error="Indique qué respuesta rápida enviar: el campo «id» debe ser su número."), 400
    try:
        messages = agent.send_quick_reply(chat, current_user.id, quick_reply_id)
    except agent.ActionError as error:
        db.session.rollback()
        return jsonify(error=str(error)), 400
    return jsonify(ok=True, message_ids=[m.id for m in messages]), 201


@bp.post("/api/chats/<int:chat_id>/tomar")
@login_required
def take_over(chat_id):
    chat = _chat_or_404(chat_id)
    agent.take_over(chat, current_user.id)
    return _action_result(chat)


@bp.post("/api/chats/<int:chat_id>/devolver")
@login_required
def hand_back(chat_id):
    chat = _chat_or_404(chat_id)
    agent.hand_back(chat)
    return _action_result(chat)


@bp.post("/api/chats/<int:chat_id>/cerrar")
@login_required
def close(chat_id):
    chat = _chat_or_404(chat_id)
    agent.close_chat(chat)
    return _action_result(chat)


@bp.post("/api/chats/<int:chat_id>/leido")
@login_required
def read(chat_id):
    chat = _chat_or_404(chat_id)
    agent.mark_read(chat)
    return jsonify(ok=True, chat=chat_summary(chat))


@bp.post("/api/chats/<int:chat_id>/alias")
@login_required
def alias(chat_id):
    chat = _chat_or_404(chat_id)
    data = _fields()
    try:
        agent.set_alias(chat, data.get("alias"))
    except agent.ActionError as error:
        return jsonify(error=str(error)), 400
    return _action_result(chat)


@bp.post("/api/chats/<int:chat_id>/roles")
@login_required
def roles(chat_id):
    chat = _chat_or_404(chat_id)
    if not current_user.is_admin:
        abort(403, description="Solo un administrador cambia los roles de un chat.")
    data = _fields() if request.is_json else {}
    raw = data.get("roles", [])
    role_ids = [parse_id(value) for value in raw] if isinstance(raw, list) else [None]
    if None in role_ids:
        return jsonify(error="El campo «roles» debe ser una lista de números de rol, por ejemplo [1, 3]."), 400
    try:
        agent.set_roles(chat, role_ids)
    except agent.ActionError as error:
        return jsonify(error=str(error)), 400
    return _action_result(chat)


@bp.get("/media/<int:message_id>")
@login_required
def media(message_id):
    found = media_file(current_user, message_id)
    if found is None:
        abort(404, description="Ese archivo no existe o no tiene acceso a él.")
    path, mime, name = found
    inline = bool(mime) and mime.startswith(INLINE_TYPES)
    response = send_file(path, mimetype=mime or "application/octet-stream", as_attachment=not inline,
                         download_name=name, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/eventos")
@login_required
def events():
    """Server-Sent Events: every change to a chat this user may see, as it happens (services.live).
    `?comprobar=1` only tells whether a stream may open now: 200, or 429 when the user has the maximum."""
    app = current_app._get_current_object()
    limit = app.config["LIVE_STREAMS_PER_USER"]
    if request.args.get("comprobar"):
        in_use = live.stream_slots_in_use(app, current_user.id)
        if in_use < limit:
            return jsonify(abiertas=in_use, maximo=limit)
        stream = None
    else:
        stream = live.open_stream(app, current_user.id)
    if stream is None:
        return jsonify(error=live.over_limit_message(limit), maximo=limit), 429, {"Retry-After": "30"}
    return Response(stream, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
