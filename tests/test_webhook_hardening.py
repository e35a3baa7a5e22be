"""What a security review sent to /webhook: bodies that crashed it, bad items that cost their good neighbours,
NaN, numbers that are not numbers, local files named by a webhook, one wamid from two numbers."""
import json

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Chat, Message, WebhookEvent
from tests.conftest import csrf_token, login, post_webhook, text_payload, wait_for_jobs

GOOD = "wamid.GOOD"
NUMERO = "5215512345678"


def count(app, model, *where):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def stored_wamids(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Message.wamid).where(Message.direction == "in").order_by(Message.id)))


def events(app) -> list[WebhookEvent]:
    with app.app_context():
        rows = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        db.session.expunge_all()
        return rows


# --- bodies that crashed the route: each a 400 with a reason, nothing stored --------------------------------

@pytest.mark.parametrize("body, reason", [
    (b"[" * 100_000, "anidado"),
    (json.dumps(text_payload("wamid.U16")).encode("utf-16"), "UTF-8"),
    (json.dumps(text_payload("wamid.U32")).encode("utf-32"), "UTF-8"),
    (b'{"entry": [], "x": "\xed\xa0\x80"}', "UTF-8"),
    (b'{"entry": ' + b"[" * 200 + b"]" * 200 + b"}", "anidado"),
    (b'{"entry": [], "latitude": NaN}', "NaN"),
    (b'{"entry": [], "latitude": 1e999}', "fuera de rango"),
], ids=["deep", "utf16", "utf32", "utf8-surrogate", "deep-object", "nan", "overflow"])
def test_bodies_that_crashed_the_webhook_are_a_400_with_a_reason(app, client, body, reason):
    response = post_webhook(client, body)
    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    assert count(app, WebhookEvent) == 0


@pytest.mark.parametrize("path", ["/api/chats/{chat}/mensajes", "/api/chats/{chat}/alias", "/simulador/enviar",
                                  "/simulador/leido"])
def test_a_deep_json_body_on_panel_and_simulator_routes_is_a_400(app, client, make_user, path):
    assert post_webhook(client, json.dumps(text_payload(GOOD)).encode()).status_code == 200
    wait_for_jobs(app)
    with app.app_context():
        path = path.format(chat=db.session.scalar(select(Chat.id)))
    login(client, *make_user("jefa", "clave-de-admin-1", admin=True))
    token = csrf_token(client, "/simulador")
    response = client.post(path, data=b"[" * 100_000, content_type="application/json",
                           headers={"X-CSRFToken": token})
    assert response.status_code == 400


# --- a bad item never costs its good neighbours ---------------------------------------------------------------

def with_sibling(mutate) -> dict:
    """A text message GOOD and, in the same value, whatever `mutate` does to it (a bad sibling or field)."""
    payload = text_payload(GOOD)
    mutate(payload["entry"][0]["changes"][0]["value"])
    return payload


def bad_message(**fields) -> callable:
    def mutate(value):
        value["messages"].append({"from": NUMERO, "id": "wamid.BAD", "timestamp": "1700000001", **fields})
    return mutate


def setter(key, item):
    def mutate(value):
        value[key] = item
    return mutate


def contact(item):
    def mutate(value):
        value["contacts"].append(item)
    return mutate


SHAPES = {
    "contacts-int": setter("contacts", 7),
    "contacts-bool": setter("contacts", True),
    "contacts-float": setter("contacts", 1.5),
    "profile-list": contact({"wa_id": "5215500000001", "profile": ["x"]}),
    "profile-text": contact({"wa_id": "5215500000001", "profile": "x"}),
    "wa_id-list": contact({"wa_id": ["1"], "profile": {"name": "x"}}),
    "wa_id-object": contact({"wa_id": {"a": 1}, "profile": {"name": "x"}}),
    "interactive-type-list": bad_message(type="interactive", interactive={"type": ["button_reply"]}),
    "interactive-type-object": bad_message(type="interactive", interactive={"type": {"a": 1}}),
    "nfm-response-int": bad_message(type="interactive", interactive={"type": "nfm_reply",
                                                                     "nfm_reply": {"response_json": 12}}),
    "nfm-response-object": bad_message(type="interactive", interactive={"type": "nfm_reply",
                                                                        "nfm_reply": {"response_json": {"a": 1}}}),
    "statuses-object": setter("statuses", {"id": "wamid.S"}),
    "statuses-int": setter("statuses", 3),
    "status-item-list": setter("statuses", [["x"]]),
    "edit-original-list": bad_message(type="edit", edit={"original_message_id": ["x"],
                                                         "message": {"type": "text", "text": {"body": "b"}}}),
    "edit-original-object": bad_message(type="edit", edit={"original_message_id": {"a": 1},
                                                           "message": {"type": "text", "text": {"body": "b"}}}),
    "edit-original-huge": bad_message(type="edit", edit={"original_message_id": 10**30,
                                                         "message": {"type": "text", "text": {"body": "b"}}}),
    "revoke-original-huge": bad_message(type="revoke", revoke={"original_message_id": 10**30}),
    "lone-surrogate": bad_message(type="text", text={"body": "\ud800 hola"}),
    "messages-int": setter("messages", 5),
    "messages-object": setter("messages", {"id": "x"}),
    "from-with-crlf": bad_message(**{"from": "521\r\n55", "type": "text", "text": {"body": "x"}}),
    "type-object": bad_message(type={"a": 1}),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_bad_sibling_does_not_cost_the_valid_message(app, client, shape):
    payload = with_sibling(SHAPES[shape])
    if shape in ("messages-int", "messages-object"):  # the valid message goes in a second change of the entry
        payload["entry"][0]["changes"].append({"field": "messages", "value": text_payload(GOOD)["entry"][0][
            "changes"][0]["value"]})
    body = json.dumps(payload).encode()
    assert post_webhook(client, body).status_code == 200
    wait_for_jobs(app)
    assert stored_wamids(app).count(GOOD) == 1
    (event,) = events(app)
    assert event.processed_at is not None


def test_a_set_aside_part_is_kept_with_its_place_and_reason_and_replayed(app, client, runner):
    payload = with_sibling(bad_message(**{"from": "52/155", "type": "text", "text": {"body": "x"}}))
    assert post_webhook(client, json.dumps(payload).encode()).status_code == 200
    wait_for_jobs(app)
    (event,) = events(app)
    assert json.loads(event.rejected) == [{"where": "entry[0].changes[0].value.messages[1]",
                                           "reason": "número inválido (from='52/155'): solo dígitos"}]
    assert event.error.startswith("1 parte(s) apartada(s)") and json.loads(event.payload) == payload
    assert stored_wamids(app) == [GOOD]

    result = runner.invoke(args=["replay-events"])
    assert result.exit_code == 0 and "1 evento" in result.output
    wait_for_jobs(app)
    (event,) = events(app)
    assert event.processed_at is not None and event.rejected is not None  # still bad: set aside again
    assert stored_wamids(app) == [GOOD]  # the good one is not stored twice


def test_a_failed_event_is_replayed_after_a_fix(app, client, runner):
    """An event the drain could not store at all (here: one whose source no parser reads) is marked failed;
    replayed once it can be read, its message is stored once."""
    with app.app_context():
        db.session.add(WebhookEvent(source="meta-old", kind="text", payload=json.dumps(text_payload(GOOD))))
        db.session.commit()
        from services import intake
        intake.drain()
    (event,) = events(app)
    assert event.error and "origen desconocido" in event.error and stored_wamids(app) == []
    with app.app_context():
        db.session.execute(WebhookEvent.__table__.update().values(source="meta"))
        db.session.commit()
    result = runner.invoke(args=["replay-events", str(event.id)])
    assert result.exit_code == 0, result.output
    wait_for_jobs(app)
    assert stored_wamids(app) == [GOOD]
    (event,) = events(app)
    assert event.error is None and event.processed_at is not None


def test_admins_see_set_aside_events_and_replay_them(app, client, make_user):
    payload = with_sibling(bad_message(**{"from": "abc", "type": "text", "text": {"body": "x"}}))
    assert post_webhook(client, json.dumps(payload).encode()).status_code == 200
    wait_for_jobs(app)
    login(client, *make_user("vera", "contraseña-segura", roles=["ventas"]))
    assert client.get("/configuracion/webhooks").status_code in (302, 403)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, *make_user("jefa", "clave-de-admin-1", admin=True))
    page = client.get("/configuracion/webhooks")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "entry[0].changes[0].value.messages[1]" in html and "número inválido" in html
    token = csrf_token(client, "/configuracion/webhooks")
    (event,) = events(app)
    answer = client.post(f"/configuracion/webhooks/{event.id}/reintentar", data={"csrf_token": token})
    assert answer.status_code == 302
    wait_for_jobs(app)
    assert stored_wamids(app) == [GOOD]


# --- NaN, numbers, local files, one wamid from two numbers ------------------------------------------------------

def test_nan_stored_before_is_served_as_null(app, admin_client):
    """Input refuses NaN now; a location stored with one before is served as valid JSON (null)."""
    with app.app_context():
        chat = Chat(numero=NUMERO, state="bot", unread_count=0)
        db.session.add(chat)
        db.session.flush()
        db.session.add(Message(chat_id=chat.id, wamid="wamid.NAN", direction="in", sender="customer",
                               type="location", content='{"latitude": NaN, "longitude": 1.5}', status="received",
                               attempts=0))
        db.session.commit()
        chat_id = chat.id
    for path in (f"/api/chats/{chat_id}/mensajes", f"/export/conversation/{NUMERO}"):
        response = admin_client.get(path)
        text = response.get_data(as_text=True)
        assert response.status_code == 200 and "NaN" not in text
        json.loads(text)  # valid JSON


def test_numbers_are_digits_only(app, client):
    numbers = ['1"; filename=evil.exe', "../../../../tmp/zipslip", "12\r\n34", "a/b", "٣٤٥٦٧٨"]
    payload = text_payload("wamid.N0")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"] = [{"from": numero, "id": f"wamid.N{i}", "timestamp": "1700000000", "type": "text",
                          "text": {"body": "x"}} for i, numero in enumerate(numbers)] + value["messages"]
    assert post_webhook(client, json.dumps(payload).encode()).status_code == 200
    wait_for_jobs(app)
    assert stored_wamids(app) == ["wamid.N0"]
    with app.app_context():
        assert list(db.session.scalars(select(Chat.numero))) == [NUMERO]
    (event,) = events(app)
    assert len(json.loads(event.rejected)) == len(numbers)


def test_a_webhook_cannot_name_a_local_file(app, client, media_root):
    (media_root / "quick_replies").mkdir()
    (media_root / "quick_replies" / "1.jpg").write_bytes(b"\xff\xd8\xff secret")
    payload = text_payload(GOOD)
    payload["entry"][0]["changes"][0]["value"]["messages"].append(
        {"from": NUMERO, "id": "wamid.LOCAL", "timestamp": "1700000001", "type": "image",
         "image": {"id": "local:quick_replies/1.jpg", "mime_type": "image/jpeg"}})
    assert post_webhook(client, json.dumps(payload).encode()).status_code == 200
    wait_for_jobs(app)
    assert stored_wamids(app) == [GOOD]
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(Message.media_path.is_not(None))) == 0
    (event,) = events(app)
    assert "solo el simulador" in event.rejected


def test_an_unsigned_huge_text_is_stored_once_not_again_as_message_text(app, client):
    body = "a" * 2_900_000
    assert post_webhook(client, json.dumps(text_payload(GOOD, body=body)).encode()).status_code == 200
    wait_for_jobs(app)
    with app.app_context():
        (text,) = db.session.scalars(select(Message.text).where(Message.wamid == GOOD))
    assert len(text) == 65_536  # WhatsApp's longest message; the journal keeps the body whole
    assert len(events(app)[0].payload) > 2_900_000


def test_the_same_wamid_from_a_second_number_creates_no_chat_and_is_noted(app, client):
    assert post_webhook(client, json.dumps(text_payload(GOOD)).encode()).status_code == 200
    wait_for_jobs(app)
    assert post_webhook(client, json.dumps(text_payload(GOOD, numero="5215599999999")).encode()).status_code == 200
    wait_for_jobs(app)
    with app.app_context():
        assert list(db.session.scalars(select(Chat.numero))) == [NUMERO]
        assert db.session.scalar(select(func.count()).select_from(Message)) >= 1
    assert stored_wamids(app) == [GOOD]
    first, second = events(app)
    assert first.rejected is None
    assert "otro número" in json.loads(second.rejected)[0]["reason"]


def test_a_text_with_a_lone_surrogate_is_stored_with_a_replacement_character(app, client):
    payload = text_payload(GOOD, body="hola \ud800 mundo")
    assert post_webhook(client, json.dumps(payload).encode()).status_code == 200
    wait_for_jobs(app)
    with app.app_context():
        assert db.session.scalar(select(Message.text).where(Message.wamid == GOOD)) == "hola \ufffd mundo"


def test_twilio_nan_coordinates_are_not_stored_as_numbers(app, client):
    form = {"MessageSid": "SM1", "From": "whatsapp:+5215512345678", "To": "whatsapp:+15550000000",
            "Latitude": "nan", "Longitude": "inf", "NumMedia": "0"}
    response = client.post("/webhook/twilio", data=form)
    assert response.status_code == 200
    wait_for_jobs(app)
    with app.app_context():
        content = db.session.scalar(select(Message.content).where(Message.wamid == "SM1"))
    assert "NaN" not in content and "Infinity" not in content
    json.loads(content)

