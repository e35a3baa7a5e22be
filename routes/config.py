"""Admin configuration: the bot's rules (list, form, order, `.xlsx` import/export, the flow drawn)."""
import io
from datetime import date

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request, send_file,
                   send_from_directory, url_for)
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import BooleanField, SelectChoice, SelectField, StringField, TextAreaField

from extensions import csrf
from models.rule import RULE_TYPES
from routes.guards import admin_required
from services.access import parse_id
from services.rules import (COLUMNS, RuleError, Upload, create_rule, delete_rule, draw_flow,
                            export_rules, flow_graph, get_rule, import_rules, known_handler_names, move_rule,
                            reorder_rules, rules_by_step, step_names, update_rule)
from services.rules.media import largest_upload, upload_limits
from services.rules.sheet import MAX_IMPORT_BYTES

bp = Blueprint("config", __name__, url_prefix="/configuracion")
MB = 1024 * 1024
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TIPO_LABELS = {"texto": "Texto", "lista": "Lista de opciones", "botones": "Botones de respuesta", "imagen": "Imagen",
               "documento": "Documento", "audio": "Audio", "video": "Video"}


class RuleForm(FlaskForm):
    step = StringField("Paso (step)")
    input_text = StringField("Entradas aceptadas (input_text)")
    respuesta = TextAreaField("Respuesta")
    tipo = SelectField("Tipo", choices=[SelectChoice(t, TIPO_LABELS[t]) for t in RULE_TYPES], validate_choice=False)
    opciones = TextAreaField("Opciones (separadas por |)")
    siguiente_step = StringField("Paso siguiente (siguiente_step)")
    prioridad = StringField("Prioridad", default="1")
    avanzar = BooleanField("Avanzar: seguir al paso siguiente sin esperar respuesta")
    rol_keyword = StringField("Rol que atiende el chat (rol_keyword)")
    handler = StringField("Handler")
    calculo = TextAreaField("Parámetros del handler (calculo)")
    media_url = StringField("URL del archivo (media_url)")
    archivo = FileField("O suba un archivo")
    quitar_archivo = BooleanField("Quitar el archivo actual")


class ImportForm(FlaskForm):
    archivo = FileField("Archivo .xlsx")
    merge = BooleanField("Agregar a las reglas actuales (si no se marca, las reemplaza)")


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_error):
    flash("El archivo es demasiado grande para enviarlo; revise los máximos indicados en el formulario.", "error")
    return redirect(request.path)


def _accept_upload(max_bytes: int) -> None:
    """Let this POST carry a file of up to `max_bytes`, then check its CSRF token (exempted above for that)."""
    if request.method == "POST":
        request.max_content_length = max_bytes + MB
        csrf.protect()


def _upload(field) -> Upload | None:
    file = field.data
    return Upload(file.filename, file.stream) if file and file.filename else None


def _show_errors(form: FlaskForm, error: RuleError) -> None:
    for name, message in error.errors.items():
        form[name].errors = [*form[name].errors, message]


def _render_form(form: RuleForm, rule=None):
    page = render_template("config/rule_form.html", form=form, rule=rule, steps=sorted(step_names()),
                           handlers=sorted(known_handler_names()), limits=upload_limits())
    return page, 400 if form.errors else 200


@bp.get("/reglas")
@admin_required
def rules():
    return render_template("config/rules.html", groups=rules_by_step(),
                           initial_step=current_app.config["INITIAL_STEP"])


@bp.route("/reglas/nueva", methods=["GET", "POST"])
@csrf.exempt
@admin_required
def new_rule():
    _accept_upload(largest_upload())
    form = RuleForm()
    if form.validate_on_submit():
        try:
            rule = create_rule({name: form[name].data for name in COLUMNS}, _upload(form.archivo))
        except RuleError as error:
            _show_errors(form, error)
        else:
            flash(f"Regla creada en el paso {rule.step}.")
            return redirect(url_for(".rules", _anchor=f"regla-{rule.id}"))
    return _render_form(form)


@bp.route("/reglas/<int:rule_id>/editar", methods=["GET", "POST"])
@csrf.exempt
@admin_required
def edit_rule(rule_id: int):
    rule = get_rule(rule_id) or abort(404)
    _accept_upload(largest_upload())
    form = RuleForm(obj=rule)
    if form.validate_on_submit():
        try:
            update_rule(rule_id, {name: form[name].data for name in COLUMNS}, _upload(form.archivo),
                        remove_media=form.quitar_archivo.data)
        except RuleError as error:
            _show_errors(form, error)
        else:
            flash("Regla guardada.")
            return redirect(url_for(".rules", _anchor=f"regla-{rule_id}"))
    return _render_form(form, rule)


@bp.post("/reglas/<int:rule_id>/eliminar")
@admin_required
def remove_rule(rule_id: int):
    try:
        delete_rule(rule_id)
    except LookupError:
        abort(404)
    except RuleError as error:
        flash(f"No se eliminó la regla {rule_id}: {error.errors['step']}", "error")
        return redirect(url_for(".rules", _anchor=f"regla-{rule_id}"))
    flash("Regla eliminada.")
    return redirect(url_for(".rules"))


@bp.post("/reglas/<int:rule_id>/<any(subir, bajar):direction>")
@admin_required
def move(rule_id: int, direction: str):
    try:
        move_rule(rule_id, -1 if direction == "subir" else 1)
    except LookupError:
        abort(404)
    return redirect(url_for(".rules", _anchor=f"regla-{rule_id}"))


@bp.post("/reglas/ordenar")
@admin_required
def reorder():
    ids = [parse_id(value) for value in request.form.getlist("ids")]
    if None in ids:
        abort(400, description="El orden debe ser una lista de números de regla.")
    try:
        reorder_rules(request.form.get("step", ""), ids)
    except RuleError as error:
        flash(error.errors["prioridad"], "error")
    return redirect(url_for(".rules"))


@bp.get("/reglas/<int:rule_id>/archivo/<int:media_id>")
@admin_required
def rule_file(rule_id: int, media_id: int):
    rule = get_rule(rule_id) or abort(404)
    media = next((m for m in rule.media if m.id == media_id), None) or abort(404)
    return send_from_directory(current_app.config["MEDIA_ROOT"], media.path, mimetype=media.mime,
                               as_attachment=True, download_name=media.filename)


@bp.route("/reglas/importar", methods=["GET", "POST"])
@csrf.exempt
@admin_required
def import_sheet():
    _accept_upload(MAX_IMPORT_BYTES)
    form, report = ImportForm(), None
    if form.validate_on_submit():
        if not (form.archivo.data and form.archivo.data.filename):
            form.archivo.errors = ["Elija un archivo .xlsx."]
        else:
            report = import_rules(form.archivo.data.stream, merge=form.merge.data)
    failed = bool(form.errors) or (report is not None and not report.ok)
    return render_template("config/import.html", form=form, report=report,
                           max_mb=MAX_IMPORT_BYTES // MB), 400 if failed else 200


@bp.get("/reglas/exportar")
@admin_required
def export_sheet():
    buffer = io.BytesIO()
    export_rules(buffer)
    buffer.seek(0)
    return send_file(buffer, mimetype=XLSX_MIME, as_attachment=True,
                     download_name=f"reglas-{date.today().isoformat()}.xlsx")


@bp.get("/reglas/flujo")
@admin_required
def flow():
    drawing = draw_flow(flow_graph(), current_app.config["INITIAL_STEP"])
    return render_template("config/flow.html", drawing=drawing)
