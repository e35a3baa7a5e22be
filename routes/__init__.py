"""One blueprint per area."""
from flask import abort, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from routes.security import add_security_headers
from routes.sessions import PeopleSessions
from services.access import MAX_ID, parse_id
from services.texts import LANGUAGES, for_scripts, texts_for

JSON_PREFIXES = ("/webhook", "/api", "/export")


def ui_texts() -> dict:
    """For every template: `t`, the UI texts in the browser's language (Spanish unless another is available),
    and `script_texts()`, the part of them that base.html puts in the #ui-texts blob for the scripts."""
    texts = texts_for(request.accept_languages.best_match(LANGUAGES) if has_request_context() else None)
    return {"t": texts, "script_texts": lambda: for_scripts(texts)}


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` that does not match a number above MAX_ID: such an id cannot exist, so the URL is a 404
    instead of an overflow in the database driver."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def id_arg(name: str) -> int | None:
    """Query parameter `name` as a database id (None when absent or empty); any other value is a 400."""
    raw = request.args.get(name, "")
    if raw == "":
        return None
    value = parse_id(raw)
    if value is None:
        abort(400, description=f"El parámetro «{name}» debe ser un número (de 0 a {MAX_ID}); "
                               f"se recibió «{raw[:40]}».")
    return value


def register_blueprints(app) -> None:
    # Before any rule is added: every blueprint's <int:...> gets the bound.
    app.url_map.converters["int"] = DatabaseIdConverter
    from routes import api, auth, chat, config, export, quick_replies, roles, sandbox, webhook
    from routes import metrics, tablero, webhook_events
    for module in (auth, webhook, api, export, chat, config, sandbox, roles, quick_replies, tablero, metrics,
                   webhook_events):
        app.register_blueprint(module.bp)
    app.after_request(add_security_headers)
    app.session_interface = PeopleSessions(webhook.MACHINE_PREFIXES)
    app.context_processor(ui_texts)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if request.path.startswith(JSON_PREFIXES):
            message = "el cuerpo supera el máximo de 3 MB" if error.code == 413 else error.description
            return jsonify(error=message), error.code
        return error
