"""The dashboard page and the JSON behind each of its charts."""
from flask import Blueprint, abort, jsonify, render_template, request
from flask_login import current_user, login_required

from extensions import db
from models import Role
from services.analytics import CHARTS, FilterError, parse_filters

bp = Blueprint("tablero", __name__, url_prefix="/tablero")


@bp.get("")
@login_required
def page():
    roles = db.session.scalars(db.select(Role).order_by(Role.name)).all() if current_user.is_admin \
        else sorted(current_user.roles, key=lambda role: role.name)
    try:
        filters = parse_filters(request.args, current_user)
    except FilterError as error:
        abort(400, description=str(error))
    return render_template("tablero/index.html", roles=roles, filters=filters.as_dict(), charts=list(CHARTS))


@bp.get("/api/<chart>")
@login_required
def chart_data(chart):
    build = CHARTS.get(chart)
    if build is None:
        return jsonify(error=f"No existe el gráfico «{chart}».", graficos=list(CHARTS)), 404
    try:
        filters = parse_filters(request.args, current_user)
    except FilterError as error:
        return jsonify(error=str(error)), 400
    return jsonify(filtros=filters.as_dict(), **build(filters))
