"""Whole conversations: signed webhooks in, replies out through the real Graph client to a fake Graph server."""
import json
import time

import pytest
from sqlalchemy import select

from extensions import db
from models import Chat, Message, Rule
from services.demo_flow import seed_demo_flow
from tests.conftest import post_webhook, text_payload, wait_for_jobs
from tests.fakes.graph import corpus_api

NUMERO = "5215550001111"
SEND_PATH = "/v25.0/1122334455667/messages"


@pytest.fixture
def cloud(make_app):
    app = make_app(WHATSAPP_TRANSPORT="cloud", SEND_RETRY_DELAYS=(0.05, 0.1, 0.2, 0.3, 0.5, 0.5, 0.5, 0.5))
    with app.app_context():
        seed_demo_flow()
    return app


class Customer:
    def __init__(self, app, numero=NUMERO):
        self.app, self.client, self.numero, self.count = app, app.test_client(), numero, 0

    def _post(self, message: dict, wait=True):
        self.count += 1
        message = {"from": self.numero, "id": f"wamid.in.{self.numero}.{self.count}", "timestamp": "1700000000",
                   **message}
        payload = text_payload("x", numero=self.numero)
        payload["entry"][0]["changes"][0]["value"]["messages"] = [message]
        assert post_webhook(self.client, json.dumps(payload).encode()).status_code == 200
        if wait:
            wait_for_jobs(self.app)

    def says(self, text, wait=True):
        self._post({"type": "text", "text": {"body": text}}, wait)

    def picks_list(self, row_id, title):
        self._post({"type": "interactive", "interactive": {"type": "list_reply",
                                                          "list_reply": {"id": row_id, "title": title}}})

    def taps_button(self, button_id, title):
        self._post({"type": "interactive", "interactive": {"type": "button_reply",
                                                          "button_reply": {"id": button_id, "title": title}}})

    def chat(self):
        with self.app.app_context():
            chat = db.session.scalar(select(Chat).filter_by(numero=self.numero))
            db.session.expunge_all()
            return chat


def test_menu_by_text_list_and_buttons_with_exact_graph_json(cloud, graph):
    customer = Customer(cloud)
    customer.says("Hola")
    (welcome,) = graph.sent()
    assert welcome["to"] == NUMERO and welcome["type"] == "interactive"
    assert welcome["interactive"]["type"] == "list"
    rows = welcome["interactive"]["action"]["sections"][0]["rows"]
    assert [r["title"] for r in rows] == ["Ventas", "Soporte", "Cotizar mesón"]
    request = graph.calls("POST", SEND_PATH)[0]
    assert request["headers"]["Authorization"] == "Bearer test-token"

    customer.picks_list(rows[0]["id"], rows[0]["title"])
    buttons = graph.sent()[-1]
    assert buttons["interactive"]["type"] == "button"
    titles = [b["reply"]["title"] for b in buttons["interactive"]["action"]["buttons"]]
    assert titles == ["Catálogo", "Precios", "Volver"]
    assert customer.chat().step == "ventas"

    customer.taps_button(buttons["interactive"]["action"]["buttons"][0]["reply"]["id"], "Catálogo")
    document = graph.sent()[-1]
    assert document["type"] == "document"
    assert document["document"]["link"] == "https://example.com/catalogo-marmoles.pdf"

    customer.says("volver")
    assert [m["type"] for m in graph.sent()[-2:]] == ["text", "interactive"]
    assert customer.chat().step == "menu"


def test_wildcard_default_and_role_assignment(cloud, graph):
    customer = Customer(cloud)
    customer.says("buenas")
    customer.says("quiero un unicornio")
    assert graph.sent()[-1]["interactive"]["body"]["text"] == "No reconocí esa opción. Elige una del menú:"
    customer.says("1")
    assert [r.name for r in customer.chat().roles] == ["ventas"]


def test_countertop_quote_cascades_into_the_next_question(cloud, graph):
    customer = Customer(cloud)
    customer.says("hola")
    customer.says("cotizar")
    customer.says("240x60")
    quote, follow_up = graph.sent()[-2:]
    assert "1.44 m²" in quote["text"]["body"] and "$504.000" in quote["text"]["body"]
    assert follow_up["interactive"]["body"]["text"] == "¿Te ayudo con algo más?"
    assert customer.chat().step == "menu"
    with cloud.app_context():
        rule_ids = db.session.scalars(select(Message.rule_id).where(Message.direction == "out")).all()
        assert None not in rule_ids


def test_global_command_mid_flow_and_handover_then_hand_back(cloud, graph):
    customer = Customer(cloud)
    customer.says("hola")
    customer.says("cotizar")
    customer.says("menu")
    assert graph.sent()[-1]["interactive"]["type"] == "list" and customer.chat().step == "menu"
    customer.says("soporte")
    assert customer.chat().state == "human" and [r.name for r in customer.chat().roles] == ["soporte"]
    sent_before = len(graph.sent())
    customer.says("¿hola? ¿alguien?")
    assert len(graph.sent()) == sent_before
    with cloud.app_context():
        chat = db.session.scalar(select(Chat).filter_by(numero=NUMERO))
        chat.state = "bot"
        db.session.commit()
    customer.says("hola")
    assert len(graph.sent()) == sent_before + 1


def test_session_timeout_restarts_the_flow(make_app, graph):
    app = make_app(WHATSAPP_TRANSPORT="cloud", SESSION_TIMEOUT=1)
    with app.app_context():
        seed_demo_flow()
    customer = Customer(app)
    customer.says("hola")
    customer.says("cotizar")
    with app.app_context():
        chat = db.session.scalar(select(Chat).filter_by(numero=NUMERO))
        chat.last_activity_at = chat.last_activity_at.replace(year=2020)
        db.session.commit()
    customer.says("2.40 x 0.60")
    assert graph.sent()[-1]["interactive"]["type"] == "list"


def test_three_step_cascade_and_loop_limit(cloud, graph):
    with cloud.app_context():
        db.session.query(Rule).delete()
        for step, following in (("inicio", "a"), ("a", "b"), ("b", "c")):
            db.session.add(Rule(step=step, input_text="*", respuesta=f"en {step}", siguiente_step=following,
                                avanzar=True, prioridad=1, tipo="texto"))
        db.session.add(Rule(step="c", input_text="*", respuesta="fin", prioridad=1, tipo="texto",
                            siguiente_step="d", avanzar=True))
        db.session.add(Rule(step="d", input_text="*", respuesta="vuelta", prioridad=1, tipo="texto",
                            siguiente_step="c", avanzar=True))
        db.session.commit()
    Customer(cloud).says("hola")
    texts = [m["text"]["body"] for m in graph.sent()]
    assert texts[:4] == ["en inicio", "en a", "en b", "fin"]
    assert len(texts) == 10


def test_graph_500_then_200_is_delivered_once(cloud, graph):
    graph.script("POST", SEND_PATH, (500, {"error": {"message": "Internal", "code": 1}}))
    Customer(cloud).says("hola")
    assert len(graph.sent()) == 1
    assert len(graph.calls("POST", SEND_PATH)) == 2
    with cloud.app_context():
        (reply,) = db.session.scalars(select(Message).filter_by(direction="out")).all()
        assert reply.status == "sent" and reply.wamid.startswith("wamid.out.") and reply.attempts == 2


def test_permanent_error_131047_marks_the_reply_failed_with_the_reason(cloud, graph):
    graph.script("POST", SEND_PATH, (400, corpus_api("error_131047_reengagement_object__pywa.json")))
    Customer(cloud).says("hola")
    with cloud.app_context():
        (reply,) = db.session.scalars(select(Message).filter_by(direction="out")).all()
        assert reply.status == "failed" and reply.error_code == 131047 and reply.error_title
    assert len(graph.calls("POST", SEND_PATH)) == 1


def test_graph_down_loses_nothing_and_sends_everything_in_order_after(cloud, graph):
    graph.outage()
    customer = Customer(cloud)
    for text in ("hola", "1", "precios"):
        customer.says(text, wait=False)

    def all_three_held_back():
        with cloud.app_context():
            pending = db.session.scalars(select(Message).filter_by(direction="out").order_by(Message.id)).all()
            return len(pending) == 3 and all(m.status == "pending" for m in pending) and pending[0].attempts >= 1

    deadline = time.monotonic() + 10
    while not all_three_held_back():
        assert time.monotonic() < deadline, "the three replies were never queued behind the outage"
        time.sleep(0.02)
    assert graph.sent() == []
    graph.restore()
    wait_for_jobs(cloud)
    kinds = [(m["type"], m.get("interactive", {}).get("type")) for m in graph.sent()]
    assert kinds == [("interactive", "list"), ("interactive", "button"), ("text", None)]
    with cloud.app_context():
        assert {m.status for m in db.session.scalars(select(Message).filter_by(direction="out"))} == {"sent"}


def test_status_webhooks_move_the_bot_reply_forward(cloud, graph):
    customer = Customer(cloud)
    customer.says("hola")
    with cloud.app_context():
        wamid = db.session.scalar(select(Message.wamid).filter_by(direction="out"))
    status = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "statuses": [{"id": wamid, "status": "read", "timestamp": "1700000001",
                                                       "recipient_id": NUMERO}]}}]}]}
    post_webhook(customer.client, json.dumps(status).encode())
    wait_for_jobs(cloud)
    with cloud.app_context():
        assert db.session.scalar(select(Message.status).filter_by(wamid=wamid)) == "read"
