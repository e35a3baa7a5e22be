"""In production no webhook is stored without its signature being checked."""
import json
from urllib.parse import urlencode

from sqlalchemy import func, select

from extensions import db
from models import Message, WebhookEvent
from tests.conftest import text_payload

TWILIO_FORM = urlencode({"MessageSid": "SMprod0001", "SmsMessageSid": "SMprod0001", "AccountSid": "AC1",
                         "From": "whatsapp:+31612345678", "To": "whatsapp:+14123456789", "Body": "hola",
                         "NumMedia": "0", "SmsStatus": "received"})


def stored(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_unsigned_twilio_webhook_is_refused_in_production_without_auth_token(make_app):
    app = make_app(APP_ENV="production", TWILIO_AUTH_TOKEN=None)
    response = app.test_client().post("/webhook/twilio", data=TWILIO_FORM,
                                      content_type="application/x-www-form-urlencoded")
    assert response.status_code == 403 and "TWILIO_AUTH_TOKEN" in response.get_json()["error"]
    assert stored(app, WebhookEvent) == 0 and stored(app, Message) == 0


def test_unsigned_twilio_webhook_is_accepted_in_development_without_auth_token(make_app):
    app = make_app(APP_ENV="development", TWILIO_AUTH_TOKEN=None)
    response = app.test_client().post("/webhook/twilio", data=TWILIO_FORM,
                                      content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and stored(app, WebhookEvent) == 1


def test_unsigned_meta_webhook_is_refused_in_production_without_app_secret(make_app):
    """Without META_TOKEN (sandbox) production may start without META_APP_SECRET, but stores no unsigned update."""
    app = make_app(APP_ENV="production", META_APP_SECRET=None, META_TOKEN=None)
    response = app.test_client().post("/webhook", data=json.dumps(text_payload("wamid.PROD")),
                                      content_type="application/json")
    assert response.status_code == 403 and "META_APP_SECRET" in response.get_json()["error"]
    assert stored(app, WebhookEvent) == 0 and stored(app, Message) == 0
