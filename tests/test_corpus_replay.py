"""Every real Meta payload of the shared corpus, posted signed twice, is stored exactly once."""
import json

import pytest
from sqlalchemy import select

from extensions import db
from models import Chat, Message, MessageStatusEvent, WebhookEvent
from tests.conftest import CORPUS, post_webhook, wait_for_jobs

FILES = sorted((CORPUS / "meta" / "webhooks").glob("*.json"))


def changes(payload):
    for entry in payload["entry"]:
        for change in entry["changes"]:
            yield change["field"], change["value"]


def all_messages(payload):
    return [(m, "in") for field, value in changes(payload) for m in value.get("messages", [])] + \
        [(m, "out") for field, value in changes(payload) for m in value.get("message_echoes", [])]


def expected_messages(payload):
    """Every message whose customer number is digits: documentation examples with placeholders such as
    `<WHATSAPP_USER_PHONE_NUMBER>` are set aside, not stored."""
    return [(m, direction) for m, direction in all_messages(payload)
            if m.get("from" if direction == "in" else "to", "").isdigit()]


def expected_set_aside(payload):
    contacts = [c for field, value in changes(payload) for c in value.get("contacts", [])]
    return len(all_messages(payload)) - len(expected_messages(payload)) + \
        sum(1 for c in contacts if not str(c.get("wa_id", "")).isdigit())


def expected_statuses(payload):
    return [s for field, value in changes(payload) if field == "messages" for s in value.get("statuses", [])]


def stored(app, model, **filters):
    with app.app_context():
        rows = db.session.scalars(select(model).filter_by(**filters)).all()
        db.session.expunge_all()
        return rows


def seed_outbound(app, wamid, numero):
    with app.app_context():
        chat = Chat(numero=numero, state="bot", unread_count=0)
        db.session.add(chat)
        db.session.flush()
        db.session.add(Message(chat_id=chat.id, wamid=wamid, direction="out", sender="bot", type="text",
                               text="respuesta", status="sent", attempts=0))
        db.session.commit()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_file_is_stored_once(app, client, path):
    raw = path.read_bytes()
    payload = json.loads(raw)
    for status in expected_statuses(payload):
        seed_outbound(app, status["id"], status["recipient_id"])

    first, second = post_webhook(client, raw), post_webhook(client, raw)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert second.status_code == 200
    wait_for_jobs(app)

    events = stored(app, WebhookEvent)
    assert len(events) == 2 and json.loads(events[0].payload) == payload
    fields = {field for field, _ in changes(payload)}
    if fields - {"messages", "smb_message_echoes"}:
        assert set(events[0].kind.split(",")) >= fields - {"messages", "smb_message_echoes"}

    messages = expected_messages(payload)
    rows = stored(app, Message, direction="in") + [m for m in stored(app, Message, direction="out")
                                                   if m.sender == "agent"]
    assert len(rows) == len(messages)
    assert all(event.processed_at is not None for event in events)
    set_aside = expected_set_aside(payload)
    for event in events:
        assert len(json.loads(event.rejected or "[]")) == set_aside
        assert (event.error is None) == (set_aside == 0), event.error
    for original, direction in messages:
        (row,) = [r for r in rows if r.wamid == original["id"]]
        assert (row.type, row.direction) == (original["type"], direction)
        check_content(row, original)
        if direction == "in":
            assert row.processed_at is not None
            assert row.chat.numero == original["from"]

    statuses = expected_statuses(payload)
    assert len(stored(app, MessageStatusEvent)) == len(statuses)
    for status in statuses:
        (message,) = stored(app, Message, wamid=status["id"])
        assert message.status == status["status"]
        if status["status"] == "failed":
            assert message.error_code == status["errors"][0]["code"]
            assert message.error_title == status["errors"][0]["title"]


def check_content(row, original):
    kind = original["type"]
    body = original.get(kind, {})
    content = row.content_data
    if kind == "text":
        assert row.text == body["body"]
    elif kind in ("image", "video", "document", "audio", "sticker"):
        assert (row.media_id, row.media_mime) == (body["id"], body["mime_type"])
        assert row.text == body.get("caption")
    elif kind == "location":
        assert (content["latitude"], content["longitude"]) == (body["latitude"], body["longitude"])
    elif kind == "contacts":
        assert [c["name"]["formatted_name"] for c in content["contacts"]] == \
            [c["name"]["formatted_name"] for c in original["contacts"]]
    elif kind == "interactive" and "interactive" in original:
        reply = original["interactive"][original["interactive"]["type"]]
        assert content["kind"] == original["interactive"]["type"]
        if "title" in reply:
            assert (content["id"], row.text) == (reply["id"], reply["title"])
    elif kind == "button":
        assert (content["payload"], row.text) == (body["payload"], body["text"])
    elif kind == "reaction":
        assert content["message_id"] == body["message_id"]
        assert row.text == (body.get("emoji") or None)
    elif kind == "system":
        assert row.text == body["body"]
    elif kind == "order":
        assert content["product_items"] == body["product_items"]
    elif kind == "unsupported":
        assert row.error_code == original["errors"][0]["code"]
    if "referral" in original:
        assert content["referral"] == original["referral"]
    if original.get("context", {}).get("id"):
        assert row.context_wamid == original["context"]["id"]


def test_status_before_its_message_is_applied_when_the_message_gets_its_wamid(app, client):
    raw = (CORPUS / "meta" / "webhooks" / "status_read__pywa.json").read_bytes()
    assert post_webhook(client, raw).status_code == 200
    wait_for_jobs(app)
    from services.inbound import apply_recorded_statuses
    seed_outbound(app, "wamid.xyzxyz", "972987654321")
    with app.app_context():
        message = db.session.scalar(select(Message).filter_by(wamid="wamid.xyzxyz"))
        apply_recorded_statuses(message)
        db.session.commit()
        db.session.refresh(message)
        assert message.status == "read"


def test_statuses_only_move_forward(app, client):
    seed_outbound(app, "wamid.xyzxyz", "972987654321")
    for name in ("status_read__pywa.json", "status_delivered__pywa.json", "status_sent__pywa.json"):
        assert post_webhook(client, (CORPUS / "meta" / "webhooks" / name).read_bytes()).status_code == 200
    wait_for_jobs(app)
    (message,) = stored(app, Message, wamid="wamid.xyzxyz")
    assert message.status == "read"
    assert len(stored(app, MessageStatusEvent)) == 3
