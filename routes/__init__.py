"""One blueprint per area."""
from flask import has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException

from routes.security import add_security_headers
from routes.sessions import PeopleSessions
from services.texts import LANGUAGES, for_scripts, texts_for

JSON_PREFIXES = ("/webhook", "/api", "/export")


def ui_texts() -> dict:
    """For every template: `t`, the UI texts in the browser's language (Spanish unless another is available),
    and `script_texts()`, the part of them that base.html puts in the #ui-texts blob for the scripts."""
    texts = texts_for(request.accept_languages.best_match(LANGUAGES) if has_request_context() else None)
    return {"t": texts, "script_texts": lambda: for_scripts(texts)}


def register_blueprints(app) -> None:
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
