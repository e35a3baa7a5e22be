"""Prometheus scrape endpoint; open like /api/health (it carries counts, never message content)."""
from flask import Blueprint, Response, current_app

from services import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape():
    try:
        stats = current_app.extensions["jobs"].stats()
        metrics.observe_queue(stats.get("backend", "?"), int(stats.get("pending", 0)), int(stats.get("failed", 0)))
    except Exception as error:  # an unreachable Redis must not hide every other metric
        current_app.logger.warning("metrics: job queue stats unavailable: %s", error)
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)
