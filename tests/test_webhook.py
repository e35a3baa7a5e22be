import json

from sqlalchemy import func, select

from extensions import db
from models import Chat, Message, WebhookEvent
from tests.conftest import post_webhook, text_payload, wait_for_jobs


def count(app, model, *where):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_handshake_returns_challenge_for_right_token(client):
    response = client.get("/webhook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "1158201444"


def test_handshake_refuses_wrong_token_or_mode(client):
    assert client.get("/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1").status_code == 403
    assert client.get("/webhook?hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1").status_code == 403
    assert client.get("/webhook").status_code == 403


def test_bad_signature_is_401_and_stores_nothing(app, client):
    body = json.dumps(text_payload("wamid.SIG")).encode()
    assert post_webhook(client, body, secret="other-secret").status_code == 401
    assert post_webhook(client, body, secret=None).status_code == 401
    assert post_webhook(client, body, secret=None, **{"X-Hub-Signature-256": "sha256=zz"}).status_code == 401
    assert count(app, WebhookEvent) == 0 and count(app, Message) == 0


def test_signature_is_over_raw_bytes_not_reserialised_json(app, client):
    body = b'{"object":"whatsapp_business_account",  "entry":[]}'
    assert post_webhook(client, body).status_code == 200
    assert count(app, WebhookEvent) == 1


def test_non_json_is_400_and_stores_nothing(app, client):
    for body in (b"not json", b"\xff\xfe", b"[1,2]"):
        response = post_webhook(client, body)
        assert response.status_code == 400, body
        assert "error" in response.get_json()
    assert count(app, WebhookEvent) == 0


def test_body_over_3mb_is_413(app, client):
    body = b'{"x":"' + b"a" * (3 * 1024 * 1024) + b'"}'
    response = post_webhook(client, body)
    assert response.status_code == 413
    assert count(app, WebhookEvent) == 0


def test_text_message_is_stored_once_with_its_chat(app, client):
    body = json.dumps(text_payload("wamid.ONE", body="Hola, ¿precio? 😀", name="Ana")).encode()
    first = post_webhook(client, body)
    second = post_webhook(client, body)
    assert first.status_code == second.status_code == 200
    assert first.get_json()["event"] != second.get_json()["event"]
    wait_for_jobs(app)
    with app.app_context():
        message = db.session.scalar(select(Message).filter_by(direction="in"))
        assert (message.wamid, message.type, message.text, message.direction, message.sender) == \
            ("wamid.ONE", "text", "Hola, ¿precio? 😀", "in", "customer")
        assert message.processed_at is not None
        chat = db.session.scalar(select(Chat))
        assert (chat.numero, chat.profile_name, chat.unread_count) == ("5215512345678", "Ana", 1)
    assert count(app, WebhookEvent) == 2
    assert count(app, Message, Message.direction == "in") == 1
    with app.app_context():
        assert all(e.processed_at and e.error is None for e in db.session.scalars(select(WebhookEvent)))


def test_oversized_fields_still_store_the_message(app, client):
    """Fields longer than Meta ever sends (or not text at all) must not make the message fail to store; a text
    longer than WhatsApp allows is cut (the journal keeps the body whole, once)."""
    contacts = [{"name": {"formatted_name": f"Contacto {n}"}, "phones": [{"phone": "+52 55 0000 0000"}]}
                for n in range(2000)]  # content ~150 KB
    payload = text_payload("wamid.BIG", body="á" * 70_000, name="😀" * 300)
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"][0]["context"] = {"from": "15550000000", "id": "wamid." + "C" * 400}
    value["messages"].append({"from": "5215512345678", "id": "wamid.BIG2", "timestamp": "1700000001",
                              "type": "contacts", "contacts": contacts})
    value["messages"].append({"from": "5215512345678", "id": "wamid.BIG3", "timestamp": "1700000002",
                              "type": "image", "image": {"id": "9" * 300, "mime_type": {"not": "text"}}})
    assert post_webhook(client, json.dumps(payload).encode()).status_code == 200
    wait_for_jobs(app)
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(WebhookEvent.error.is_not(None))) == 0
        text, shared, image = db.session.scalars(select(Message).where(Message.direction == "in")
                                                 .order_by(Message.id)).all()
        assert text.text == "á" * 65_536 and len(text.context_wamid) == 191
        assert len(json.loads(shared.content)["contacts"]) == 2000
        assert len(image.media_id) == 128 and image.media_mime is None
        assert db.session.scalar(select(Chat.profile_name)) == "😀" * 255


def test_odd_field_values_are_stored_and_answered_not_failed(app, client):
    """Shapes Meta does not send (a list for an id, a 70-bit error code, a dict as details) still store the
    message, and the bot still answers it."""
    payload = text_payload("wamid.ODD1")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"] += [
        {"from": "5215512345678", "id": "wamid.ODD2", "timestamp": "1700000001", "type": "contacts",
         "contacts": [{"name": "plain"}, 5, {"name": {"formatted_name": "Ana"}}]},
        {"from": "5215512345678", "id": "wamid.ODD3", "timestamp": "1700000002", "type": "interactive",
         "interactive": {"type": "list_reply", "list_reply": {"id": ["x"], "title": {"a": 1}}}},
        {"from": "5215512345678", "id": "wamid.ODD4", "timestamp": "1700000003", "type": ["text"]},
        {"from": "5215512345678", "id": "wamid.ODD5", "timestamp": "1700000004", "type": "unsupported",
         "errors": [{"code": 2**70, "title": "x", "error_data": {"details": {"why": "no"}}}]}]
    assert post_webhook(client, json.dumps(payload).encode()).status_code == 200
    wait_for_jobs(app)
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(WebhookEvent.error.is_not(None))) == 0
        stored = {m.wamid: m for m in db.session.scalars(select(Message).where(Message.direction == "in"))}
        assert set(stored) == {f"wamid.ODD{n}" for n in range(1, 6)}
        assert stored["wamid.ODD2"].text == "Ana"
        assert (stored["wamid.ODD5"].error_code, json.loads(stored["wamid.ODD5"].error_detail)) == (None, {"why": "no"})
        assert all(m.processed_at is not None and m.error_title is None for m in stored.values() if m.wamid != "wamid.ODD5")
    assert count(app, Message, Message.sender == "bot") >= 1


def test_update_the_parser_cannot_read_is_stored_raw_not_500(app, client, monkeypatch):
    def unreadable(payload):
        raise TypeError("a shape nobody expected")
    monkeypatch.setattr("routes.webhook.parse_update", unreadable)

    response = post_webhook(client, json.dumps(text_payload("wamid.RAW")).encode())

    assert response.status_code == 200
    with app.app_context():
        event = db.session.get(WebhookEvent, response.get_json()["event"])
        assert event.kind == "unreadable" and json.loads(event.payload)["entry"][0]["id"] == "1"


def test_unknown_payload_is_kept_raw_and_answered_200(app, client):
    body = json.dumps({"object": "page", "entry": [{"id": "9", "changes": [{"field": "feed", "value": {}}]}],
                       "extra": ["anything"]}).encode()
    assert post_webhook(client, body).status_code == 200
    with app.app_context():
        event = db.session.scalar(select(WebhookEvent))
        assert event.kind == "feed" and json.loads(event.payload)["extra"] == ["anything"]


def test_malformed_shapes_never_500(client):
    for payload in ({}, {"entry": "x"}, {"entry": [1, None, "a"]}, {"entry": [{"changes": [None, 3]}]},
                    {"entry": [{"changes": [{"field": "messages", "value": {"messages": [None, {"id": 5}]}}]}]},
                    {"entry": [{"changes": [{"field": "messages", "value": {"statuses": [{"id": "w", "status": 3}]}}]}]},
                    {"entry": [{"changes": [{"field": "messages", "value": {"messages": [
                        {"id": "wamid.Q", "from": "1", "type": "image", "image": "oops"}]}}]}]}):
        assert post_webhook(client, json.dumps(payload).encode()).status_code == 200, payload


def test_database_down_answers_503_so_meta_retries(make_app, client):
    broken = make_app(SQLALCHEMY_DATABASE_URI="mysql+pymysql://nobody@127.0.0.1:1/none")
    response = post_webhook(broken.test_client(), json.dumps(text_payload("wamid.DOWN")).encode())
    assert response.status_code == 503


def test_webhooks_keep_no_session_while_people_do(admin_client):
    body = json.dumps(text_payload("wamid.NOSESSION")).encode()
    response = post_webhook(admin_client, body)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers  # the session cookie was not even read
    assert admin_client.get("/webhook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=7").headers.get(
        "Set-Cookie") is None
    # the signed-in admin's session is untouched by the webhook: pages still open
    assert admin_client.get("/").status_code == 200
