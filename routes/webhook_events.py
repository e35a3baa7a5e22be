"""Admin: the webhook updates the drain set aside (whole, or some of their parts), and replaying them."""
from flask import Blueprint, flash, redirect, render_template, url_for

from routes.guards import admin_required
from services import intake
from services.texts import ES

bp = Blueprint("webhook_events", __name__, url_prefix="/configuracion/webhooks")


@bp.get("", strict_slashes=False)
@admin_required
def index():
    return render_template("config/webhook_events.html", events=intake.set_aside())


@bp.post("/<int:event_id>/reintentar")
@admin_required
def replay(event_id: int):
    flash(ES["events_requeued"].format(count=intake.replay([event_id])))
    return redirect(url_for("webhook_events.index"))


@bp.post("/reintentar")
@admin_required
def replay_all():
    flash(ES["events_requeued"].format(count=intake.replay()))
    return redirect(url_for("webhook_events.index"))
