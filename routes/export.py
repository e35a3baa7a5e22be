"""Conversation exports: one conversation (JSON, CSV) or every visible conversation in a date range (CSV, ZIP)."""
from flask import Blueprint, Response, abort, request, stream_with_context
from flask_login import current_user, login_required

from services.access import chat_by_number_for
from services.analytics import FilterError, parse_filters
from services.exports import conversation_csv, conversation_json, file_stem, range_csv, range_zip

bp = Blueprint("export", __name__, url_prefix="/export")
CSV_TYPE = "text/csv; charset=utf-8"


def _chat_or_404(numero: str):
    chat = chat_by_number_for(current_user, numero)
    if chat is None:
        abort(404, description=f"No hay conversación con el número {numero}.")
    return chat


def _range_filters():
    try:
        return parse_filters(request.args, current_user)
    except FilterError as error:
        abort(400, description=str(error))


def _attachment(name: str) -> dict:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@bp.get("/conversation/<numero>.csv")
@login_required
def conversation_as_csv(numero):
    chat = _chat_or_404(numero)
    return Response(stream_with_context(conversation_csv(chat)), mimetype=CSV_TYPE,
                    headers=_attachment(f"conversacion-{file_stem(chat)}.csv"))


@bp.get("/conversation/<numero>")
@login_required
def conversation_as_json(numero):
    chat = _chat_or_404(numero)
    return Response(stream_with_context(conversation_json(chat)), mimetype="application/json")


@bp.get("/conversaciones.csv")
@login_required
def conversations_csv():
    filters = _range_filters()
    return Response(stream_with_context(range_csv(filters)), mimetype=CSV_TYPE,
                    headers=_attachment(f"conversaciones-{filters.desde}-{filters.hasta}.csv"))


@bp.get("/conversaciones.zip")
@login_required
def conversations_zip():
    filters = _range_filters()
    return Response(stream_with_context(range_zip(filters)), mimetype="application/zip",
                    headers=_attachment(f"conversaciones-{filters.desde}-{filters.hasta}.zip"))
