"""The agents' quick-reply buttons: admins edit them; any signed-in user downloads their files."""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_from_directory, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import Field, StringField, TextAreaField
from wtforms.validators import Length

from extensions import csrf
from routes.guards import admin_required
from services.access import parse_id
from services.quick_replies import (TEXT_MAX, TITLE_MAX, QuickReplyError, create_quick_reply, delete_quick_reply,
                                    get_quick_reply, kind_label, move_quick_reply, quick_replies, quick_reply_media,
                                    update_quick_reply, whatsapp_kind)
from services.rules.media import MB, Upload, accepted_files, largest_upload

bp = Blueprint("quick_replies", __name__, url_prefix="/configuracion/botones")


class IdList(Field):
    """The ids ticked in checkboxes that share this field's name."""

    def process_formdata(self, valuelist):
        self.data = [number for number in map(parse_id, valuelist) if number is not None]


class QuickReplyForm(FlaskForm):
    title = StringField("Título del botón", validators=[
        Length(max=TITLE_MAX, message=f"El título admite hasta {TITLE_MAX} caracteres.")])
    text = TextAreaField("Texto que se envía", validators=[
        Length(max=TEXT_MAX, message=f"El texto admite hasta {TEXT_MAX} caracteres.")])
    files = MultipleFileField("Agregar archivos")
    remove = IdList("Quitar estos archivos")


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_error):
    flash(f"El envío supera el máximo de {largest_upload() // MB} MB; suba archivos más pequeños o de a uno.", "error")
    return redirect(request.path)


def _accept_upload() -> None:
    """Let an admin's POST carry files up to the largest limit, then check its CSRF token (exempted for that)."""
    if request.method == "POST":
        request.max_content_length = largest_upload() + MB
        csrf.protect()


def _uploads(form: QuickReplyForm) -> list[Upload]:
    return [Upload(file.filename, file.stream) for file in form.files.data or () if file and file.filename]


def _render_form(form: QuickReplyForm, reply=None):
    return render_template("quick_replies/form.html", form=form, reply=reply, accepted=accepted_files(),
                           upload_mb=largest_upload() // MB, kind_label=kind_label), 400 if form.errors else 200


def _show_errors(form: QuickReplyForm, error: QuickReplyError) -> None:
    for name, message in error.errors.items():
        form[name].errors = [*form[name].errors, message]


@bp.get("", strict_slashes=False)
@admin_required
def index():
    return render_template("quick_replies/index.html", replies=quick_replies(), kind_label=kind_label)


@bp.route("/nuevo", methods=["GET", "POST"])
@admin_required
@csrf.exempt
def new():
    _accept_upload()
    form = QuickReplyForm()
    if form.validate_on_submit():
        try:
            reply = create_quick_reply(form.title.data, form.text.data, _uploads(form))
        except QuickReplyError as error:
            _show_errors(form, error)
        else:
            flash(f"Botón «{reply.title}» creado.")
            return redirect(url_for(".index", _anchor=f"boton-{reply.id}"))
    return _render_form(form)


@bp.route("/<int:reply_id>/editar", methods=["GET", "POST"])
@admin_required
@csrf.exempt
def edit(reply_id: int):
    reply = get_quick_reply(reply_id) or abort(404)
    _accept_upload()
    form = QuickReplyForm(data={"title": reply.title, "text": reply.text})
    if form.validate_on_submit():
        try:
            update_quick_reply(reply_id, form.title.data, form.text.data, _uploads(form), form.remove.data or ())
        except QuickReplyError as error:
            _show_errors(form, error)
        else:
            flash(f"Botón «{reply.title}» guardado.")
            return redirect(url_for(".index", _anchor=f"boton-{reply_id}"))
    return _render_form(form, reply)


@bp.post("/<int:reply_id>/eliminar")
@admin_required
def remove(reply_id: int):
    try:
        title = delete_quick_reply(reply_id)
    except LookupError:
        abort(404)
    flash(f"Botón «{title}» eliminado.")
    return redirect(url_for(".index"))


@bp.post("/<int:reply_id>/<any(subir, bajar):direction>")
@admin_required
def move(reply_id: int, direction: str):
    try:
        move_quick_reply(reply_id, -1 if direction == "subir" else 1)
    except LookupError:
        abort(404)
    return redirect(url_for(".index", _anchor=f"boton-{reply_id}"))


@bp.get("/media/<int:media_id>")
@login_required
def media(media_id: int):
    record = quick_reply_media(media_id) or abort(404)
    response = send_from_directory(current_app.config["MEDIA_ROOT"], record.path, mimetype=record.mime,
                                   as_attachment=whatsapp_kind(record.mime) == "document",
                                   download_name=record.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
