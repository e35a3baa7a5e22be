"""The simulator (`/simulador`): a browser-typed customer goes through the real webhook pipeline (DESIGN §5)."""
import io
import json
import os

import pytest
from sqlalchemy import select

from extensions import db
from models import Chat, Message, WebhookEvent
from services.demo_flow import seed_demo_flow
from services.simulator import AUDIO_MAX_BYTES, default_number, sniff_audio
from tests.conftest import CORPUS, csrf_token, login, post_webhook, text_payload, wait_for_jobs

WEBHOOKS = CORPUS / "meta" / "webhooks"
OGG = b"OggS\x00\x02" + bytes(range(256)) * 8
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64
NUMERO = "999123456"


@pytest.fixture
def sim(app, client, make_user):
    """A logged-in client on a seeded demo flow, with helpers to send and read."""
    with app.app_context():
        seed_demo_flow()
    username, password = make_user("simuladora", "clave-del-simulador-1")
    assert login(client, username, password).status_code == 302
    return Simulator(app, client, csrf_token(client, "/simulador"))


class Simulator:
    def __init__(self, app, client, token):
        self.app, self.client, self.token = app, client, token

    def post(self, wait=True, **body):
        response = self.client.post("/simulador/enviar", json=body, headers={"X-CSRFToken": self.token})
        if wait:
            wait_for_jobs(self.app)
        return response

    def text(self, text, numero=NUMERO):
        response = self.post(numero=numero, text=text)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def reply(self, kind, option, message=None, numero=NUMERO):
        reply = {"kind": kind, "id": option["id"], "title": option["title"]}
        if message:
            reply["message_id"] = message["id"]
        response = self.post(numero=numero, reply=reply)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def audio(self, data: bytes, filename: str, numero=NUMERO, wait=True):
        response = self.client.post("/simulador/enviar", data={"numero": numero, "audio": (io.BytesIO(data), filename)},
                                    headers={"X-CSRFToken": self.token}, content_type="multipart/form-data")
        if wait:
            wait_for_jobs(self.app)
        return response

    def messages(self, numero=NUMERO, after=0, **params):
        response = self.client.get("/simulador/mensajes", query_string={"numero": numero, "despues": after, **params})
        assert response.status_code == 200, response.get_json()
        return response.get_json()


def stored_payloads(app) -> list[dict]:
    with app.app_context():
        return [json.loads(e.payload) for e in db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id))]


def corpus_message(name: str) -> dict:
    return json.loads((WEBHOOKS / name).read_text())["entry"][0]["changes"][0]["value"]["messages"][0]


def shape(value):
    """The keys of nested objects (values' types ignored), to compare a payload with Meta's."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return None


def first_message(payload: dict) -> dict:
    return payload["entry"][0]["changes"][0]["value"]["messages"][0]


# --- the conversation ----------------------------------------------------------------------------

def test_text_goes_through_the_webhook_pipeline_and_the_demo_flow_answers(sim):
    answer = sim.text("hola")
    assert answer["ok"] is True and answer["wamid"].startswith("wamid.sim.")

    data = sim.messages()
    first, welcome = data["messages"]
    assert (first["direction"], first["sender"], first["type"], first["text"]) == ("in", "customer", "text", "hola")
    assert first["wamid"] == answer["wamid"] and first["status"] == "received"
    assert (welcome["direction"], welcome["sender"], welcome["type"]) == ("out", "bot", "list")
    assert "Bienvenido" in welcome["text"] and welcome["status"] == "delivered"
    assert welcome["options"] == [{"id": "Ventas", "title": "Ventas", "section": None},
                                  {"id": "Soporte", "title": "Soporte", "section": None},
                                  {"id": "Cotizar mesón", "title": "Cotizar mesón", "section": None}]
    assert welcome["list_button"] == "Ver opciones" and welcome["error"] is None
    assert data["chat"]["state"] == "bot" and data["last_id"] == welcome["id"]

    # What was fed in is what Meta sends: the same keys as the corpus' text webhook, stored raw.
    payload = stored_payloads(sim.app)[0]
    corpus = json.loads((WEBHOOKS / "text__pywa.json").read_text())
    assert shape(first_message(payload)) == shape(corpus_message("text__pywa.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    assert payload["object"] == corpus["object"] and payload["entry"][0]["changes"][0]["field"] == "messages"
    assert value["contacts"][0]["wa_id"] == NUMERO and value["messaging_product"] == "whatsapp"
    assert set(value["metadata"]) == {"display_phone_number", "phone_number_id"}
    assert first_message(payload)["from"] == NUMERO and first_message(payload)["text"] == {"body": "hola"}


def test_list_and_button_replies_walk_the_demo_flow_to_a_quote(sim):
    sim.text("hola")
    welcome = sim.messages()["messages"][-1]
    quote_option = next(o for o in welcome["options"] if o["title"] == "Cotizar mesón")
    sim.reply("list_reply", quote_option, welcome)
    asked = sim.messages(after=welcome["id"])["messages"]
    assert asked[0]["type"] == "interactive" and asked[0]["text"] == "Cotizar mesón"
    assert asked[0]["reply"] == {"kind": "list_reply", "id": "Cotizar mesón", "title": "Cotizar mesón"}
    assert asked[0]["context_wamid"] == welcome["wamid"]
    assert "medidas" in asked[1]["text"]

    sim.text("2.40 x 0.60")
    later = sim.messages(after=asked[-1]["id"])["messages"]
    quote = next(m for m in later if m["direction"] == "out" and "m²" in (m["text"] or ""))
    follow_up = later[-1]
    assert quote["status"] == "delivered"
    assert follow_up["type"] == "buttons" and [o["title"] for o in follow_up["options"]] == \
        ["Ventas", "Soporte", "Cotizar mesón"]

    sim.reply("button_reply", follow_up["options"][0], follow_up)
    ventas = sim.messages(after=follow_up["id"])["messages"]
    assert ventas[0]["reply"]["kind"] == "button_reply" and ventas[0]["text"] == "Ventas"
    assert ventas[1]["type"] == "buttons" and [o["id"] for o in ventas[1]["options"]] == ["Catálogo", "Precios", "Volver"]

    list_payload, button_payload = [first_message(p) for p in stored_payloads(sim.app)
                                    if first_message_or_none(p, "interactive")]
    assert shape(list_payload) == shape(corpus_message("interactive_list_reply__pywa.json"))
    assert shape(button_payload) == shape(corpus_message("interactive_button_reply__pywa.json"))
    assert list_payload["interactive"]["list_reply"] == {"id": "Cotizar mesón", "title": "Cotizar mesón"}
    assert button_payload["context"]["id"] == follow_up["wamid"]


def first_message_or_none(payload: dict, kind: str) -> dict | None:
    messages = payload["entry"][0]["changes"][0]["value"].get("messages") or []
    return messages[0] if messages and messages[0]["type"] == kind else None


def test_list_options_with_ids_keep_the_ids_the_cloud_transport_sends(sim):
    from services.outbox import queue_message
    sim.text("hola")
    with sim.app.app_context():
        chat = db.session.scalar(select(Chat).filter_by(numero=NUMERO))
        queue_message(chat.id, "list", "Elija", {"options": [{"id": "op-1", "title": "Uno", "description": "El primero"},
                                                            "Dos"], "button": "Menú"})
        queue_message(chat.id, "buttons", "¿Sí?", {"buttons": [{"id": "si", "title": "Sí"}, "No"]})
        db.session.commit()
        from services.outbox import deliver_due
        deliver_due(chat.id)
    listed, buttons = sim.messages()["messages"][-2:]
    assert listed["options"] == [{"id": "op-1", "title": "Uno", "description": "El primero", "section": None},
                                 {"id": "Dos", "title": "Dos", "section": None}]
    assert listed["list_button"] == "Menú"
    assert buttons["options"] == [{"id": "si", "title": "Sí"}, {"id": "No", "title": "No"}]


def test_audio_is_kept_under_media_root_without_graph_and_served_to_the_page(sim, graph, media_root):
    response = sim.audio(OGG, "nota de voz.ogg")
    assert response.status_code == 200, response.get_json()
    wamid = response.get_json()["wamid"]

    message = sim.messages()["messages"][0]
    assert (message["type"], message["wamid"], message["direction"]) == ("audio", wamid, "in")
    assert message["media"]["status"] == "ok" and message["media"]["url"] == f"/simulador/media/{message['id']}"
    with sim.app.app_context():
        stored = db.session.scalar(select(Message).filter_by(wamid=wamid))
        assert stored.media_id.startswith("local:simulator/") and stored.media_path.startswith("simulator/")
        assert stored.media_size == len(OGG) and stored.media_path.endswith(".ogg")
        assert "nota" not in stored.media_path  # a generated name, never the uploaded one
    assert (media_root / stored.media_path).read_bytes() == OGG
    assert not [call for call in graph.requests if "/v" in call["path"]], "Graph must not be called"

    served = sim.client.get(message["media"]["url"])
    assert served.status_code == 200 and served.data == OGG
    assert served.mimetype == "audio/ogg" and served.headers["X-Content-Type-Options"] == "nosniff"

    payload = first_message(stored_payloads(sim.app)[0])
    assert shape(payload) == shape(corpus_message("audio_voice_true__pywa.json"))
    assert payload["audio"]["voice"] is True and payload["audio"]["mime_type"] == "audio/ogg; codecs=opus"


def test_other_audio_formats_are_accepted_and_sniffed(sim):
    assert sim.audio(MP3, "cancion.MP3").status_code == 200
    assert sim.audio(WAV, "grabacion.wav").status_code == 200
    kinds = [(m["media"]["mime"], m["media"]["status"]) for m in sim.messages()["messages"] if m["type"] == "audio"]
    assert kinds == [("audio/mpeg", "ok"), ("audio/wav", "ok")]
    assert sniff_audio(b"#!AMR\n...") == "audio/amr"
    assert sniff_audio(b"\x00\x00\x00\x20ftypM4A ") == "audio/mp4"
    assert sniff_audio(b"\xff\xf1\x50\x80") == "audio/aac"
    assert sniff_audio(b"\xff\xfb\x90\x00") == "audio/mpeg"
    assert sniff_audio(b"<html>") is None


def test_the_phone_reports_what_it_read(sim):
    sim.text("hola")
    welcome = sim.messages()["messages"][-1]
    response = sim.client.post("/simulador/leido", json={"numero": NUMERO, "ids": [welcome["id"], 999999]},
                               headers={"X-CSRFToken": sim.token})
    assert response.get_json() == {"ok": True, "read": 1}
    wait_for_jobs(sim.app)
    data = sim.messages(after=welcome["id"], cambios="2000-01-01T00:00:00Z")
    assert {m["id"]: m["status"] for m in data["changed"]}[welcome["id"]] == "read"
    statuses = stored_payloads(sim.app)[-1]["entry"][0]["changes"][0]["value"]["statuses"]
    assert statuses[0]["id"] == welcome["wamid"] and statuses[0]["status"] == "read"
    assert statuses[0]["recipient_id"] == NUMERO


def test_default_number_is_per_user_and_multipart_text_works(sim):
    response = sim.client.post("/simulador/enviar", data={"text": "hola"}, headers={"X-CSRFToken": sim.token})
    assert response.status_code == 200
    wait_for_jobs(sim.app)
    with sim.app.app_context():
        user_id = db.session.execute(db.text("SELECT id FROM users WHERE username='simuladora'")).scalar()
        assert db.session.scalar(select(Chat.numero)) == default_number(user_id) == str(999000000 + user_id)
    assert len(sim.client.get("/simulador/mensajes").get_json()["messages"]) == 2


def test_messages_after_an_id_returns_both_sides_in_order(sim):
    sim.text("hola")
    sim.text("3")
    everything = sim.messages()["messages"]
    assert [m["direction"] for m in everything] == ["in", "out", "in", "out"]
    later = sim.messages(after=everything[1]["id"])
    assert [m["id"] for m in later["messages"]] == [m["id"] for m in everything[2:]]
    assert later["last_id"] == everything[-1]["id"]
    assert sim.messages(after=everything[-1]["id"])["messages"] == []
    assert sim.messages(numero="999555444")["messages"] == [] and sim.messages(numero="999555444")["chat"] is None


def test_whatsapp_markup_is_left_for_the_browser_to_format_safely(sim):
    sim.text("<script>alert(1)</script> *hola*")
    record = sim.messages()["messages"][0]
    assert record["text"] == "<script>alert(1)</script> *hola*"  # JSON text; the page escapes it before formatting
    page = sim.client.get("/simulador").get_data(as_text=True)
    assert "simulator.js" in page and 'id="sim-chat"' in page and "Nueva conversación" in page


# --- refusals ------------------------------------------------------------------------------------

BAD_BODIES = [
    ({"numero": "12ab45678", "text": "hola"}, "Número inválido"),
    ({"numero": "12345", "text": "hola"}, "Número inválido"),
    ({"numero": "1234567890123456", "text": "hola"}, "Número inválido"),
    ({"numero": ["999"], "text": "hola"}, "número"),
    ({"numero": NUMERO, "text": ""}, "vacío"),
    ({"numero": NUMERO, "text": "   \n "}, "vacío"),
    ({"numero": NUMERO}, "vacío"),
    ({"numero": NUMERO, "text": 5}, "cadena"),
    ({"numero": NUMERO, "text": "x" * 4097}, "demasiado largo"),
    ({"numero": NUMERO, "text": "hola", "reply": {"kind": "list_reply", "id": "a", "title": "a"}}, "exactamente uno"),
    ({"numero": NUMERO, "reply": "Ventas"}, "reply"),
    ({"numero": NUMERO, "reply": {"kind": "otro", "id": "a", "title": "a"}}, "list_reply o button_reply"),
    ({"numero": NUMERO, "reply": {"kind": "list_reply", "id": "a"}}, "reply.title"),
    ({"numero": NUMERO, "reply": {"kind": "button_reply", "id": "", "title": "a"}}, "reply.id"),
    ({"numero": NUMERO, "reply": {"kind": "button_reply", "id": "a", "title": "a", "message_id": 123456}},
     "no existe en esta conversación"),
    ({"numero": NUMERO, "reply": {"kind": "button_reply", "id": "a", "title": "a", "message_id": "x"}}, "número"),
]


def test_bad_input_is_a_clear_400(sim):
    for body, fragment in BAD_BODIES:
        response = sim.post(wait=False, **body)
        assert response.status_code == 400, body
        assert response.get_json()["ok"] is False and fragment in response.get_json()["error"], (body, response.get_json())
    with sim.app.app_context():
        assert db.session.scalar(select(Message)) is None


def test_body_that_is_not_a_json_object_is_a_400(sim):
    for raw in (b"{not json", b"[1, 2]"):
        response = sim.client.post("/simulador/enviar", data=raw, content_type="application/json",
                                   headers={"X-CSRFToken": sim.token})
        assert response.status_code == 400 and "JSON" in response.get_json()["error"]


BAD_AUDIO = [
    (b"hola", "nota.txt", "no admitido"),
    (OGG, "sin-extension", "no admitido"),
    (b"<html><script>alert(1)</script></html>", "nota.ogg", "no es un audio .ogg"),
    (OGG, "nota.mp3", "no es un audio .mp3"),
    (b"", "nota.ogg", "vacío"),
    (b"OggS" + b"\x00" * AUDIO_MAX_BYTES, "grande.ogg", "16 MB"),
]


def test_wrong_or_oversized_audio_is_a_400_and_leaves_no_file(sim, media_root):
    for data, filename, fragment in BAD_AUDIO:
        response = sim.audio(data, filename, wait=False)
        assert response.status_code == 400, (filename, response.get_json())
        assert fragment in response.get_json()["error"], (filename, response.get_json())
    leftovers = [p for p in media_root.rglob("*") if p.is_file()]
    assert leftovers == []
    with sim.app.app_context():
        assert db.session.scalar(select(Message)) is None


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(sim):
    response = sim.audio(b"OggS" + b"\x00" * (AUDIO_MAX_BYTES + 2 * 1024 * 1024), "enorme.ogg", wait=False)
    assert response.status_code == 413 and "16 MB" in response.get_json()["error"]


BAD_QUERIES = [
    ({"numero": "abc"}, "Número inválido"),
    ({"numero": NUMERO, "despues": "x"}, "despues"),
    ({"numero": NUMERO, "despues": "-3"}, "despues"),
    ({"numero": NUMERO, "despues": "1", "cambios": "ayer"}, "cambios"),
]


def test_bad_messages_query_is_a_400(sim):
    for query, fragment in BAD_QUERIES:
        response = sim.client.get("/simulador/mensajes", query_string=query)
        assert response.status_code == 400 and fragment in response.get_json()["error"], query


def test_a_real_customers_chat_is_never_touched(sim):
    real = "5215512345678"
    body = json.dumps(text_payload("wamid.real.1", numero=real)).encode()
    assert post_webhook(sim.client, body).status_code == 200
    wait_for_jobs(sim.app)
    response = sim.post(numero=real, text="hola")
    assert response.status_code == 409 and "conversación real" in response.get_json()["error"]
    listing = sim.client.get("/simulador/mensajes", query_string={"numero": real})
    assert listing.status_code == 409
    with sim.app.app_context():
        real_message = db.session.scalar(select(Message).filter_by(wamid="wamid.real.1"))
    assert sim.client.get(f"/simulador/media/{real_message.id}").status_code == 404


def test_with_the_cloud_transport_the_simulator_refuses_to_send(make_app, make_user):
    app = make_app(WHATSAPP_TRANSPORT="cloud")
    client = app.test_client()
    username, password = make_user("nube", "clave-de-la-nube-1")
    assert login(client, username, password).status_code == 302
    page = client.get("/simulador")
    assert page.status_code == 200 and "WHATSAPP_TRANSPORT=sandbox" in page.get_data(as_text=True)
    response = client.post("/simulador/enviar", json={"text": "hola"},
                           headers={"X-CSRFToken": csrf_token(client, "/simulador")})
    assert response.status_code == 409 and "sandbox" in response.get_json()["error"]


def test_login_is_required(client, app):
    page = client.get("/simulador")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    token = csrf_token(client)
    response = client.post("/simulador/enviar", json={"text": "hola"}, headers={"X-CSRFToken": token})
    assert response.status_code == 401 and "sesión" in response.get_json()["error"].lower()
    assert client.get("/simulador/mensajes").status_code == 401
    assert client.post("/simulador/leido", json={"ids": []}, headers={"X-CSRFToken": token}).status_code == 401
    assert client.get("/simulador/media/1").status_code == 302


def test_csrf_is_required(sim):
    for headers in ({}, {"X-CSRFToken": "not-the-token"}):
        response = sim.client.post("/simulador/enviar", json={"numero": NUMERO, "text": "hola"}, headers=headers)
        assert response.status_code == 400 and "CSRF" in response.get_json()["error"]
    response = sim.client.post("/simulador/enviar", data={"numero": NUMERO, "audio": (io.BytesIO(OGG), "a.ogg")},
                               content_type="multipart/form-data")
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]
    assert sim.client.post("/simulador/leido", json={"numero": NUMERO, "ids": [1]}).status_code == 400
    with sim.app.app_context():
        assert db.session.scalar(select(Message)) is None


# --- local media stays inside MEDIA_ROOT -------------------------------------------------------------

def test_media_route_refuses_traversal(sim, media_root, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    for path in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "simulator/../../x"):
        assert sim.client.get(f"/simulador/media/{path}").status_code == 404

    sim.text("hola")
    (media_root / "link.ogg").symlink_to(secret)
    with sim.app.app_context():
        inbound, outbound = db.session.scalars(select(Message).order_by(Message.id)).all()
        for relative in ("../../etc/passwd", "/etc/passwd", str(secret), "link.ogg", "simulator/../../secret.txt"):
            inbound.media_path, inbound.media_status, inbound.media_id = relative, "ok", "x"
            outbound.content = json.dumps({"media_path": relative})
            db.session.commit()
            assert sim.client.get(f"/simulador/media/{inbound.id}").status_code == 404, relative
            assert sim.client.get(f"/simulador/media/{outbound.id}").status_code == 404, relative


@pytest.mark.parametrize("media_id, reason", [
    ("local:../../etc/passwd", "fuera de la carpeta del simulador"),
    ("local:/etc/passwd", "fuera de la carpeta del simulador"),
    ("local:simulator/no-existe.ogg", "no existe"),
    ("local:escape.ogg", "fuera de la carpeta del simulador"),
    ("local:quick_replies/1.ogg", "fuera de la carpeta del simulador"),
])
def test_download_media_keeps_local_ids_inside_the_simulator_folder(app, media_root, tmp_path, graph, media_id,
                                                                    reason):
    from services.inbound import find_or_create_chat
    from services.jobs import PermanentJobError
    from services.media import download_media
    outside = tmp_path / "outside.ogg"
    outside.write_bytes(OGG)
    (media_root / "escape.ogg").symlink_to(outside)
    (media_root / "quick_replies").mkdir()
    (media_root / "quick_replies" / "1.ogg").write_bytes(OGG)
    with app.app_context():
        chat = find_or_create_chat("999000777")
        message = Message(chat_id=chat.id, wamid="wamid.sim.local", direction="in", sender="customer", type="audio",
                          media_id=media_id, media_mime="audio/ogg", media_status="pending", status="received",
                          attempts=0)
        db.session.add(message)
        db.session.commit()
        with pytest.raises(PermanentJobError, match=reason):
            download_media(message.id)
        db.session.expire_all()
        stored = db.session.get(Message, message.id)
        assert stored.media_status == "failed" and reason in stored.media_error and stored.media_path is None
    assert graph.requests == []


def test_download_media_accepts_a_local_file(app, media_root, graph):
    from services.inbound import find_or_create_chat
    from services.media import download_media
    (media_root / "simulator").mkdir()
    (media_root / "simulator" / "ok.ogg").write_bytes(OGG)
    with app.app_context():
        chat = find_or_create_chat("999000778")
        message = Message(chat_id=chat.id, wamid="wamid.sim.ok", direction="in", sender="customer", type="audio",
                          media_id="local:simulator/ok.ogg", media_mime="audio/ogg", media_status="pending",
                          status="received", attempts=0)
        db.session.add(message)
        db.session.commit()
        download_media(message.id)
        db.session.expire_all()
        stored = db.session.get(Message, message.id)
        assert (stored.media_status, stored.media_path, stored.media_size) == ("ok", "simulator/ok.ogg", len(OGG))
    assert graph.requests == [] and os.path.exists(media_root / "simulator" / "ok.ogg")
