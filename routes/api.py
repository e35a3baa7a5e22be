"""Operations endpoints: liveness and dependency status."""
from flask import Blueprint, jsonify
from flask_login import login_required

from services.status import dependency_status

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/health")
def health():
    return jsonify(status="ok")


@bp.get("/status")
@login_required
def status():
    report = dependency_status()
    return jsonify(report), 200 if report["ok"] else 503
